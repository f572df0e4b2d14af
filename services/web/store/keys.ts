import type { Pool, RowDataPacket } from 'mysql2/promise';
import { newEzkey } from '../../kit/accounts.js';
import { OspreyError } from '../../kit/errors.js';
import { randomSecret } from '../auth/secrets.js';

export interface AccountKeys {
  email: string;
  ezkey: string;
  ezkeyBackup: string | null;
  ukey: string | null;
}

export async function accountKeys(pool: Pool, accountId: number): Promise<AccountKeys> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT a.email, a.ezkey, a.ezkey_backup, k.ukey FROM accounts a LEFT JOIN classic_keys k ON k.account_id = a.id WHERE a.id = ?',
    [accountId],
  );
  if (!rows[0]) throw new OspreyError('not_found', 'no such account');
  const r = rows[0];
  return { email: String(r.email), ezkey: String(r.ezkey), ezkeyBackup: r.ezkey_backup ? String(r.ezkey_backup) : null, ukey: r.ukey ? String(r.ukey) : null };
}

/**
 * A new ezkey; the current one becomes the backup key and keeps working, so clients can
 * be moved over. A second rotation retires the older backup.
 */
export async function rotateEzkey(pool: Pool, accountId: number): Promise<string> {
  const ezkey = newEzkey();
  await pool.query('UPDATE accounts SET ezkey_backup = ezkey, ezkey = ? WHERE id = ?', [ezkey, accountId]);
  return ezkey;
}

/** Creates or replaces the classic API user key. */
export async function rotateUkey(pool: Pool, accountId: number): Promise<string> {
  const ukey = randomSecret(12);
  await pool.query('INSERT INTO classic_keys (account_id, ukey) VALUES (?, ?) ON DUPLICATE KEY UPDATE ukey = VALUES(ukey)', [accountId, ukey]);
  return ukey;
}

export interface StatKeyRow {
  statId: number;
  name: string;
  kind: number;
  key: string | null;
}

export async function listStatKeys(pool: Pool, accountId: number): Promise<StatKeyRow[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT s.id, s.name, s.kind, k.key FROM stats s LEFT JOIN classic_stat_keys k ON k.stat_id = s.id
      WHERE s.account_id = ? AND s.deleted_at IS NULL ORDER BY s.name, s.kind`,
    [accountId],
  );
  return rows.map((r) => ({ statId: Number(r.id), name: String(r.name), kind: Number(r.kind), key: r.key ? String(r.key) : null }));
}

/** Gives every live stat without one a classic stat key (`/c`, `/v` with `ukey` + `key`). */
export async function createMissingStatKeys(pool: Pool, accountId: number): Promise<number> {
  const missing = (await listStatKeys(pool, accountId)).filter((s) => !s.key);
  if (missing.length === 0) return 0;
  await pool.query('INSERT IGNORE INTO classic_stat_keys (stat_id, account_id, `key`) VALUES ?', [missing.map((s) => [s.statId, accountId, randomSecret(12)])]);
  return missing.length;
}
