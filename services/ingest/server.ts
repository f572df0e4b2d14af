import { IngestService } from '../../gen/osprey/v1/ingest_pb.js';
import { startReplica, type BaseDeps, type Replica } from '../kit/replica.js';
import { Aggregator } from './aggregator.js';
import type { IngestConfig } from './config.js';
import { RollupFlusher } from './flusher.js';
import { StatResolver } from './stat-resolver.js';
import { ingestRoutes } from './router.js';
import { codecMap } from '../kit/rpc/codecs.js';
import { recordRequestCodec } from '../kit/rpc/record-codec.js';

export interface IngestDeps extends BaseDeps {
  config: IngestConfig;
  now?: () => number;
}

export interface IngestReplica extends Replica {
  aggregator: Aggregator;
  flusher: RollupFlusher;
}

/** Builds and starts one ingest replica; main.ts runs it, tests build it on port 0. */
export async function build(deps: IngestDeps): Promise<IngestReplica> {
  const aggregator = new Aggregator();
  const stats = new StatResolver(deps.database.pool);
  let flusher!: RollupFlusher;
  const replica = await startReplica('ingest', deps, {
    serviceNames: [IngestService.typeName],
    codecs: codecMap(recordRequestCodec),
    routes: ingestRoutes({
      aggregator,
      stats,
      now: deps.now ?? Date.now,
      maxAgeSec: deps.config.MAX_POINT_AGE_DAYS * 86400,
      maxFutureSec: deps.config.MAX_POINT_FUTURE_SEC,
    }),
    start: async () => {
      flusher = new RollupFlusher(deps.database.pool, aggregator, `ingest:${process.pid}`, deps.log, deps.metrics);
      flusher.start(deps.config.FLUSH_INTERVAL_MS);
    },
    drain: async () => {
      flusher.stop();
      await flusher.flushAll(deps.config.SHUTDOWN_TIMEOUT_MS / 2);
    },
    close: () => deps.database.close(),
  });
  return Object.assign(replica, { aggregator, flusher });
}
