import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { timingSafeEqual } from 'node:crypto';
import { create, fromBinary, toBinary, type DescMessage, type DescMethodUnary, type DescService } from '@bufbuild/protobuf';
import { Code, ConnectError, createContextValues, type ConnectRouter, type ContextValues, type HandlerContext, type Interceptor } from '@connectrpc/connect';
import { codeToHttpStatus, errorToJsonBytes } from '@connectrpc/connect/protocol-connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Registry } from 'prom-client';
import { Health } from '../../../gen/grpc/health/v1/health_pb.js';
import { OspreyError, connectCodeOf, databaseUnavailable } from '../errors.js';
import type { Logger } from '../log.js';
import type { HealthState } from './health.js';
import type { MessageCodecs } from './codecs.js';
import { metadataOf } from './unary-answer.js';

/** Marks a refusal that certainly applied nothing: a caller may send the call elsewhere. */
export const NOT_APPLIED_HEADER = 'osprey-not-applied';

export interface RpcServerOptions {
  routes: (router: ConnectRouter) => void;
  health: HealthState;
  serviceToken: string;
  metrics: Registry;
  log: Logger;
  /** Hand-written codecs for hot request/response types, used on the fast unary path. */
  codecs?: MessageCodecs;
  /**
   * Gzip large responses when the caller accepts it (the default). A service whose
   * answers are already compressed (PNG) or go over loopback and LAN may turn it off:
   * compressing costs a thread-pool round trip per call and saves no time there.
   */
  compressResponses?: boolean;
}

export interface RpcServer {
  /**
   * The Connect server speaks HTTP/2 without TLS (gRPC, Connect, gRPC-Web); the ops port
   * speaks HTTP/1.1 for Prometheus and load balancers (/metrics, /healthz). Node's h2c
   * server cannot share a port with HTTP/1.1, hence two.
   */
  listen(host: string, port: number, opsPort: number): Promise<{ port: number; opsPort: number }>;
  /** Requests currently being handled (Health excluded). */
  readonly inFlight: number;
  /** Refuse new calls (answered Unavailable + not-applied), let running ones finish. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Interceptors, outermost first:
 *  1. errors: domain errors become Connect codes; anything else is logged with a request
 *     id and answered Internal with that id (never a stack trace).
 *  2. serviceToken: every internal call carries the shared token (Health is exempt so
 *     stock probes work).
 *  3. admission: counts calls in flight and refuses new ones while draining.
 */
export function buildRpcServer(opts: RpcServerOptions): RpcServer {
  let inFlight = 0;
  let draining = false;
  let idle: (() => void) | undefined;
  const healthName = Health.typeName;

  // The three steps below also run, in the same order, in serveFastUnary: keep them alike.
  const toConnectError = (err: unknown, procedure: string): ConnectError => {
    if (err instanceof ConnectError) return err;
    if (err instanceof OspreyError) return new ConnectError(err.message, connectCodeOf[err.kind]);
    const down = databaseUnavailable(err);
    if (down) {
      opts.log.warn({ err, procedure }, 'database unavailable');
      return new ConnectError(down.message, Code.Unavailable);
    }
    const requestId = randomUUID();
    opts.log.error({ err, requestId, procedure }, 'rpc handler failed');
    return new ConnectError(`internal error (request id ${requestId})`, Code.Internal);
  };
  const errors: Interceptor = (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      throw toConnectError(err, req.url);
    }
  };

  const expected = Buffer.from(`Bearer ${opts.serviceToken}`);
  const tokenIsRight = (authorization: string | undefined) => {
    const got = Buffer.from(authorization ?? '');
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  const serviceToken: Interceptor = (next) => async (req) => {
    if (req.service.typeName !== healthName && !tokenIsRight(req.header.get('authorization') ?? undefined)) {
      throw new ConnectError('missing or wrong service token', Code.Unauthenticated);
    }
    return next(req);
  };

  const drainingError = () => new ConnectError('replica is shutting down', Code.Unavailable, { [NOT_APPLIED_HEADER]: '1' });
  const admitted = () => inFlight++;
  const finished = () => {
    inFlight--;
    if (inFlight === 0 && idle) idle();
  };
  const admission: Interceptor = (next) => async (req) => {
    if (req.service.typeName === healthName) return next(req);
    if (draining) throw drainingError();
    admitted();
    try {
      return await next(req);
    } finally {
      finished();
    }
  };

  /** Unary methods of the services routed here, by path, for serveFastUnary. */
  const unary = new Map<string, FastUnary>();
  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(Health, opts.health.impl());
      opts.routes(recordingUnary(router, unary));
    },
    interceptors: [errors, serviceToken, admission],
    ...(opts.compressResponses === false ? { acceptCompression: [] } : {}),
  });

  /**
   * Unary calls in the Connect protocol with a binary, uncompressed body are served here
   * without connect-node's per-call machinery (web Headers, linked abort signals, async
   * iterables, the interceptor chain) and, over HTTP/2, without node's compatibility
   * request and response objects: together they cost ingest more CPU than the points a
   * call carried (docs/perf.md). The same steps run in the same order: errors, service
   * token, admission. Everything else (gRPC, gRPC-Web, JSON, compression, streams, Health)
   * goes to the adapter. `fastRoute` says whether a call is one of these; `serveFast` serves
   * it over either HTTP version, given how to read its body and how to answer.
   */
  function fastRoute(method: string | undefined, path: string, headers: http.IncomingHttpHeaders): FastUnary | undefined {
    if (method !== 'POST' || headers['content-type'] !== 'application/proto') return undefined;
    const encoding = headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return undefined;
    return unary.get(path);
  }

  type Answer = (status: number, head: http2.OutgoingHttpHeaders, body: Buffer) => void;

  function serveFast(route: FastUnary, path: string, headers: http.IncomingHttpHeaders, body: Readable, answer: Answer): void {
    const fail = (err: unknown) => {
      const ce = toConnectError(err, path);
      const head: http2.OutgoingHttpHeaders = { 'content-type': 'application/json' };
      ce.metadata.forEach((v, k) => (head[k] = v));
      answer(codeToHttpStatus(ce.code), head, Buffer.from(errorToJsonBytes(ce, {})));
    };
    body.on('error', () => {});
    if (!tokenIsRight(headers.authorization)) {
      body.resume();
      fail(new ConnectError('missing or wrong service token', Code.Unauthenticated));
      return;
    }
    if (draining) {
      body.resume();
      fail(drainingError());
      return;
    }
    admitted();
    const chunks: Buffer[] = [];
    body.on('data', (c: Buffer) => chunks.push(c));
    body.on('end', () => {
      let ctx: FastContext | undefined;
      Promise.resolve()
        .then(() => {
          const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
          const inCodec = opts.codecs?.get(route.method.input.typeName);
          const input = inCodec ? inCodec.decode(bytes) : fromBinary(route.method.input, bytes);
          const timeout = headers['connect-timeout-ms'];
          ctx = new FastContext(route, path, headers, timeout === undefined ? undefined : Number(timeout));
          return route.impl(input, ctx);
        })
        .then(
          (out) => {
            const head: http2.OutgoingHttpHeaders = { 'content-type': 'application/proto' };
            ctx!.sentHeaders(head);
            const outCodec = opts.codecs?.get(route.method.output.typeName);
            const bytes = outCodec ? outCodec.encode(out) : toBinary(route.method.output, create(route.method.output, out as Record<string, unknown>));
            answer(200, head, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
          },
          fail,
        )
        .finally(() => {
          ctx?.finish();
          finished();
        });
    });
  }

  const h2 = http2.createServer({}, (req, res) => void handler(req, res));
  // Node serves its compatibility API (req, res for the adapter) from a 'stream' listener
  // that adding the request handler installed. Calls go to the fast path first and only
  // the others to that listener, so a fast call never gets the compatibility objects.
  const compat = h2.listeners('stream');
  if (compat.length !== 1) throw new Error(`expected node's one http2 compatibility 'stream' listener, found ${compat.length}`);
  const toCompat = compat[0] as (...args: unknown[]) => void;
  h2.removeListener('stream', toCompat);
  h2.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    const path = headers[':path'] ?? '';
    const route = fastRoute(headers[':method'], path, headers);
    if (!route) {
      toCompat.call(h2, stream, headers, flags, rawHeaders);
      return;
    }
    serveFast(route, path, headers, stream, (status, head, body) => {
      // The caller may have gone (RST_STREAM) while the handler ran: nothing to answer.
      if (stream.destroyed || stream.closed || stream.headersSent) return;
      head[':status'] = status;
      stream.respond(head);
      stream.end(body);
    });
  });

  // The same port answers HTTP/1.1 too (Connect unary and gRPC-Web need no HTTP/2, see
  // http1-client.ts). Idle connections are kept far longer than clients keep them, so the
  // server never closes one a client may be about to use (see close()); while draining,
  // every fast answer says `connection: close`.
  const h1 = http.createServer({ keepAliveTimeout: 10 * 60_000 }, (req, res) => {
    const path = req.url ?? '';
    const route = fastRoute(req.method, path, req.headers);
    if (!route) {
      void handler(req, res);
      return;
    }
    serveFast(route, path, req.headers, req, (status, head, body) => {
      if (res.headersSent || res.destroyed) return;
      head['content-length'] = body.length;
      if (draining) head.connection = 'close';
      res.writeHead(status, head).end(body);
    });
  });
  // h1 never listens itself (front hands it connections): 'listening' starts node's
  // connection tracking, which closeIdleConnections() and the request timeouts rely on.
  h1.emit('listening');
  const front = net.createServer((socket) => routeConnection(socket, h1, h2));

  const ops = http.createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url === '/healthz')) {
      void serveOps(req.url, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
  });

  async function serveOps(url: string, res: http.ServerResponse) {
    if (url === '/healthz') {
      const ok = opts.health.isServing;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'draining\n');
      return;
    }
    try {
      const body = await opts.metrics.metrics();
      res.writeHead(200, { 'content-type': opts.metrics.contentType }).end(body);
    } catch (err) {
      opts.log.error({ err }, 'metrics failed');
      res.writeHead(500).end();
    }
  }

  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });

  return {
    async listen(host, port, opsPort) {
      return { port: await listenOn(front, host, port), opsPort: await listenOn(ops, host, opsPort) };
    },
    get inFlight() {
      return inFlight;
    },
    async drain() {
      draining = true;
      opts.health.setServing(false);
      if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
    },
    async close() {
      const closed = Promise.all([
        new Promise<void>((resolve) => front.close(() => resolve())),
        new Promise<void>((resolve) => ops.close(() => resolve())),
      ]);
      // GOAWAY lets clients finish their streams and open new ones elsewhere.
      for (const s of sessions) s.close();
      // HTTP/1.1 has no GOAWAY: a connection this side closed while a request was on its
      // way would leave the caller unsure whether the call was applied. So idle HTTP/1.1
      // connections are left for their clients to close (Http1UnaryClient does after 1 s
      // idle, well inside the 3 s below), and a call that still comes meanwhile is refused
      // as not applied (draining) with `connection: close`.
      ops.closeIdleConnections();
      // Whatever still holds a connection after a grace period is cut.
      const timer = setTimeout(() => {
        for (const s of sessions) s.destroy();
        ops.closeAllConnections();
      }, 2000);
      const h1Timer = setTimeout(() => h1.closeAllConnections(), 3000);
      timer.unref();
      h1Timer.unref();
      await closed;
      clearTimeout(timer);
      clearTimeout(h1Timer);
      // Stops h1's connection tracking; it answers that h1 was not listening, which is so.
      h1.close(() => {});
    },
  };
}

interface FastUnary {
  service: DescService;
  method: DescMethodUnary;
  impl: (input: unknown, ctx: HandlerContext) => unknown;
}

/** A router that also notes the unary methods it is given, by their Connect path. */
function recordingUnary(router: ConnectRouter, into: Map<string, FastUnary>): ConnectRouter {
  const recording: ConnectRouter = {
    get handlers() {
      return router.handlers;
    },
    service(service, implementation, options) {
      for (const method of service.methods) {
        const fn = (implementation as Record<string, unknown>)[method.localName];
        if (method.methodKind === 'unary' && typeof fn === 'function') {
          into.set(`/${service.typeName}/${method.name}`, { service, method: method as DescMethodUnary<DescMessage, DescMessage>, impl: fn.bind(implementation) });
        }
      }
      router.service(service, implementation, options);
      return recording;
    },
    rpc(method, impl, options) {
      router.rpc(method, impl, options);
      return recording;
    },
  };
  return recording;
}

/**
 * The HandlerContext of a call on the fast unary path, built lazily: most handlers never
 * look at the signal, the headers or the values, and making them for every call (an
 * AbortController linked to a deadline signal, three Headers objects) was one of the
 * largest costs of a Record call on the ingest side. What a handler does read behaves
 * as createHandlerContext's would: the signal aborts at the deadline and once the call
 * is over, response headers and trailers set on it are sent.
 */
class FastContext implements HandlerContext {
  readonly service: DescService;
  readonly method: DescMethodUnary;
  readonly protocolName = 'connect';
  readonly requestMethod = 'POST';
  private readonly started = Date.now();
  private controller: AbortController | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private request: Headers | undefined;
  private response: Headers | undefined;
  private trailer: Headers | undefined;
  private contextValues: ContextValues | undefined;

  constructor(
    route: FastUnary,
    readonly url: string,
    private readonly raw: http2.IncomingHttpHeaders,
    private readonly timeout: number | undefined,
  ) {
    this.service = route.service;
    this.method = route.method;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      const controller = (this.controller = new AbortController());
      if (this.timeout !== undefined) {
        this.deadline = setTimeout(() => controller.abort(new ConnectError('the operation timed out', Code.DeadlineExceeded)), Math.max(0, this.started + this.timeout - Date.now()));
        this.deadline.unref();
      }
    }
    return this.controller.signal;
  }

  timeoutMs(): number | undefined {
    return this.timeout === undefined ? undefined : this.started + this.timeout - Date.now();
  }

  get requestHeader(): Headers {
    return (this.request ??= metadataOf(this.raw));
  }

  get responseHeader(): Headers {
    return (this.response ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.trailer ??= new Headers());
  }

  get values(): ContextValues {
    return (this.contextValues ??= createContextValues());
  }

  /** Adds what the handler set on responseHeader and responseTrailer (Connect unary: trailer-*). */
  sentHeaders(into: http2.OutgoingHttpHeaders): void {
    this.response?.forEach((v, k) => (into[k] = v));
    this.trailer?.forEach((v, k) => (into[`trailer-${k}`] = v));
  }

  /** The call is over: whatever listens on the signal may stop. */
  finish(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.controller?.abort(new ConnectError('the call is over', Code.Canceled));
  }
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * Hands a new connection to the HTTP/2 server when it opens with the HTTP/2 preface
 * (prior knowledge, as every gRPC and Connect HTTP/2 client sends) and to the HTTP/1.1
 * server otherwise. The bytes read to tell are put back first: node's HTTP/2 session
 * reads what the socket holds already, and the HTTP/1.1 server reads it as it resumes.
 */
function routeConnection(socket: net.Socket, h1: http.Server, h2: http2.Http2Server): void {
  let seen: Buffer | undefined;
  // A connection that says nothing is not kept (the servers' own timeouts start later).
  socket.setTimeout(10_000, () => socket.destroy());
  const onError = () => socket.destroy();
  const onEnd = () => socket.destroy();
  socket.on('error', onError);
  socket.on('end', onEnd);
  const onReadable = () => {
    let chunk: Buffer | null;
    while ((chunk = socket.read() as Buffer | null) !== null) seen = seen ? Buffer.concat([seen, chunk]) : chunk;
    if (seen === undefined) return;
    const n = Math.min(seen.length, 4);
    const maybeH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
    // "PRI " tells HTTP/2 from any HTTP/1.1 method; fewer bytes than that, wait for more.
    if (maybeH2 && n < 4) return;
    socket.off('readable', onReadable);
    socket.off('error', onError);
    socket.off('end', onEnd);
    socket.setTimeout(0);
    socket.unshift(seen);
    (maybeH2 ? h2 : h1).emit('connection', socket);
  };
  socket.on('readable', onReadable);
}

export function listenOn(server: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
