import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { OspreyError } from './errors.js';
import { randomSecret, sha256Hex } from './secrets.js';

/**
 * Access tokens (/api/v1 bearer, /x/:token export) and statsd tokens share one shape: the
 * token is shown once at creation, only its sha256 and a short prefix are kept. Web creates
 * them from settings, the CLI from the command line; ingest checks statsd tokens.
 */
export type TokenTable = 'access_tokens' | 'statsd_tokens';

const PREFIX: Record<TokenTable, string> = { access_tokens: 'osp_', statsd_tokens: 'sd_' };

/** Longer strings are never looked up: no token we make is near it. */
const MAX_TOKEN_LENGTH = 100;

export interface TokenRow {
  id: number;
  name: string;
  prefix: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export async function createToken(pool: Pool, table: TokenTable, accountId: number, nameIn: string): Promise<TokenRow & { token: string }> {
  const name = nameIn.trim().slice(0, 100) || 'token';
  // base64url only: no '.', ':' or '|', so a statsd token works as statsgod's `token.` line prefix.
  const token = PREFIX[table] + randomSecret(24);
  const prefix = token.slice(0, 12);
  const [res] = await pool.query<ResultSetHeader>(`INSERT INTO ${table} (account_id, name, token_hash, prefix) VALUES (?, ?, ?, ?)`, [accountId, name, sha256Hex(token), prefix]);
  return { id: res.insertId, name, prefix, createdAt: new Date(), revokedAt: null, token };
}

export async function listTokens(pool: Pool, table: TokenTable, accountId: number): Promise<TokenRow[]> {
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT id, name, prefix, created_at, revoked_at FROM ${table} WHERE account_id = ? ORDER BY id`, [accountId]);
  return rows.map((r) => ({ id: Number(r.id), name: String(r.name), prefix: String(r.prefix), createdAt: new Date(r.created_at), revokedAt: r.revoked_at ? new Date(r.revoked_at) : null }));
}

export async function revokeToken(pool: Pool, table: TokenTable, accountId: number, id: number): Promise<void> {
  const [res] = await pool.query<ResultSetHeader>(`UPDATE ${table} SET revoked_at = NOW(3) WHERE id = ? AND account_id = ? AND revoked_at IS NULL`, [id, accountId]);
  if (res.affectedRows === 0) throw new OspreyError('not_found', `no live token ${id}`);
}

/** What a presented token turned out to be. */
export type TokenCheck = { accountId: number } | { refused: 'unknown' | 'revoked' };

/** Checks many presented tokens with one query (tokens are looked up by their hash). */
export async function checkTokens(pool: Pool, table: TokenTable, tokens: readonly string[]): Promise<Map<string, TokenCheck>> {
  const out = new Map<string, TokenCheck>();
  const byHash = new Map<string, string>();
  for (const t of tokens) {
    if (!t || t.length > MAX_TOKEN_LENGTH) out.set(t, { refused: 'unknown' });
    else byHash.set(sha256Hex(t), t);
  }
  if (byHash.size > 0) {
    const [rows] = await pool.query<RowDataPacket[]>(`SELECT token_hash, account_id, revoked_at FROM ${table} WHERE token_hash IN (?)`, [[...byHash.keys()]]);
    for (const r of rows) {
      const t = byHash.get(String(r.token_hash));
      if (t !== undefined) out.set(t, r.revoked_at ? { refused: 'revoked' } : { accountId: Number(r.account_id) });
    }
    for (const t of byHash.values()) if (!out.has(t)) out.set(t, { refused: 'unknown' });
  }
  return out;
}

/** The account of a live access token, or undefined. */
export async function accountOfAccessToken(pool: Pool, token: string): Promise<number | undefined> {
  if (!token || token.length > MAX_TOKEN_LENGTH) return undefined;
  const [rows] = await pool.query<RowDataPacket[]>('SELECT account_id FROM access_tokens WHERE token_hash = ? AND revoked_at IS NULL', [sha256Hex(token)]);
  return rows[0] ? Number(rows[0].account_id) : undefined;
}
