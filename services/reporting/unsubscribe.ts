import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';

/**
 * Unsubscribe links work without logging in, so the link itself is the credential:
 * `<subscription id>.<HMAC-SHA256(secret, "unsubscribe:<id>"), base64url>`. It never
 * expires (an old mail's link must still work) and can do one thing only.
 */
export function signUnsubscribeToken(secret: string, subscriptionId: number): string {
  return `${subscriptionId}.${mac(secret, subscriptionId)}`;
}

/** The subscription id a token was signed for, or undefined when it is not genuine. */
export function verifyUnsubscribeToken(secret: string, token: string): number | undefined {
  const m = /^(\d{1,10})\.([A-Za-z0-9_-]{43})$/.exec(token.trim());
  if (!m) return undefined;
  const id = Number(m[1]);
  const want = Buffer.from(mac(secret, id));
  const got = Buffer.from(m[2]);
  return got.length === want.length && timingSafeEqual(got, want) ? id : undefined;
}

function mac(secret: string, id: number): string {
  return createHmac('sha256', secret).update(`unsubscribe:${id}`).digest('base64url');
}

/** The secret when none is configured: derived from the service token, so every replica agrees. */
export function defaultUnsubscribeSecret(serviceToken: string): string {
  return createHmac('sha256', serviceToken).update('osprey report unsubscribe links').digest('base64url');
}

/** Marks the subscription unsubscribed; `already` when it was before. */
export async function unsubscribe(pool: Pool, subscriptionId: number, nowMs: number): Promise<{ found: boolean; already: boolean }> {
  const [res] = await pool.query<ResultSetHeader>('UPDATE report_subscriptions SET unsubscribed_ms = ? WHERE id = ? AND unsubscribed_ms IS NULL', [nowMs, subscriptionId]);
  if (res.affectedRows === 1) return { found: true, already: false };
  const [rows] = await pool.query<RowDataPacket[]>('SELECT id FROM report_subscriptions WHERE id = ?', [subscriptionId]);
  return { found: rows.length > 0, already: rows.length > 0 };
}
