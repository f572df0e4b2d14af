import type { DescMessage, DescMethodStreaming, DescMethodUnary, DescService, MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client, type ContextValues, type Interceptor, type StreamResponse, type Transport, type UnaryResponse } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import type { Pool } from 'mysql2/promise';
import type { Logger } from '../log.js';
import { liveInstances, type Instance } from '../registry.js';
import { NOT_APPLIED_HEADER } from './server.js';
import { Http1UnaryClient } from './http1-client.js';
import { UnaryClient } from './unary-client.js';
import type { MessageCodecs } from './codecs.js';

export interface BalancedClientOptions {
  pool: Pool;
  /** Name under which the callee's replicas register (e.g. "ingest"). */
  service: string;
  serviceToken: string;
  log: Logger;
  /** How often the replica list is re-read from service_instances. */
  refreshMs?: number;
  /** A replica whose heartbeat is older than this is not called. */
  staleMs?: number;
  /** How long a replica that refused a connection is skipped. */
  quarantineMs?: number;
  /** Hand-written codecs for hot message types (codecs.ts). */
  codecs?: MessageCodecs;
  /**
   * Unary calls over HTTP/1.1 keep-alive connections (http1-client.ts) instead of one
   * HTTP/2 session per replica: a fraction of the CPU per call, for callers whose calls
   * are many and small (api → ingest). Streams always use HTTP/2.
   */
  http1?: boolean;
}

/**
 * A Connect client over every live replica of a service: round-robin, and a replica that
 * refuses (connection refused, or an explicit "nothing applied" refusal while it drains)
 * is skipped and the call goes to the next one. Any other failure is returned to the
 * caller: the call may have been applied, so it is never sent to a second replica.
 */
export function createBalancedClient<S extends DescService>(service: S, opts: BalancedClientOptions): { client: Client<S>; transport: BalancedTransport } {
  const transport = new BalancedTransport(opts);
  return { client: createClient(service, transport), transport };
}

export class BalancedTransport implements Transport {
  private instances: Instance[] = [];
  private readonly transports = new Map<string, Transport>();
  private readonly unaryClients = new Map<string, UnaryClient | Http1UnaryClient>();
  private readonly quarantinedUntil = new Map<string, number>();
  private next = 0;
  private refreshing: Promise<void> | undefined;
  private loadedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly refreshMs: number;
  private readonly staleMs: number;
  private readonly quarantineMs: number;
  private readonly auth: Interceptor;

  constructor(private readonly opts: BalancedClientOptions) {
    this.refreshMs = opts.refreshMs ?? 1000;
    this.staleMs = opts.staleMs ?? 6000;
    this.quarantineMs = opts.quarantineMs ?? 2000;
    const header = `Bearer ${opts.serviceToken}`;
    this.auth = (next) => (req) => {
      req.header.set('authorization', header);
      return next(req);
    };
  }

  /** Keeps the replica list fresh in the background until close(). */
  start(): this {
    if (!this.timer) {
      this.timer = setInterval(() => void this.refresh().catch((err) => this.opts.log.warn({ err, service: this.opts.service }, 'replica list refresh failed')), this.refreshMs);
      this.timer.unref();
    }
    return this;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const c of this.unaryClients.values()) c.close();
    this.unaryClients.clear();
  }

  /** Addresses currently believed live (for tests and metrics). */
  get addresses(): string[] {
    return this.instances.map((i) => i.address);
  }

  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        this.instances = await liveInstances(this.opts.pool, this.opts.service, this.staleMs);
        this.loadedAt = Date.now();
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private transportFor(address: string): Transport {
    let t = this.transports.get(address);
    if (!t) {
      t = createConnectTransport({
        baseUrl: `http://${address}`,
        httpVersion: '2',
        useBinaryFormat: true,
        interceptors: [this.auth],
        // One HTTP/2 session per replica, kept open and shared by all calls.
        idleConnectionTimeoutMs: 5 * 60_000,
        pingIntervalMs: 30_000,
      });
      this.transports.set(address, t);
    }
    return t;
  }

  /** Unary calls: one lean client per replica (one HTTP/2 session, or HTTP/1.1 connections), see unary-client.ts. */
  private unaryClientFor(address: string): UnaryClient | Http1UnaryClient {
    let c = this.unaryClients.get(address);
    if (!c) {
      const headers = { authorization: `Bearer ${this.opts.serviceToken}` };
      c = this.opts.http1
        ? new Http1UnaryClient(`http://${address}`, { headers, codecs: this.opts.codecs })
        : new UnaryClient(`http://${address}`, { headers, idleTimeoutMs: 5 * 60_000, pingIntervalMs: 30_000, codecs: this.opts.codecs });
      this.unaryClients.set(address, c);
    }
    return c;
  }

  /** Replicas in the order this call should try them. */
  private async candidates(): Promise<string[]> {
    if (this.instances.length === 0 || Date.now() - this.loadedAt > this.refreshMs * 3) await this.refresh();
    const n = this.instances.length;
    if (n === 0) throw new ConnectError(`no live replica of ${this.opts.service}`, Code.Unavailable, { [NOT_APPLIED_HEADER]: '1' });
    const start = this.next++ % n;
    const now = Date.now();
    const healthy: string[] = [];
    const resting: string[] = [];
    for (let i = 0; i < n; i++) {
      const address = this.instances[(start + i) % n].address;
      ((this.quarantinedUntil.get(address) ?? 0) > now ? resting : healthy).push(address);
    }
    // Quarantined replicas are a last resort, not excluded: they may be back.
    return healthy.concat(resting);
  }

  async unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: MessageInitShape<I>,
    _contextValues?: ContextValues,
  ): Promise<UnaryResponse<I, O>> {
    let lastError: unknown;
    for (const address of await this.candidates()) {
      try {
        const res = await this.unaryClientFor(address).unary(method, signal, timeoutMs, header, input);
        this.quarantinedUntil.delete(address);
        return res;
      } catch (err) {
        if (!isNotApplied(err)) throw err;
        lastError = err;
        this.quarantinedUntil.set(address, Date.now() + this.quarantineMs);
      }
    }
    void this.refresh().catch(() => {});
    throw lastError;
  }

  async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: AsyncIterable<MessageInitShape<I>>,
    contextValues?: ContextValues,
  ): Promise<StreamResponse<I, O>> {
    // A stream's input can be read only once, so it is never moved to another replica.
    const [address] = await this.candidates();
    return this.transportFor(address).stream(method, signal, timeoutMs, header, input, contextValues);
  }
}

const REFUSED_CODES = new Set(['ECONNREFUSED', 'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_INVALID_SESSION']);

/**
 * True only when the call certainly did not reach a handler: the connection was refused
 * or reset before it was made,
 * the server refused the stream (HTTP/2 REFUSED_STREAM, sent while it closes a session:
 * by RFC 9113 §8.7 nothing was processed), or the server said so while draining.
 */
export function isNotApplied(err: unknown): boolean {
  if (!(err instanceof ConnectError)) return false;
  if (err.code === Code.Unavailable && err.metadata.get(NOT_APPLIED_HEADER) === '1') return true;
  for (let cause: unknown = err.cause, depth = 0; cause && depth < 4; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && REFUSED_CODES.has(code)) return true;
    // Reset during the TCP handshake (a replica closing its listener): nothing was sent.
    if (code === 'ECONNRESET' && (cause as { syscall?: unknown }).syscall === 'connect') return true;
    if (code === 'ERR_HTTP2_STREAM_ERROR' && String((cause as Error).message).includes('NGHTTP2_REFUSED_STREAM')) return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}
