/**
 * A hand-written encoder/decoder for one protobuf message type, used instead of
 * protobuf-es reflection where a message is on a hot path. It must produce and accept
 * the same wire bytes (a test per codec checks it against protobuf-es).
 */
export interface MessageCodec<T = unknown> {
  /** Full proto name, e.g. "osprey.v1.RecordRequest". */
  typeName: string;
  encode(message: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** Codecs by message type name. */
export type MessageCodecs = ReadonlyMap<string, MessageCodec>;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function codecMap(...codecs: MessageCodec<any>[]): MessageCodecs {
  return new Map(codecs.map((c) => [c.typeName, c as MessageCodec]));
}
