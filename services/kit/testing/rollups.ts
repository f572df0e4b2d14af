import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { RollupColumns } from '../db/schema.js';

/**
 * Writes one sample into the 1m, 1h and 1d rollups the way a flush merges it, for tests
 * that need data at chosen times without running ingest.
 */
export async function insertSample(pool: Pool, statId: number, unixSec: number, value: number): Promise<void> {
  for (const [table, size] of [['rollups_1m', 60], ['rollups_1h', 3600], ['rollups_1d', 86400]] as const) {
    await pool.query<ResultSetHeader>(
      `INSERT INTO ${table} (stat_id, bucket, count, sum, min, max, sumsq, last_value, last_time) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE count = count + 1, sum = sum + VALUES(sum), min = LEAST(min, VALUES(min)), max = GREATEST(max, VALUES(max)),
         sumsq = sumsq + VALUES(sumsq), last_value = VALUES(last_value), last_time = GREATEST(last_time, VALUES(last_time))`,
      [statId, Math.floor(unixSec / size) * size, value, value, value, value * value, value, unixSec * 1000],
    );
  }
}

export async function createStat(pool: Pool, accountId: number, name: string, kind: number): Promise<number> {
  const [res] = await pool.query<ResultSetHeader>('INSERT INTO stats (account_id, name, kind) VALUES (?, ?, ?)', [accountId, name, kind]);
  return res.insertId;
}

/** A rollup row with its stat's name and kind, as tests compare them. */
export interface NamedRollupRow extends Omit<RollupColumns, 'statId' | 'lastTime'> {
  name: string;
  kind: number;
}

/** Every row of one rollup table, by stat name, kind and bucket. */
export async function namedRollups(pool: Pool, table: 'rollups_1m' | 'rollups_1h' | 'rollups_1d' = 'rollups_1m'): Promise<NamedRollupRow[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT s.name, s.kind, r.bucket, r.count, r.sum, r.min, r.max, r.sumsq, r.last_value FROM ${table} r JOIN stats s ON s.id = r.stat_id ORDER BY s.name, s.kind, r.bucket`,
  );
  return rows.map((r) => ({ name: String(r.name), kind: Number(r.kind), bucket: Number(r.bucket), count: Number(r.count), sum: Number(r.sum), min: Number(r.min), max: Number(r.max), sumsq: Number(r.sumsq), lastValue: Number(r.last_value) }));
}
