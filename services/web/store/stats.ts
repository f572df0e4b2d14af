import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { KIND, KIND_NAME, type KindName } from '../../kit/db/schema.js';
import { OspreyError } from '../../kit/errors.js';

/** A stat in the trash can be restored for this long; reporting purges it after. */
export const TRASH_HOURS = 48;

export interface StatRow {
  id: number;
  name: string;
  kind: KindName;
  public: boolean;
  createdAt: Date;
  deletedAt: Date | null;
}

function toStat(r: RowDataPacket): StatRow {
  return {
    id: Number(r.id),
    name: String(r.name),
    kind: KIND_NAME[Number(r.kind)],
    public: Boolean(r.public),
    createdAt: new Date(r.created_at),
    deletedAt: r.deleted_at ? new Date(r.deleted_at) : null,
  };
}

export function parseKind(s: string | undefined | null): KindName | undefined {
  if (!s) return undefined;
  if (!Object.hasOwn(KIND, s)) throw new OspreyError('invalid', `kind must be one of ${Object.keys(KIND).join(', ')}`);
  return s as KindName;
}

export interface ListOptions {
  q?: string;
  kind?: KindName;
  /** The trash instead of the live stats. */
  deleted?: boolean;
  offset?: number;
  limit?: number;
}

const COLUMNS = 'id, name, kind, public, created_at, deleted_at';
const IN_TRASH = `deleted_at IS NOT NULL AND deleted_at > NOW(3) - INTERVAL ${TRASH_HOURS} HOUR`;

export async function listStats(pool: Pool, accountId: number, opts: ListOptions = {}): Promise<{ stats: StatRow[]; total: number }> {
  const where = ['account_id = ?', opts.deleted ? IN_TRASH : 'deleted_at IS NULL'];
  const args: unknown[] = [accountId];
  if (opts.q) {
    where.push("name LIKE ? ESCAPE '\\\\'");
    args.push(`%${opts.q.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`);
  }
  if (opts.kind) {
    where.push('kind = ?');
    args.push(KIND[opts.kind]);
  }
  const limit = Math.min(Math.max(opts.limit ?? 1000, 1), 1000);
  const offset = Math.max(opts.offset ?? 0, 0);
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM stats WHERE ${where.join(' AND ')} ORDER BY name, kind, id LIMIT ? OFFSET ?`, [...args, limit, offset]);
  const [count] = await pool.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM stats WHERE ${where.join(' AND ')}`, args);
  return { stats: rows.map(toStat), total: Number(count[0].n) };
}

/** One of the account's live stats (or one in the trash when asked); anything else is not found. */
export async function getStat(pool: Pool, accountId: number, id: number, opts: { includeTrash?: boolean } = {}): Promise<StatRow> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT ${COLUMNS} FROM stats WHERE id = ? AND account_id = ? AND (deleted_at IS NULL${opts.includeTrash ? ` OR (${IN_TRASH})` : ''})`,
    [id, accountId],
  );
  if (!rows[0]) throw new OspreyError('not_found', `no stat ${id}`);
  return toStat(rows[0]);
}

export async function getStats(pool: Pool, accountId: number, ids: number[]): Promise<StatRow[]> {
  const out: StatRow[] = [];
  for (const id of ids) out.push(await getStat(pool, accountId, id));
  return out;
}

export async function findStatByName(pool: Pool, accountId: number, name: string): Promise<StatRow> {
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM stats WHERE account_id = ? AND name = ? AND deleted_at IS NULL ORDER BY kind LIMIT 1`, [accountId, name]);
  if (!rows[0]) throw new OspreyError('not_found', `no stat named ${JSON.stringify(name.slice(0, 255))}`);
  return toStat(rows[0]);
}


export async function statsForEmbed(pool: Pool, ids: number[]): Promise<(StatRow & { accountId: number })[]> {
  if (ids.length === 0) return [];
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT ${COLUMNS}, account_id FROM stats WHERE id IN (?) AND deleted_at IS NULL`, [ids]);
  const byId = new Map(rows.map((r) => [Number(r.id), { ...toStat(r), accountId: Number(r.account_id) }]));
  return ids.map((id) => byId.get(id)).filter((s): s is StatRow & { accountId: number } => s !== undefined);
}

export async function trashStat(pool: Pool, accountId: number, id: number): Promise<void> {
  const [res] = await pool.query<ResultSetHeader>('UPDATE stats SET deleted_at = NOW(3) WHERE id = ? AND account_id = ? AND deleted_at IS NULL', [id, accountId]);
  if (res.affectedRows === 0) throw new OspreyError('not_found', `no stat ${id}`);
  await pool.query('DELETE FROM dashboard_items WHERE account_id = ? AND stat_id = ?', [accountId, id]);
}

export async function restoreStat(pool: Pool, accountId: number, id: number): Promise<void> {
  const [res] = await pool.query<ResultSetHeader>(`UPDATE stats SET deleted_at = NULL WHERE id = ? AND account_id = ? AND ${IN_TRASH}`, [id, accountId]);
  if (res.affectedRows === 0) throw new OspreyError('not_found', `no stat ${id} in the trash`);
}

export async function setPublic(pool: Pool, accountId: number, id: number, isPublic: boolean): Promise<void> {
  const [res] = await pool.query<ResultSetHeader>('UPDATE stats SET public = ? WHERE id = ? AND account_id = ? AND deleted_at IS NULL', [isPublic, id, accountId]);
  if (res.affectedRows === 0) throw new OspreyError('not_found', `no stat ${id}`);
}

/** A stat id from a URL: a positive integer, else not found. */
export function statId(s: string | undefined): number {
  if (!s || !/^[1-9]\d{0,9}$/.test(s) || Number(s) > 0xffffffff) throw new OspreyError('not_found', `no stat ${JSON.stringify(String(s).slice(0, 20))}`);
  return Number(s);
}
