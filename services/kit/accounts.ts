import { randomSecret } from './secrets.js';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { OspreyError } from './errors.js';

export interface Account {
  id: number;
  email: string;
  ezkey: string;
}

/** A new ezkey: 18 random bytes as 24 URL-safe characters, never starting with a dash. */
export function newEzkey(): string {
  return randomSecret(18);
}

export async function createAccount(pool: Pool, email: string): Promise<Account> {
  const clean = email.trim().toLowerCase();
  if (!/^[^\s@]+@[^\s@]+$/.test(clean) || clean.length > 255) throw new OspreyError('invalid', `"${email}" is not an email address`);
  const ezkey = newEzkey();
  try {
    const [res] = await pool.query<ResultSetHeader>('INSERT INTO accounts (email, ezkey) VALUES (?, ?)', [clean, ezkey]);
    return { id: res.insertId, email: clean, ezkey };
  } catch (err) {
    if ((err as { code?: string }).code === 'ER_DUP_ENTRY') throw new OspreyError('conflict', `an account for ${clean} already exists`);
    throw err;
  }
}

export async function findAccountByEmail(pool: Pool, email: string): Promise<Account | undefined> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT id, email, ezkey FROM accounts WHERE email = ?', [email.trim().toLowerCase()]);
  return rows[0] ? { id: Number(rows[0].id), email: String(rows[0].email), ezkey: String(rows[0].ezkey) } : undefined;
}

/**
 * The account an ezkey belongs to: its current key, its backup key (kept after a
 * rotation) or, as StatHat allowed, the account's email address.
 */
export async function findAccountByEzkey(pool: Pool, ezkey: string): Promise<Account | undefined> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT id, email, ezkey FROM accounts WHERE ezkey = ? OR ezkey_backup = ? OR email = ? LIMIT 1',
    [ezkey, ezkey, ezkey.toLowerCase()],
  );
  return rows[0] ? { id: Number(rows[0].id), email: String(rows[0].email), ezkey: String(rows[0].ezkey) } : undefined;
}
