import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A fresh secret for a cookie, a token or a key: `bytes` random bytes, base64url. */
/**
 * URL-safe random text. Never starts with '-' or '_': keys and tokens are pasted after CLI
 * flags (`--ezkey K`), where a leading dash reads as another option.
 */
export function randomSecret(bytes = 32): string {
  for (;;) {
    const s = randomBytes(bytes).toString('base64url');
    if (s[0] !== '-' && s[0] !== '_') return s;
  }
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

export function hmac(secret: string, message: string): string {
  return createHmac('sha256', secret).update(message).digest('base64url');
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
