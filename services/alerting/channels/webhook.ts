import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'osprey-signature';
export const IDEMPOTENCY_HEADER = 'idempotency-key';

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the time is signed with
 * the body so a captured request cannot be replayed later with a fresh time.
 */
export function signWebhook(secret: string, unixSec: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${unixSec}.${body}`).digest('hex');
  return `t=${unixSec},v1=${mac}`;
}

/** For receivers (and tests): true when `header` signs `body` with `secret`. */
export function verifyWebhookSignature(secret: string, header: string, body: string): boolean {
  const parts = Object.fromEntries(header.split(',').map((kv) => kv.split('=', 2) as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1) return false;
  const want = Buffer.from(signWebhook(secret, t, body).split('v1=')[1], 'hex');
  const got = Buffer.from(parts.v1, 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

export class DeliveryError extends Error {
  override name = 'DeliveryError';
}

/** One POST; resolves on 2xx, throws DeliveryError naming the status otherwise. */
export async function postJson(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'osprey-alerts/1', ...headers },
      body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
    });
  } catch (err) {
    throw new DeliveryError(`POST ${redactUrl(url)} failed: ${(err as Error).cause ? String((err as { cause: Error }).cause.message ?? (err as Error).cause) : (err as Error).message}`);
  }
  const text = await res.text().catch(() => '');
  if (res.status < 200 || res.status > 299) throw new DeliveryError(`POST ${redactUrl(url)} answered ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`);
}

/** Slack URLs carry their secret in the path: keep it out of errors shown in the UI. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.length > 12 ? u.pathname.slice(0, 12) + '…' : u.pathname}`;
  } catch {
    return '(bad URL)';
  }
}
