import net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { DescMessage, DescMethodUnary, MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError, type UnaryResponse } from '@connectrpc/connect';
import type { MessageCodecs } from './codecs.js';
import { decodeAnswer, encodeRequest } from './unary-answer.js';

export interface Http1UnaryClientOptions {
  /** Sent with every call (e.g. the service token). */
  headers: Record<string, string>;
  /** Hand-written codecs for hot message types (see codecs.ts); others use protobuf-es. */
  codecs?: MessageCodecs;
  /** Connections kept to the replica, at most; calls beyond wait for one. */
  maxConnections?: number;
  /**
   * An idle connection is closed after this long (default 1 s). The server never closes
   * an idle connection itself, so that it never closes one a call is on its way on: when
   * it stops it waits up to 3 s for its clients to close theirs (buildRpcServer's close()),
   * so this must stay well below that.
   */
  idleTimeoutMs?: number;
}

/** Longest response head accepted (status line and headers). */
const MAX_HEAD = 64 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Unary calls in the Connect protocol (binary, uncompressed) over HTTP/1.1 keep-alive
 * connections to one replica, one call per connection at a time. Connect's unary protocol
 * is the same over HTTP/1.1 and HTTP/2, and every Osprey RPC port answers both
 * (server.ts), so this is a transport choice only: on this path node's HTTP/2 client and
 * server cost about four times the CPU per call of a plain HTTP/1.1 exchange (an
 * AsyncResource, a Duplex and several event listeners per stream on each side, see
 * docs/perf.md), and with the write-ahead log's fsync per call the calls stay small at
 * moderate rates, so the per-call cost is what a request pays.
 *
 * Failure semantics as for UnaryClient: a connection that could not be made is Unavailable
 * with the socket error as `cause` (isNotApplied() sees ECONNREFUSED); a connection lost
 * after the request was written is Unavailable and may have been applied; the server's
 * own errors carry its code, message and response headers as metadata (so a draining
 * replica's "not applied" refusal is seen). A connection is never reused after an error,
 * a cancelled call or a `connection: close` answer.
 */
export class Http1UnaryClient {
  private readonly host: string;
  private readonly port: number;
  private readonly idle: Conn[] = [];
  private readonly waiting: ((conn: Conn | Error) => void)[] = [];
  private opened = 0;
  private closed = false;
  private readonly maxConnections: number;
  private readonly idleTimeoutMs: number;
  private readonly fixedHead: string;

  constructor(
    private readonly baseUrl: string,
    private readonly opts: Http1UnaryClientOptions,
  ) {
    const url = new URL(baseUrl);
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = Number(url.port || 80);
    this.maxConnections = opts.maxConnections ?? 16;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 1000;
    let head = `host: ${url.host}\r\ncontent-type: application/proto\r\nconnect-protocol-version: 1\r\n`;
    for (const [k, v] of Object.entries(opts.headers)) head += `${k}: ${v}\r\n`;
    this.fixedHead = head;
  }

  /** Connections open now (for tests). */
  get connections(): number {
    return this.opened;
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.socket.destroy();
    for (const w of this.waiting.splice(0)) w(new Error('the client is closed'));
  }

  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: MessageInitShape<I>,
  ): Promise<UnaryResponse<I, O>> {
    let body: Uint8Array;
    try {
      body = encodeRequest(method, input, this.opts.codecs);
    } catch (err) {
      return Promise.reject(ConnectError.from(err, Code.Internal));
    }
    let head = `POST /${method.parent.typeName}/${method.name} HTTP/1.1\r\n${this.fixedHead}`;
    if (header) new Headers(header).forEach((v, k) => (head += `${k}: ${v}\r\n`));
    if (timeoutMs !== undefined && timeoutMs > 0) head += `connect-timeout-ms: ${Math.ceil(timeoutMs)}\r\n`;
    head += `content-length: ${body.byteLength}\r\n\r\n`;
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);

    return new Promise((resolve, reject) => {
      let settled = false;
      let conn: Conn | undefined;
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        settled = true;
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (err: ConnectError) => {
        if (settled) return;
        finish();
        // Whatever the connection was doing, it is not reused.
        conn?.socket.destroy();
        reject(err);
      };
      const onAbort = () => fail(new ConnectError('the call was cancelled', Code.Canceled));
      if (timeoutMs !== undefined && timeoutMs > 0) {
        timer = setTimeout(() => fail(new ConnectError(`the call took longer than ${timeoutMs} ms`, Code.DeadlineExceeded)), timeoutMs);
      }
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.acquire((got) => {
        if (got instanceof Error) {
          fail(new ConnectError(`cannot call ${this.baseUrl}: ${got.message}`, Code.Unavailable, undefined, undefined, got));
          return;
        }
        if (settled) {
          // Cancelled while waiting for a connection: hand it on unused.
          this.release(got);
          return;
        }
        conn = got;
        got.call(head, bytes, (err, status, headers, responseBody) => {
          if (settled) return;
          if (err) {
            fail(new ConnectError(`call to ${this.baseUrl} failed: ${err.message}`, Code.Unavailable, undefined, undefined, err));
            return;
          }
          if (String(headers!.connection).toLowerCase() === 'close') got.socket.destroy();
          else this.release(got);
          finish();
          const answer = decodeAnswer(method, status!, headers!, responseBody!, this.opts.codecs, this.baseUrl);
          if (answer instanceof ConnectError) reject(answer);
          else resolve(answer);
        });
      });
    });
  }

  /** An idle connection, a new one, or the next one freed when all are busy. */
  private acquire(then: (conn: Conn | Error) => void): void {
    if (this.closed) {
      then(new Error('the client is closed'));
      return;
    }
    let idle = this.idle.pop();
    while (idle !== undefined && (idle.dead || idle.socket.destroyed)) idle = this.idle.pop();
    if (idle) {
      idle.busy();
      then(idle);
      return;
    }
    if (this.opened >= this.maxConnections) {
      this.waiting.push(then);
      return;
    }
    this.opened++;
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    const onError = (err: Error) => {
      this.opened--;
      then(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      const conn = new Conn(socket, this.idleTimeoutMs, () => this.forget(conn));
      conn.busy();
      then(conn);
    });
  }

  private release(conn: Conn): void {
    if (conn.dead) return;
    const next = this.waiting.shift();
    if (next) {
      next(conn);
      return;
    }
    conn.rest();
    this.idle.push(conn);
  }

  /** A connection closed (by either side): it leaves the pool, and a waiting call may open another. */
  private forget(conn: Conn): void {
    this.opened--;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    const next = this.waiting.shift();
    if (next) this.acquire(next);
  }
}

type OnResponse = (err: Error | undefined, status?: number, headers?: IncomingHttpHeaders, body?: Buffer) => void;

/** One keep-alive connection and the parser of the answer to its one call in flight. */
class Conn {
  dead = false;
  private onResponse: OnResponse | undefined;
  private buf: Buffer | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: net.Socket,
    private readonly idleTimeoutMs: number,
    onGone: () => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => {}); // 'close' follows and says it
    // The server closed its side: not usable for another call, whatever is still to come.
    socket.once('end', () => {
      this.dead = true;
      socket.destroy();
    });
    socket.once('close', () => {
      this.dead = true;
      if (this.idleTimer) clearTimeout(this.idleTimer);
      const cb = this.onResponse;
      this.onResponse = undefined;
      cb?.(Object.assign(new Error('the connection closed before the answer'), { code: 'ECONNRESET' }));
      onGone();
    });
  }

  busy(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  rest(): void {
    this.idleTimer = setTimeout(() => {
      // Dead at once, not when 'close' comes: no call may pick it up in between.
      this.dead = true;
      this.socket.destroy();
    }, this.idleTimeoutMs);
    this.idleTimer.unref();
  }

  call(head: string, body: Buffer, onResponse: OnResponse): void {
    this.onResponse = onResponse;
    this.buf = undefined;
    this.socket.cork();
    this.socket.write(head, 'latin1');
    if (body.length > 0) this.socket.write(body);
    this.socket.uncork();
  }

  private read(chunk: Buffer): void {
    if (!this.onResponse) {
      // Bytes nobody asked for: the connection is out of step, so it goes.
      this.socket.destroy();
      return;
    }
    const b = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    const parsed = parseResponse(b);
    if (parsed === undefined) {
      if (b.length > MAX_HEAD + (1 << 26)) this.fail(new Error('the answer is too large'));
      else this.buf = b;
      return;
    }
    if (parsed instanceof Error) {
      this.fail(parsed);
      return;
    }
    if (parsed.rest.length > 0) {
      this.fail(new Error('bytes after the answer'));
      return;
    }
    const cb = this.onResponse;
    this.onResponse = undefined;
    this.buf = undefined;
    cb(undefined, parsed.status, parsed.headers, parsed.body);
  }

  private fail(err: Error): void {
    const cb = this.onResponse;
    this.onResponse = undefined;
    this.socket.destroy();
    cb?.(err);
  }
}

interface Parsed {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  rest: Buffer;
}

/**
 * One HTTP/1.1 response from the start of `b`: undefined while incomplete, an Error when
 * it cannot be one. Bodies by Content-Length or chunked; 1xx interim answers are skipped.
 */
export function parseResponse(b: Buffer): Parsed | Error | undefined {
  for (;;) {
    const end = b.indexOf(CRLFCRLF);
    if (end < 0) return b.length > MAX_HEAD ? new Error('the answer head is too large') : undefined;
    const head = b.toString('latin1', 0, end);
    if (!head.startsWith('HTTP/1.')) return new Error(`not an HTTP/1.1 answer: ${JSON.stringify(head.slice(0, 40))}`);
    const status = Number(head.slice(9, 12));
    if (!Number.isInteger(status) || status < 100) return new Error(`bad status line: ${JSON.stringify(head.split('\r\n')[0])}`);
    if (status < 200) {
      b = b.subarray(end + 4);
      continue;
    }
    const headers: IncomingHttpHeaders = {};
    let at = head.indexOf('\r\n');
    while (at >= 0) {
      const next = head.indexOf('\r\n', at + 2);
      const line = head.slice(at + 2, next < 0 ? head.length : next);
      const colon = line.indexOf(':');
      if (colon > 0) {
        const name = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        const had = headers[name];
        headers[name] = had === undefined ? value : `${had}, ${value}`;
      }
      at = next;
    }
    const start = end + 4;
    const te = headers['transfer-encoding'];
    if (typeof te === 'string' && te.toLowerCase().includes('chunked')) {
      const chunks: Buffer[] = [];
      let pos = start;
      for (;;) {
        const lineEnd = b.indexOf('\r\n', pos, 'latin1');
        if (lineEnd < 0) return undefined;
        const size = parseInt(b.toString('latin1', pos, lineEnd).split(';')[0].trim(), 16);
        if (!Number.isFinite(size) || size < 0) return new Error('bad chunk size');
        if (size === 0) {
          // Trailers (ignored), then the empty line.
          const trailerEnd = b.indexOf(CRLFCRLF, lineEnd);
          const emptyEnd = b.subarray(lineEnd, lineEnd + 4).equals(CRLFCRLF) ? lineEnd + 4 : trailerEnd < 0 ? -1 : trailerEnd + 4;
          if (emptyEnd < 0) return undefined;
          return { status, headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), rest: b.subarray(emptyEnd) };
        }
        if (b.length < lineEnd + 2 + size + 2) return undefined;
        chunks.push(b.subarray(lineEnd + 2, lineEnd + 2 + size));
        pos = lineEnd + 2 + size + 2;
      }
    }
    const cl = headers['content-length'];
    if (typeof cl !== 'string') return new Error('an answer with neither Content-Length nor chunked encoding');
    const length = Number(cl);
    if (!Number.isInteger(length) || length < 0) return new Error('bad Content-Length');
    if (b.length < start + length) return undefined;
    return { status, headers, body: b.subarray(start, start + length), rest: b.subarray(start + length) };
  }
}
