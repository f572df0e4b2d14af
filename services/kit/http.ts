import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { BaseDeps } from './replica.js';
import { Registration } from './registry.js';
import { HealthState } from './rpc/health.js';
import { buildRpcServer, listenOn } from './rpc/server.js';

export interface HttpReplica {
  /** host:port the public server listens on. */
  readonly address: string;
  readonly port: number;
  readonly opsAddress: string;
  readonly registration: Registration;
  stop(): Promise<void>;
}

export interface HttpReplicaOptions {
  /** A fetch-style app (Hono's app.fetch); or give `listener`. */
  fetch?: (req: Request) => Response | Promise<Response>;
  /** A node:http request listener, for services with a hot path that skips fetch objects. */
  listener?: http.RequestListener;
  host: string;
  port: number;
  /** node:http's timeouts against idle and slow clients (defaults: 10 s, 30 s, 65 s). */
  timeouts?: HttpTimeouts;
  /** After the server stopped taking requests and finished the running ones. */
  drain?(): Promise<void>;
  close?(): Promise<void>;
}

export interface HttpTimeouts {
  /** Whole headers must arrive within this; else 408 and the connection is closed. */
  headersTimeoutMs: number;
  /** The whole request (headers and body) must arrive within this; else 408 and closed. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000 };

/**
 * A public HTTP replica (api, web): the Hono app on its port, /metrics and /healthz on
 * the ops port (through the same Connect/ops server every service has), and a row in
 * service_instances. Under node:cluster, workers share `port`.
 */
export async function startHttpReplica(service: string, deps: BaseDeps, opts: HttpReplicaOptions): Promise<HttpReplica> {
  const { config, log } = deps;
  const health = new HealthState([]);
  const rpc = buildRpcServer({ routes: () => {}, health, serviceToken: config.SERVICE_TOKEN, metrics: deps.metrics, log });
  const { opsPort } = await rpc.listen(config.RPC_HOST, 0, config.OPS_PORT);
  const listener = opts.listener ?? (opts.fetch ? getRequestListener(opts.fetch) : undefined);
  if (!listener) throw new Error(`${service}: startHttpReplica needs fetch or listener`);
  const t = opts.timeouts ?? DEFAULT_HTTP_TIMEOUTS;
  const server = http.createServer(
    {
      keepAliveTimeout: t.keepAliveTimeoutMs,
      requestTimeout: t.requestTimeoutMs,
      headersTimeout: t.headersTimeoutMs,
      // node checks the two request timeouts on this period (30 s by default), so a limit
      // is only as sharp as the period: check at least four times per shortest limit.
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(Math.min(t.headersTimeoutMs, t.requestTimeoutMs) / 4))),
    },
    listener,
  );
  const port = await listenOn(server, opts.host, opts.port);
  const host = (server.address() as AddressInfo).address;
  const advertise = config.RPC_ADVERTISE_HOST ?? config.RPC_HOST;
  const address = `${host === '0.0.0.0' || host === '::' ? advertise : host}:${port}`;
  const registration = new Registration(deps.database.pool, service, address, `${advertise}:${opsPort}`, config.HEARTBEAT_MS, log);
  await registration.start();
  log.info({ address, opsPort }, `${service} replica ready`);

  let stopping: Promise<void> | undefined;
  return {
    address,
    port,
    opsAddress: registration.opsAddress,
    registration,
    stop() {
      stopping ??= (async () => {
        health.setServing(false);
        await registration.stop().catch((err) => log.warn({ err }, 'deregister failed'));
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // Keep-alive connections close as soon as their running request is answered.
        server.on('request', (_req, res) => res.setHeader('connection', 'close'));
        const timer = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS / 2);
        timer.unref();
        await closed;
        clearTimeout(timer);
        await opts.drain?.();
        await rpc.close();
        await opts.close?.();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}
