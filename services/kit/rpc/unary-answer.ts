// What the two lean unary clients (unary-client.ts over HTTP/2, http1-client.ts over
// HTTP/1.1) share: encoding a request, turning an answer into a message or an error, and
// the lazy UnaryResponse they resolve with. The transports differ; these must not.
import { create, fromBinary, toBinary, type DescMessage, type DescMethodUnary, type MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError, type UnaryResponse } from '@connectrpc/connect';
import { codeFromHttpStatus, errorFromJsonBytes } from '@connectrpc/connect/protocol-connect';
import type { MessageCodecs } from './codecs.js';

export type RawHeaders = Record<string, string | string[] | undefined>;

/** The request body: a hand-written codec when there is one, else protobuf-es. */
export function encodeRequest<I extends DescMessage>(method: DescMethodUnary<I, DescMessage>, input: MessageInitShape<I>, codecs: MessageCodecs | undefined): Uint8Array {
  const codec = codecs?.get(method.input.typeName);
  return codec ? codec.encode(input) : toBinary(method.input, create(method.input, input));
}

/** A finished Connect unary answer: the UnaryResponse, or the ConnectError it stands for. */
export function decodeAnswer<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  status: number,
  headers: RawHeaders,
  body: Uint8Array,
  codecs: MessageCodecs | undefined,
  from: string,
): UnaryResponse<I, O> | ConnectError {
  if (status !== 200) {
    const meta = metadataOf(headers);
    return errorFromJsonBytes(body, meta, new ConnectError(`HTTP ${status} from ${from}`, codeFromHttpStatus(status), meta));
  }
  try {
    const codec = codecs?.get(method.output.typeName);
    const message = (codec ? codec.decode(body) : fromBinary(method.output, body)) as UnaryResponse<I, O>['message'];
    return new Answer(method, message, headers);
  } catch (err) {
    return new ConnectError(`cannot decode the answer from ${from}: ${(err as Error).message}`, Code.Internal, metadataOf(headers));
  }
}

/**
 * A successful call's UnaryResponse. Its header and trailer are made only if read: the
 * Record path never reads them, and two web Headers per call were a visible share of it.
 */
class Answer<I extends DescMessage, O extends DescMessage> implements UnaryResponse<I, O> {
  readonly stream = false as const;
  readonly service: DescMethodUnary<I, O>['parent'];
  private headers: Headers | undefined;
  private trailers: Headers | undefined;

  constructor(
    readonly method: DescMethodUnary<I, O>,
    readonly message: UnaryResponse<I, O>['message'],
    private readonly raw: RawHeaders,
  ) {
    this.service = method.parent;
  }

  get header(): Headers {
    return (this.headers ??= metadataOf(this.raw));
  }

  get trailer(): Headers {
    return (this.trailers ??= new Headers());
  }
}

/** Response headers as Connect metadata (HTTP/2 pseudo-headers left out). */
export function metadataOf(h: RawHeaders): Headers {
  const out = new Headers();
  for (const k in h) {
    if (k.charCodeAt(0) === 58 /* ':' */) continue;
    const v = h[k];
    if (Array.isArray(v)) for (const x of v) out.append(k, x);
    else if (v !== undefined) out.set(k, v);
  }
  return out;
}
