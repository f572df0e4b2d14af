import v8 from 'node:v8';
import { IngestService } from '../../gen/osprey/v1/ingest_pb.js';
import { startReplica, type BaseDeps, type Replica } from '../kit/replica.js';
import { Aggregator } from './aggregator.js';
import { statsdSettings, walSettings, type IngestBuildConfig } from './config.js';
import { DurableRecorder } from './durable.js';
import { WriteAheadLog } from './wal.js';
import { RollupFlusher } from './flusher.js';
import { StatResolver } from './stat-resolver.js';
import { ingestRoutes } from './router.js';
import { startStatsd, type StatsdServer } from './statsd/server.js';
import { connectDatabase } from '../kit/db/client.js';
import { codecMap } from '../kit/rpc/codecs.js';
import { recordRequestCodec, recordResponseCodec } from '../kit/rpc/record-codec.js';

export interface IngestDeps extends BaseDeps {
  /** Without the STATSD_* fields (tests of the RPCs alone) no statsd listener starts. */
  config: IngestBuildConfig;
  now?: () => number;
}

export interface IngestReplica extends Replica {
  aggregator: Aggregator;
  /** The write-ahead log in front of the aggregator, when one is configured. */
  recorder: DurableRecorder | undefined;
  flusher: RollupFlusher;
  statsd: StatsdServer;
}

/** Builds and starts one ingest replica; main.ts runs it, tests build it on port 0. */
export async function build(deps: IngestDeps): Promise<IngestReplica> {
  // Process-wide and read at every full collection, so it holds from here on.
  if (deps.config.HEAP_GROWING_PERCENT) v8.setFlagsFromString(`--heap-growing-percent=${deps.config.HEAP_GROWING_PERCENT}`);
  const aggregator = new Aggregator();
  const stats = new StatResolver(deps.database.pool);
  let flusher!: RollupFlusher;
  let statsd!: StatsdServer;
  const now = deps.now ?? Date.now;
  // The log first: what a previous run of this replica accepted and MySQL lacks is replayed
  // into the aggregator before anything new is taken.
  const walConfig = walSettings(deps.config);
  let recorder: DurableRecorder | undefined;
  if (walConfig) {
    const wal = await WriteAheadLog.open(walConfig.dir, { segmentBytes: walConfig.segmentBytes });
    recorder = new DurableRecorder(wal, aggregator, walConfig.maxBytes, walConfig.sync);
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await recorder.recover(deps.database.pool);
        deps.log.info({ dir: walConfig.dir, replayed: r.samples, fromLsn: r.fromLsn, logBytes: r.logBytes }, 'write-ahead log opened');
        break;
      } catch (err) {
        // Replay must know which logged flushes MySQL holds: wait for it rather than guess.
        if (attempt === 1 || attempt % 10 === 0) deps.log.warn({ err, attempt }, 'cannot replay the write-ahead log until MySQL answers; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
  const target = recorder ?? aggregator;
  // The flusher's own two connections: each connection keeps every statement it prepared,
  // and a flush's multi-row statements have thousands of parameters whose metadata mysql2
  // keeps per statement (over the shared pool's ten connections: 44,000 ColumnDefinitions,
  // 7.8 MB in a heap snapshot, and the packets they point into).
  const flushDatabase = connectDatabase(deps.config.DATABASE_URL, { connectionLimit: 2 });
  const replica = await startReplica('ingest', deps, {
    serviceNames: [IngestService.typeName],
    codecs: codecMap(recordRequestCodec, recordResponseCodec),
    routes: ingestRoutes({
      aggregator: target,
      durability: recorder,
      stats,
      now,
      maxAgeSec: deps.config.MAX_POINT_AGE_DAYS * 86400,
      maxFutureSec: deps.config.MAX_POINT_FUTURE_SEC,
    }),
    start: async () => {
      flusher = new RollupFlusher(flushDatabase.pool, aggregator, `ingest:${process.pid}`, deps.log, deps.metrics);
      flusher.wal = recorder;
      flusher.start(deps.config.FLUSH_INTERVAL_MS, { busyShare: deps.config.FLUSH_BUSY_SHARE, maxIntervalMs: deps.config.FLUSH_MAX_INTERVAL_MS });
      statsd = await startStatsd({
        config: statsdSettings(deps.config),
        target,
        backpressure: recorder,
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
    close: async () => {
      await recorder?.close();
      await flushDatabase.close();
      await deps.database.close();
    },
  });
  return Object.assign(replica, { aggregator, recorder, flusher, statsd });
}
