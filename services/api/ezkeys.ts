import type { Pool } from 'mysql2/promise';
import { findAccountByEzkey } from '../kit/accounts.js';

/**
 * ezkey → account id, remembered for `ttlMs` (unknown keys for a tenth of that) so the
 * hot path does not ask MySQL per request. Concurrent misses for one key share one query.
 *
 * StatHat let the account's email address stand for its ezkey. Anyone who knows the
 * address can then post into the account, so `acceptEmail: false` turns that off (an
 * ezkey never contains `@`, an email address always does).
 */
export class EzkeyCache {
  private readonly known = new Map<string, { accountId: number | undefined; until: number }>();
  private readonly loading = new Map<string, Promise<number | undefined>>();

  constructor(
    private readonly pool: Pool,
    private readonly ttlMs: number,
    private readonly acceptEmail = true,
  ) {}

  lookup(ezkey: string): number | undefined | Promise<number | undefined> {
    if (!this.acceptEmail && ezkey.includes('@')) return undefined;
    const hit = this.known.get(ezkey);
    if (hit && hit.until > Date.now()) return hit.accountId;
    let p = this.loading.get(ezkey);
    if (!p) {
      p = findAccountByEzkey(this.pool, ezkey)
        .then((account) => {
          const accountId = account?.id;
          if (this.known.size > 100_000) this.known.clear();
          this.known.set(ezkey, { accountId, until: Date.now() + (accountId ? this.ttlMs : this.ttlMs / 10) });
          return accountId;
        })
        .catch((err: unknown) => {
          // MySQL is away: a key we knew stays good (stale-if-error), so known clients keep
          // posting through an outage; an unknown one fails (503).
          if (hit) return hit.accountId;
          throw err;
        })
        .finally(() => this.loading.delete(ezkey));
      this.loading.set(ezkey, p);
    }
    return p;
  }
}
