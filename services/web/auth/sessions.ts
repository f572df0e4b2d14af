import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { OspreyError } from '../../kit/errors.js';
import type { Viewer, WebEnv } from '../env.js';
import { randomSecret, sameSecret, sha256Hex } from './secrets.js';

export const SESSION_COOKIE = 'osprey_session';
/** Double-submit token for the forms shown before a session exists (log in, sign up). */
export const PRE_CSRF_COOKIE = 'osprey_csrf';

export interface SessionOptions {
  ttlHours: number;
  secureCookies: boolean;
}

export async function createSession(pool: Pool, c: Context, userId: number, opts: SessionOptions): Promise<void> {
  const id = randomSecret(32);
  const expires = new Date(Date.now() + opts.ttlHours * 3600_000);
  await pool.query<ResultSetHeader>('INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at) VALUES (?, ?, ?, ?)', [sha256Hex(id), userId, randomSecret(24), expires]);
  setCookie(c, SESSION_COOKIE, id, { httpOnly: true, sameSite: 'Lax', secure: opts.secureCookies, path: '/', expires });
}

export async function endSession(pool: Pool, c: Context): Promise<void> {
  const id = getCookie(c, SESSION_COOKIE);
  if (id) await pool.query('DELETE FROM sessions WHERE id_hash = ?', [sha256Hex(id)]);
  deleteCookie(c, SESSION_COOKIE, { path: '/' });
}

export async function findViewer(pool: Pool, sessionId: string | undefined): Promise<Viewer | undefined> {
  if (!sessionId || sessionId.length > 100) return undefined;
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT u.id, u.account_id, u.email, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.id_hash = ? AND s.expires_at > NOW(3)`,
    [sha256Hex(sessionId)],
  );
  const r = rows[0];
  return r ? { userId: Number(r.id), accountId: Number(r.account_id), email: String(r.email), csrf: String(r.csrf_token) } : undefined;
}

/** Sets `viewer` (or undefined) and `csrf` for every page request. */
export function loadViewer(pool: Pool, opts: SessionOptions): MiddlewareHandler<WebEnv> {
  return async (c, next) => {
    const viewer = await findViewer(pool, getCookie(c, SESSION_COOKIE));
    c.set('viewer', viewer);
    if (viewer) c.set('csrf', viewer.csrf);
    else {
      let pre = getCookie(c, PRE_CSRF_COOKIE);
      if (!pre || pre.length !== 32) {
        pre = randomSecret(24);
        setCookie(c, PRE_CSRF_COOKIE, pre, { httpOnly: true, sameSite: 'Lax', secure: opts.secureCookies, path: '/' });
      }
      c.set('csrf', pre);
    }
    await next();
  };
}

/** Refuses a state-changing request whose `_csrf` field (or x-csrf-token header) is not this session's. */
export const checkCsrf: MiddlewareHandler<WebEnv> = async (c, next) => {
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
    let sent = c.req.header('x-csrf-token');
    if (!sent) {
      const type = c.req.header('content-type') ?? '';
      if (type.startsWith('application/x-www-form-urlencoded') || type.startsWith('multipart/form-data')) {
        const body = await c.req.parseBody();
        sent = typeof body._csrf === 'string' ? body._csrf : undefined;
      }
    }
    if (!sent || !sameSecret(sent, c.get('csrf'))) throw new OspreyError('forbidden', 'the form has expired or did not come from this site; reload the page and try again');
  }
  await next();
};

/** Pages behind a login: an anonymous visitor is sent to the login page and back. */
export const requireLogin: MiddlewareHandler<WebEnv> = async (c, next) => {
  if (!c.get('viewer')) {
    const next_ = c.req.method === 'GET' ? c.req.path + (new URL(c.req.url).search ?? '') : '/stats';
    return c.redirect(`/login?next=${encodeURIComponent(next_)}`);
  }
  await next();
};

export function viewerOf(c: Context<WebEnv>): Viewer {
  const v = c.get('viewer');
  if (!v) throw new OspreyError('unauthenticated', 'log in first');
  return v;
}
