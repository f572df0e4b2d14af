import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';

export interface RetentionPolicy {
  minuteDays: number;
  hourDays: number;
  trashHours: number;
}

export interface RetentionResult {
  rollups1m: number;
  rollups1h: number;
  purgedStats: number;
}

const ROWS_PER_DELETE = 5000;

/**
 * Deletes rollups past their retention and stats that have been in the trash longer than
 * the trash period, with their rollups and alert rules. Deletes go stat by stat along the
 * rollups' primary key (stat_id, bucket), so no extra index is needed on the hot tables,
 * and in bounded chunks so no transaction grows large. Idempotent: replicas may overlap.
 */
export async function cleanUp(pool: Pool, nowMs: number, policy: RetentionPolicy): Promise<RetentionResult> {
  const nowSec = Math.floor(nowMs / 1000);
  const result: RetentionResult = { rollups1m: 0, rollups1h: 0, purgedStats: 0 };
  const [stats] = await pool.query<RowDataPacket[]>('SELECT id FROM stats ORDER BY id');
  for (const { id } of stats) {
    result.rollups1m += await deleteChunked(pool, 'DELETE FROM rollups_1m WHERE stat_id = ? AND bucket < ? LIMIT ?', [id, nowSec - policy.minuteDays * 86400]);
    result.rollups1h += await deleteChunked(pool, 'DELETE FROM rollups_1h WHERE stat_id = ? AND bucket < ? LIMIT ?', [id, nowSec - policy.hourDays * 86400]);
  }
  const [trashed] = await pool.query<RowDataPacket[]>('SELECT id FROM stats WHERE deleted_at IS NOT NULL AND deleted_at < ?', [new Date(nowMs - policy.trashHours * 3600_000)]);
  for (const { id } of trashed) {
    // The stat row goes first, and only if it is still in the trash: a restore that got in
    // between wins and keeps its data. A crash after this leaves orphan rows that no stat
    // reads (harmless, noted in docs/alerting-reporting.md).
    const [res] = await pool.query<ResultSetHeader>('DELETE FROM stats WHERE id = ? AND deleted_at IS NOT NULL AND deleted_at < ?', [id, new Date(nowMs - policy.trashHours * 3600_000)]);
    if (res.affectedRows === 0) continue;
    result.purgedStats++;
    await purgeStatData(pool, id);
  }
  return result;
}

/** Everything that hangs off a purged stat. */
export async function purgeStatData(pool: Pool, statId: number): Promise<void> {
  for (const table of ['rollups_1m', 'rollups_1h', 'rollups_1d']) await deleteChunked(pool, `DELETE FROM ${table} WHERE stat_id = ? LIMIT ?`, [statId]);
  const [rules] = await pool.query<RowDataPacket[]>('SELECT id FROM alert_rules WHERE stat_id = ?', [statId]);
  if (rules.length) {
    await pool.query('DELETE FROM alert_channels WHERE rule_id IN (?)', [rules.map((r) => r.id)]);
    await pool.query('DELETE FROM alert_rules WHERE id IN (?)', [rules.map((r) => r.id)]);
  }
}

async function deleteChunked(pool: Pool, sql: string, params: unknown[]): Promise<number> {
  let total = 0;
  for (;;) {
    const [res] = await pool.query<ResultSetHeader>(sql, [...params, ROWS_PER_DELETE]);
    total += res.affectedRows;
    if (res.affectedRows < ROWS_PER_DELETE) return total;
  }
}
