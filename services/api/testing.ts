import type { RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import { connectDatabase } from '../kit/db/client.js';
import { createMetrics } from '../kit/metrics.js';
import { testBaseConfig, type TestDatabase } from '../kit/testing/db.js';
import { ingestConfigSchema } from '../ingest/config.js';
import { namedRollups, type NamedRollupRow } from '../kit/testing/rollups.js';
import { build as buildIngest, type IngestReplica } from '../ingest/server.js';
import { apiConfigSchema, type ApiConfig } from './config.js';
import { build as buildApi } from './server.js';

/** An api replica's config for tests: every default, on 127.0.0.1 port 0, one worker. */
export function testApiConfig(databaseUrl: string, overrides: Partial<ApiConfig> = {}): ApiConfig {
  return apiConfigSchema.parse({ ...testBaseConfig(databaseUrl), PORT: 0, HOST: '127.0.0.1', API_WORKERS: 1, ...overrides });
}

/**
 * An ingest replica's config for tests: every default, flushing only when asked (or every
 * `flushIntervalMs`), and no statsd listeners (they would bind the fixed statsd ports).
 */
export function testIngestConfig(databaseUrl: string, flushIntervalMs = 3_600_000) {
  const parsed = ingestConfigSchema.parse({ ...testBaseConfig(databaseUrl), FLUSH_INTERVAL_MS: flushIntervalMs });
  // Object.assign, not a literal: the result has the listener switches whichever of them the schema has.
  // No write-ahead log either: test files run in parallel and would share the default WAL_DIR
  // (durability has its own tests, each with a log directory of its own).
  return Object.assign(parsed, { STATSD_UDP: false, STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false, WAL: false });
}

export type ApiReplica = Awaited<ReturnType<typeof buildApi>>;

export interface IngestEdge {
  ingest: IngestReplica;
  api: ApiReplica;
  /** http://127.0.0.1:port */
  base: string;
  /** Flushes ingest now, then reads rollups. */
  rollups(table?: 'rollups_1m' | 'rollups_1h' | 'rollups_1d'): Promise<RollupRow[]>;
  /** Flushes ingest now, then sums each stat's 1m rollups over all buckets (bucket is 0). */
  totals(): Promise<RollupRow[]>;
  stop(): Promise<void>;
}

export type RollupRow = NamedRollupRow;

/**
 * A real ingest replica (flushing only when asked) and a real api replica in front of it,
 * on the test's database: the whole StatHat ingest path in one process.
 */
export async function startIngestEdge(tdb: TestDatabase, apiOverrides: Partial<ApiConfig> = {}, opts: { now?: () => number } = {}): Promise<IngestEdge> {
  const silent = pino({ level: 'silent' });
  const ingest = await buildIngest({
    config: testIngestConfig(tdb.url),
    log: silent,
    database: connectDatabase(tdb.url),
    metrics: createMetrics('ingest'),
  });
  const api = await buildApi({ config: testApiConfig(tdb.url, apiOverrides), log: silent, database: connectDatabase(tdb.url), metrics: createMetrics('api'), now: opts.now });
  return {
    ingest,
    api,
    base: `http://${api.address}`,
    async rollups(table = 'rollups_1m') {
      await ingest.flusher.flush();
      return namedRollups(tdb.database.pool, table);
    },
    async totals() {
      await ingest.flusher.flush();
      const [rows] = await tdb.database.pool.query<RowDataPacket[]>(
        `SELECT s.name, s.kind, SUM(r.count) AS count, SUM(r.sum) AS sum, MIN(r.min) AS min, MAX(r.max) AS max, SUM(r.sumsq) AS sumsq
           FROM rollups_1m r JOIN stats s ON s.id = r.stat_id GROUP BY s.id ORDER BY s.name`,
      );
      return rows.map((r) => ({ name: String(r.name), kind: Number(r.kind), bucket: 0, count: Number(r.count), sum: Number(r.sum), min: Number(r.min), max: Number(r.max), sumsq: Number(r.sumsq), lastValue: NaN }));
    },
    async stop() {
      await api.stop();
      await ingest.stop();
    },
  };
}
