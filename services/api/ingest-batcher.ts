import type { Client } from '@connectrpc/connect';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { IngestService, type PointSchema } from '../../gen/osprey/v1/ingest_pb.js';
import { encodeRecordRequest, encodedRecordRequest } from '../kit/rpc/record-codec.js';

export type PointInit = MessageInitShape<typeof PointSchema>;

/** Per point: undefined when accepted, else why not. */
export type PointResult = string | undefined;

/** Points already in RecordRequest wire form (see record-codec.ts): `count` entries of field 1. */
export interface EncodedPoints {
  bytes: Buffer;
  count: number;
}

interface Waiting {
  bytes: Buffer;
  count: number;
  resolve(results: PointResult[]): void;
  reject(err: unknown): void;
}

export interface IngestBatcherOptions {
  /** Record calls running at once, at most. */
  maxInFlight: number;
  /** Points in one Record call, at most. */
  maxBatch: number;
  /**
   * While a call is running, queued points wait for it to return unless at least this
   * many are queued; then another call goes out (up to maxInFlight).
   */
  eagerBatch: number;
}

/**
 * Coalesces points from concurrent requests into few Record calls. When no call is
 * running, points go out at once, so light load pays no added latency. While one runs,
 * points queue and leave together when it returns: at saturation the calls carry tens of
 * points each and the per-call cost (HTTP/2 stream, headers, interceptors on both sides)
 * is paid once for all of them. Only when a full `eagerBatch` is waiting does a further
 * call start alongside (several in flight, spread over the ingest replicas), so heavy
 * batch traffic is not held to one call's round trip. Each request is answered only
 * after ingest has answered for its points.
 *
 * Requests hand in their points encoded already (the /ez routes write them straight from
 * the request body); a call's body is the queued requests' bytes one after another, which
 * is itself a valid RecordRequest, so nothing is decoded, copied into objects or encoded
 * again on the way.
 */
export class IngestBatcher {
  private inFlight = 0;
  private queue: Waiting[] = [];
  private queuedPoints = 0;
  private idle: (() => void) | undefined;

  private readonly maxInFlight: number;
  private readonly maxBatch: number;
  private readonly eagerBatch: number;
  /** Calls made and points sent, for tests and metrics. */
  calls = 0;
  points = 0;

  constructor(
    private readonly client: Client<typeof IngestService>,
    opts: IngestBatcherOptions,
  ) {
    this.maxInFlight = opts.maxInFlight;
    this.maxBatch = opts.maxBatch;
    this.eagerBatch = Math.min(opts.eagerBatch, opts.maxBatch);
  }

  submit(points: PointInit[]): Promise<PointResult[]> {
    return this.submitEncoded({ bytes: encodeRecordRequest({ points } as Parameters<typeof encodeRecordRequest>[0]) as Buffer, count: points.length });
  }

  submitEncoded(points: EncodedPoints): Promise<PointResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ bytes: points.bytes, count: points.count, resolve, reject });
      this.queuedPoints += points.count;
      this.pump();
    });
  }

  /** Starts the calls the policy allows now. */
  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight && (this.inFlight === 0 || this.queuedPoints >= this.eagerBatch)) this.sendQueued();
  }

  /** Resolves when no call is running or queued. */
  async drained(): Promise<void> {
    while (this.inFlight > 0 || this.queue.length > 0) await new Promise<void>((r) => (this.idle = r));
  }

  private sendQueued(): void {
    if (this.queue.length === 0) return;
    let batch: Waiting[];
    let count: number;
    if (this.queuedPoints <= this.maxBatch) {
      batch = this.queue;
      count = this.queuedPoints;
      this.queue = [];
      this.queuedPoints = 0;
    } else {
      let n = 0;
      let i = 0;
      while (i < this.queue.length && (i === 0 || n + this.queue[i].count <= this.maxBatch)) n += this.queue[i++].count;
      batch = this.queue.splice(0, i);
      count = n;
      this.queuedPoints -= n;
    }
    let bytes: Buffer;
    if (batch.length === 1) bytes = batch[0].bytes;
    else {
      const parts = new Array<Buffer>(batch.length);
      let length = 0;
      for (let i = 0; i < batch.length; i++) length += (parts[i] = batch[i].bytes).length;
      bytes = Buffer.concat(parts, length);
    }
    this.inFlight++;
    this.calls++;
    this.points += count;
    this.client.record(encodedRecordRequest(bytes)).then(
      (res) => {
        if (res.errors.length === 0) {
          // The usual answer: every point taken. One shared array per size, never written to.
          for (const w of batch) w.resolve(allAccepted(w.count));
        } else {
          const results: PointResult[] = new Array(count).fill(undefined);
          for (const e of res.errors) if (e.index < count) results[e.index] = e.message || 'refused';
          let offset = 0;
          for (const w of batch) {
            w.resolve(results.slice(offset, offset + w.count));
            offset += w.count;
          }
        }
        this.done();
      },
      (err) => {
        for (const w of batch) w.reject(err);
        this.done();
      },
    );
  }

  private done(): void {
    this.inFlight--;
    if (this.queue.length > 0) {
      // The queue has waited a round trip already: one call takes it, whatever its size.
      if (this.inFlight < this.maxInFlight) this.sendQueued();
      this.pump();
    } else if (this.inFlight === 0 && this.idle) this.idle();
  }
}

const ACCEPTED: PointResult[][] = [];

/** `count` undefineds, frozen and shared: what a request whose points were all taken gets. */
function allAccepted(count: number): PointResult[] {
  if (count >= 64) return new Array<PointResult>(count).fill(undefined);
  return (ACCEPTED[count] ??= Object.freeze(new Array<PointResult>(count).fill(undefined)) as PointResult[]);
}
