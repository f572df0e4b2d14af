import { IngestService } from '../../gen/osprey/v1/ingest_pb.js';
import { startReplica, type BaseDeps, type Replica } from '../kit/replica.js';
import { Aggregator } from './aggregator.js';
import { statsdSettings, type IngestBuildConfig } from './config.js';
import { RollupFlusher } from './flusher.js';
import { StatResolver } from './stat-resolver.js';
import { ingestRoutes } from './router.js';
import { startStatsd, type StatsdServer } from './statsd/server.js';
import { codecMap } from '../kit/rpc/codecs.js';
import { recordRequestCodec } from '../kit/rpc/record-codec.js';

export interface IngestDeps extends BaseDeps {
  /** Without the STATSD_* fields (tests of the RPCs alone) no statsd listener starts. */
  config: IngestBuildConfig;
  now?: () => number;
}

export interface IngestReplica extends Replica {
  aggregator: Aggregator;
  flusher: RollupFlusher;
  statsd: StatsdServer;
}

/** Builds and starts one ingest replica; main.ts runs it, tests build it on port 0. */
export async function build(deps: IngestDeps): Promise<IngestReplica> {
  const aggregator = new Aggregator();
  const stats = new StatResolver(deps.database.pool);
  let flusher!: RollupFlusher;
  let statsd!: StatsdServer;
  const now = deps.now ?? Date.now;
  const replica = await startReplica('ingest', deps, {
    serviceNames: [IngestService.typeName],
    codecs: codecMap(recordRequestCodec),
    routes: ingestRoutes({
      aggregator,
      stats,
      now,
      maxAgeSec: deps.config.MAX_POINT_AGE_DAYS * 86400,
      maxFutureSec: deps.config.MAX_POINT_FUTURE_SEC,
    }),
    start: async () => {
      flusher = new RollupFlusher(deps.database.pool, aggregator, `ingest:${process.pid}`, deps.log, deps.metrics);
      flusher.start(deps.config.FLUSH_INTERVAL_MS);
      statsd = await startStatsd({
        config: statsdSettings(deps.config),
        target: aggregator,
        noteKind: (id, kind) => aggregator.noteKind(id, kind),
        stats,
        pool: deps.database.pool,
        log: deps.log,
        metrics: deps.metrics,
        now,
      });
    },
    drain: async () => {
      // The sockets close first; what they read reaches the aggregator, then the last flush.
      await statsd.stop(deps.config.SHUTDOWN_TIMEOUT_MS / 4);
      flusher.stop();
      await flusher.flushAll(deps.config.SHUTDOWN_TIMEOUT_MS / 2);
    },
    close: () => deps.database.close(),
  });
  return Object.assign(replica, { aggregator, flusher, statsd });
}
