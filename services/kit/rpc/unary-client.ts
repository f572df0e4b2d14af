import http2 from 'node:http2';
import type { DescMessage, DescMethodUnary, MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError, type UnaryResponse } from '@connectrpc/connect';
import type { MessageCodecs } from './codecs.js';
import { decodeAnswer, encodeRequest } from './unary-answer.js';
import { NOT_APPLIED_HEADER } from './server.js';

export interface UnaryClientOptions {
  /** Sent with every call (e.g. the service token). */
  headers: Record<string, string>;
  /** An idle session is closed after this long. */
  idleTimeoutMs?: number;
  /** A session that does not answer a ping within this long is dropped. */
  pingIntervalMs?: number;
  /** Hand-written codecs for hot message types (see codecs.ts); others use protobuf-es. */
  codecs?: MessageCodecs;
}

/**
 * Unary calls in the Connect protocol (binary, uncompressed) over one long-lived HTTP/2
 * session to one replica, with any number of calls in flight on it. It does what
 * connect-node's transport does for a unary call, minus the per-call machinery (web
 * Headers, linked AbortControllers, async iterables, interceptor chain) that made that
 * transport cost more CPU per call than the request it carried (docs/perf.md). The server
 * side is unchanged: any Connect/gRPC server answers it.
 *
 * Errors are ConnectErrors, as connect-node gives them: a connection that could not be
 * made or a session already going away is Unavailable with the socket error as `cause`
 * (so isNotApplied() can tell that nothing was applied); the server's own errors carry
 * its code, message and response headers as metadata.
 */
export class UnaryClient {
  private session: http2.ClientHttp2Session | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private readonly idleTimeoutMs: number;
  private readonly pingIntervalMs: number;

  constructor(
    private readonly baseUrl: string,
    private readonly opts: UnaryClientOptions,
  ) {
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 5 * 60_000;
    this.pingIntervalMs = opts.pingIntervalMs ?? 30_000;
  }

  private connect(): http2.ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const session = http2.connect(this.baseUrl);
    session.on('error', () => {}); // streams on it fail with the cause; see call()
    const forget = () => {
      if (this.session === session) {
        this.session = undefined;
        if (this.pinger) clearInterval(this.pinger);
        this.pinger = undefined;
      }
    };
    session.once('close', forget);
    session.once('goaway', forget);
    session.setTimeout(this.idleTimeoutMs, () => session.close());
    // The session must not keep the process alive on its own.
    session.unref();
    this.pinger = setInterval(() => {
      if (session.connecting) return;
      session.ping((err) => {
        if (err) session.destroy(err);
      });
    }, this.pingIntervalMs);
    this.pinger.unref();
    this.session = session;
    return session;
  }

  close(): void {
    this.session?.close();
    this.session = undefined;
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = undefined;
  }

  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: ConstructorParameters<typeof Headers>[0] | undefined,
    input: MessageInitShape<I>,
  ): Promise<UnaryResponse<I, O>> {
    return new Promise((resolve, reject) => {
      const headers: http2.OutgoingHttpHeaders = {
        ':method': 'POST',
        ':path': `/${method.parent.typeName}/${method.name}`,
        'content-type': 'application/proto',
        'connect-protocol-version': '1',
        ...this.opts.headers,
      };
      if (header) new Headers(header).forEach((v, k) => (headers[k] = v));
      if (timeoutMs !== undefined && timeoutMs > 0) headers['connect-timeout-ms'] = String(Math.ceil(timeoutMs));
      let body: Uint8Array;
      try {
        body = encodeRequest(method, input, this.opts.codecs);
      } catch (err) {
        reject(ConnectError.from(err, Code.Internal));
        return;
      }
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.connect().request(headers);
      } catch (err) {
        // ERR_HTTP2_GOAWAY_SESSION / ERR_HTTP2_INVALID_SESSION: nothing was sent.
        this.session = undefined;
        reject(new ConnectError(`cannot call ${this.baseUrl}: ${(err as Error).message}`, Code.Unavailable, undefined, undefined, err));
        return;
      }
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => fail(new ConnectError('the call was cancelled', Code.Canceled), http2.constants.NGHTTP2_CANCEL);
      const fail = (err: ConnectError, rstCode?: number) => {
        if (settled) return;
        settled = true;
        cleanup();
        if (rstCode !== undefined && !stream.closed) stream.close(rstCode);
        reject(err);
      };
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      if (timeoutMs !== undefined && timeoutMs > 0) {
        timer = setTimeout(() => fail(new ConnectError(`the call took longer than ${timeoutMs} ms`, Code.DeadlineExceeded), http2.constants.NGHTTP2_CANCEL), timeoutMs);
      }
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      }

      let status = 0;
      let responseHeaders: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on('response', (h) => {
        responseHeaders = h;
        status = Number(h[':status']);
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (err: NodeJS.ErrnoException) => {
        // A refused connection reaches the stream as the session's error.
        fail(new ConnectError(`call to ${this.baseUrl} failed: ${err.message}`, Code.Unavailable, undefined, undefined, err));
      });
      stream.on('close', () => {
        if (settled) return;
        if (status === 0) {
          // REFUSED_STREAM: the server processed nothing (RFC 9113 §8.7), so callers may go elsewhere.
          const notApplied = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM ? { [NOT_APPLIED_HEADER]: '1' } : undefined;
          fail(new ConnectError(`call to ${this.baseUrl} closed without an answer (code ${stream.rstCode})`, Code.Unavailable, notApplied));
          return;
        }
        const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
        const answer = decodeAnswer(method, status, responseHeaders, bytes, this.opts.codecs, this.baseUrl);
        if (answer instanceof ConnectError) {
          fail(answer);
          return;
        }
        settled = true;
        cleanup();
        resolve(answer);
      });
      stream.end(body);
    });
  }
}
