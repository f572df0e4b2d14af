import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { newEzkey } from '../../kit/accounts.js';
import { OspreyError } from '../../kit/errors.js';
import { hashPassword, MAX_PASSWORD, MIN_PASSWORD, verifyNothing, verifyPassword } from '../auth/passwords.js';

export interface NewUser {
  userId: number;
  accountId: number;
  email: string;
  ezkey: string;
}

export function cleanEmail(email: string): string {
  const clean = email.trim().toLowerCase();
  if (!/^[^\s@<>"]+@[^\s@<>"]+$/.test(clean) || clean.length > 255) throw new OspreyError('invalid', 'that is not an email address');
  return clean;
}

/** Sign-up: a new account and its first user, in one transaction. */
export async function signUp(pool: Pool, emailIn: string, password: string): Promise<NewUser> {
  const email = cleanEmail(emailIn);
  if (password.length < MIN_PASSWORD) throw new OspreyError('invalid', `the password must be at least ${MIN_PASSWORD} characters`);
  if (password.length > MAX_PASSWORD) throw new OspreyError('invalid', `the password must be at most ${MAX_PASSWORD} characters`);
  const passwordHash = await hashPassword(password);
  const ezkey = newEzkey();
  const conn = await pool.getConnection();
  try {
    await conn.beginTransaction();
    const [acct] = await conn.query<ResultSetHeader>('INSERT INTO accounts (email, ezkey) VALUES (?, ?)', [email, ezkey]);
    const [user] = await conn.query<ResultSetHeader>('INSERT INTO users (account_id, email, password_hash) VALUES (?, ?, ?)', [acct.insertId, email, passwordHash]);
    await conn.commit();
    return { userId: user.insertId, accountId: acct.insertId, email, ezkey };
  } catch (err) {
    await conn.rollback().catch(() => {});
    if ((err as { code?: string }).code === 'ER_DUP_ENTRY') throw new OspreyError('conflict', `there is already an account for ${email}; log in instead`);
    throw err;
  } finally {
    conn.release();
  }
}

/** The user id for a correct email and password; one vague error otherwise. */
export async function logIn(pool: Pool, emailIn: string, password: string): Promise<number> {
  const email = emailIn.trim().toLowerCase();
  const [rows] = await pool.query<RowDataPacket[]>('SELECT id, password_hash FROM users WHERE email = ?', [email]);
  const ok = rows[0] && password.length <= MAX_PASSWORD ? await verifyPassword(password, String(rows[0].password_hash)) : await verifyNothing(password.slice(0, MAX_PASSWORD));
  if (!ok) throw new OspreyError('unauthenticated', 'wrong email or password');
  return Number(rows[0].id);
}
