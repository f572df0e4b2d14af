import { hmac, sameSecret } from './auth/secrets.js';

// A private stat embeds only with a signature over exactly the stat ids of the URL, made
// with the server secret: the owner can hand the URL out, nobody can forge another.

export function embedSignature(secret: string, ids: readonly number[]): string {
  return hmac(secret, `embed:${ids.join('/')}`);
}

export function checkEmbedSignature(secret: string, ids: readonly number[], sig: string | undefined): boolean {
  return !!sig && sameSecret(sig, embedSignature(secret, ids));
}

/** The embed image path for stats, signed when any of them is private. */
export function embedPath(secret: string, ids: readonly number[], opts: { anyPrivate: boolean; format?: 'svg' | 'png'; tf?: string; w?: number; h?: number }): string {
  const q = new URLSearchParams();
  if (opts.tf) q.set('tf', opts.tf);
  if (opts.w) q.set('w', String(opts.w));
  if (opts.h) q.set('h', String(opts.h));
  if (opts.anyPrivate) q.set('sig', embedSignature(secret, ids));
  const qs = q.toString();
  return `/embed/graph/${ids.join('/')}.${opts.format ?? 'svg'}${qs ? `?${qs}` : ''}`;
}
