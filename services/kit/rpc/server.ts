import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import { timingSafeEqual } from 'node:crypto';
import { create, fromBinary, toBinary, type DescMessage, type DescMethodUnary, type DescService } from '@bufbuild/protobuf';
import { Code, ConnectError, createHandlerContext, type ConnectRouter, type HandlerContext, type Interceptor } from '@connectrpc/connect';
import { codeToHttpStatus, errorToJsonBytes } from '@connectrpc/connect/protocol-connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import type { Registry } from 'prom-client';
import { Health } from '../../../gen/grpc/health/v1/health_pb.js';
import { OspreyError, connectCodeOf, databaseUnavailable } from '../errors.js';
import type { Logger } from '../log.js';
import type { HealthState } from './health.js';
import type { MessageCodecs } from './codecs.js';

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
   * iterables, the interceptor chain), which cost ingest more CPU than the points a call
   * carried (docs/perf.md). The same steps run in the same order: errors, service token,
   * admission. Everything else (gRPC, gRPC-Web, JSON, compression, streams, Health) goes
   * to the adapter.
   */
  function serveFastUnary(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): boolean {
    if (req.method !== 'POST' || req.headers['content-type'] !== 'application/proto') return false;
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return false;
    const route = unary.get(req.url);
    if (!route) return false;
    const fail = (err: unknown) => {
      const ce = toConnectError(err, req.url);
      const headers: http2.OutgoingHttpHeaders = { 'content-type': 'application/json' };
      ce.metadata.forEach((v, k) => (headers[k] = v));
      if (!res.headersSent) res.writeHead(codeToHttpStatus(ce.code), headers).end(Buffer.from(errorToJsonBytes(ce, {})));
    };
    if (!tokenIsRight(req.headers.authorization)) {
      req.resume();
      fail(new ConnectError('missing or wrong service token', Code.Unauthenticated));
      return true;
    }
    if (draining) {
      req.resume();
      fail(drainingError());
      return true;
    }
    admitted();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let ctx: HandlerContext | undefined;
      Promise.resolve()
        .then(() => {
          const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
          const inCodec = opts.codecs?.get(route.method.input.typeName);
          const input = inCodec ? inCodec.decode(body) : fromBinary(route.method.input, body);
          const timeout = req.headers['connect-timeout-ms'];
          ctx = createHandlerContext({
            service: route.service,
            method: route.method,
            protocolName: 'connect',
            requestMethod: 'POST',
            url: req.url,
            timeoutMs: timeout === undefined ? undefined : Number(timeout),
            requestHeader: webHeaders(req.headers),
          });
          return route.impl(input, ctx);
        })
        .then(
          (out) => {
            const headers: http2.OutgoingHttpHeaders = { 'content-type': 'application/proto' };
            ctx!.responseHeader.forEach((v, k) => (headers[k] = v));
            ctx!.responseTrailer.forEach((v, k) => (headers[`trailer-${k}`] = v));
            const outCodec = opts.codecs?.get(route.method.output.typeName);
            const bytes = outCodec ? outCodec.encode(out) : toBinary(route.method.output, create(route.method.output, out as Record<string, unknown>));
            res.writeHead(200, headers).end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
          },
          fail,
        )
        .finally(finished);
    });
    req.on('error', () => {});
    return true;
  }

  const h2 = http2.createServer({}, (req, res) => {
    if (!serveFastUnary(req, res)) void handler(req, res);
  });
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
      return { port: await listenOn(h2, host, port), opsPort: await listenOn(ops, host, opsPort) };
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
        new Promise<void>((resolve) => h2.close(() => resolve())),
        new Promise<void>((resolve) => ops.close(() => resolve())),
      ]);
      // GOAWAY lets clients finish their streams and open new ones elsewhere.
      for (const s of sessions) s.close();
      ops.closeIdleConnections();
      // Whatever still holds a connection after a grace period is cut.
      const timer = setTimeout(() => {
        for (const s of sessions) s.destroy();
        ops.closeAllConnections();
      }, 2000);
      timer.unref();
      await closed;
      clearTimeout(timer);
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

function webHeaders(h: http2.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const k in h) {
    if (k.charCodeAt(0) === 58 /* ':' */) continue;
    const v = h[k];
    if (Array.isArray(v)) for (const x of v) out.append(k, x);
    else if (v !== undefined) out.set(k, v);
  }
  return out;
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
