import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { OspreyError } from '../../kit/errors.js';
import { getStat } from './stats.js';

export async function dashboardStatIds(pool: Pool, accountId: number): Promise<number[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT d.stat_id FROM dashboard_items d JOIN stats s ON s.id = d.stat_id AND s.account_id = d.account_id
      WHERE d.account_id = ? AND s.deleted_at IS NULL ORDER BY d.position, d.created_at`,
    [accountId],
  );
  return rows.map((r) => Number(r.stat_id));
}

export async function addToDashboard(pool: Pool, accountId: number, statId: number): Promise<void> {
  await getStat(pool, accountId, statId);
  await pool.query(
    `INSERT IGNORE INTO dashboard_items (account_id, stat_id, position)
      SELECT ?, ?, COALESCE(MAX(position) + 1, 0) FROM dashboard_items WHERE account_id = ?`,
    [accountId, statId, accountId],
  );
}

/** Not found when the stat is not on this account's dashboard (whosever it is), like every other write. */
export async function removeFromDashboard(pool: Pool, accountId: number, statId: number): Promise<void> {
  const [res] = await pool.query<ResultSetHeader>('DELETE FROM dashboard_items WHERE account_id = ? AND stat_id = ?', [accountId, statId]);
  if (res.affectedRows === 0) throw new OspreyError('not_found', `no stat ${statId} on the dashboard`);
}
