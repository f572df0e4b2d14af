import type { ConnectRouter } from '@connectrpc/connect';
import type { Registry } from 'prom-client';
import type { BaseConfig } from './config.js';
import type { Database } from './db/client.js';
import type { Logger } from './log.js';
import { Registration } from './registry.js';
import { HealthState } from './rpc/health.js';
import { buildRpcServer, type RpcServer } from './rpc/server.js';
import type { MessageCodecs } from './rpc/codecs.js';

/** What every service is given; services add their own fields. */
export interface BaseDeps {
  config: BaseConfig;
  log: Logger;
  database: Database;
  metrics: Registry;
}

/** What a service hands the kit: its Connect routes and its own life-cycle steps. */
export interface ServiceParts {
  /** Full proto names served, for grpc.health.v1 (e.g. "osprey.v1.IngestService"). */
  serviceNames: string[];
  routes(router: ConnectRouter): void;
  /** Hand-written codecs for hot message types (rpc/codecs.ts). */
  codecs?: MessageCodecs;
  /** See RpcServerOptions.compressResponses (default true). */
  compressResponses?: boolean;
  /** After the replica listens and before it registers (e.g. start loops). */
  start?(): Promise<void>;
  /** After RPCs have drained and the replica left the registry (e.g. the last flush). */
  drain?(): Promise<void>;
  /** Last: release what start() took. */
  close?(): Promise<void>;
}

export interface Replica {
  readonly address: string;
  readonly opsAddress: string;
  readonly registration: Registration;
  readonly rpc: RpcServer;
  readonly health: HealthState;
  /** Graceful stop: refuse new calls, finish running ones, deregister, drain, close. */
  stop(): Promise<void>;
}

export async function startReplica(service: string, deps: BaseDeps, parts: ServiceParts): Promise<Replica> {
  const { config, log } = deps;
  const health = new HealthState(parts.serviceNames);
  const rpc = buildRpcServer({ routes: parts.routes, codecs: parts.codecs, health, serviceToken: config.SERVICE_TOKEN, metrics: deps.metrics, log, compressResponses: parts.compressResponses });
  const { port, opsPort } = await rpc.listen(config.RPC_HOST, config.RPC_PORT, config.OPS_PORT);
  const advertise = config.RPC_ADVERTISE_HOST ?? config.RPC_HOST;
  const address = `${advertise}:${port}`;
  const opsAddress = `${advertise}:${opsPort}`;
  await parts.start?.();
  const registration = new Registration(deps.database.pool, service, address, opsAddress, config.HEARTBEAT_MS, log);
  await registration.start();
  log.info({ address, opsAddress, id: registration.id }, `${service} replica ready`);

  let stopping: Promise<void> | undefined;
  return {
    address,
    opsAddress,
    registration,
    rpc,
    health,
    stop() {
      stopping ??= (async () => {
        log.info('stopping: refusing new calls');
        await registration.stop().catch((err) => log.warn({ err }, 'deregister failed'));
        await rpc.drain();
        await parts.drain?.();
        await rpc.close();
        await parts.close?.();
        log.info('stopped');
      })();
      return stopping;
    },
  };
}

/**
 * Runs until SIGTERM or SIGINT, then stops gracefully and exits 0; if stopping takes
 * longer than `timeoutMs`, exits 1 so a supervisor knows the stop was not clean.
 */
export function exitOnSignal(stop: () => Promise<void>, log: Logger, timeoutMs: number): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, 'signal received');
    const timer = setTimeout(() => {
      log.error({ timeoutMs }, 'graceful stop timed out');
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'graceful stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
