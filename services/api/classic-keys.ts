import type { Pool, RowDataPacket } from 'mysql2/promise';

/**
 * StatHat's classic API names a stat by two keys: the account's user key (`ukey`, table
 * classic_keys) and the stat's own key (`key`, classic_stat_keys, unique per account). A
 * stat key only counts under the ukey of the account it belongs to, so one account's ukey
 * with another's stat key finds nothing.
 */
export interface ClassicStat {
  accountId: number;
  name: string;
  /** As stored (kit/db/schema.ts KIND): the stat was created with its kind. */
  kind: number;
}

/** What a (ukey, key) pair names: a stat, or which of the two keys is unknown. */
export type ClassicLookup = ClassicStat | 'unknown_ukey' | 'unknown_key';

interface Entry {
  found: ClassicLookup;
  until: number;
}

/**
 * (ukey, key) → stat, remembered for `ttlMs` (unknown pairs for a tenth of that), so the
 * classic routes do not ask MySQL per request. A rotated ukey stops working within ttlMs.
 * Concurrent misses for one pair share one query.
 */
export class ClassicKeyCache {
  /** ukey → key → entry: nested maps spare building a key string per request. */
  private readonly known = new Map<string, Map<string, Entry>>();
  private readonly loading = new Map<string, Map<string, Promise<ClassicLookup>>>();
  private size = 0;

  constructor(
    private readonly pool: Pool,
    private readonly ttlMs: number,
  ) {}

  lookup(ukey: string, key: string): ClassicLookup | Promise<ClassicLookup> {
    const hit = this.known.get(ukey)?.get(key);
    if (hit && hit.until > Date.now()) return hit.found;
    let pending = this.loading.get(ukey);
    const running = pending?.get(key);
    if (running) return running;
    const p = this.load(ukey, key)
      .then((found) => {
        if (this.size > 100_000) {
          this.known.clear();
          this.size = 0;
        }
        let keys = this.known.get(ukey);
        if (!keys) this.known.set(ukey, (keys = new Map()));
        if (!keys.has(key)) this.size++;
        keys.set(key, { found, until: Date.now() + (typeof found === 'object' ? this.ttlMs : this.ttlMs / 10) });
        return found;
      })
      .finally(() => {
        const m = this.loading.get(ukey);
        m?.delete(key);
        if (m?.size === 0) this.loading.delete(ukey);
      });
    if (!pending) this.loading.set(ukey, (pending = new Map()));
    pending.set(key, p);
    return p;
  }

  private async load(ukey: string, key: string): Promise<ClassicLookup> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT ck.account_id, s.name, s.kind
         FROM classic_keys ck
         LEFT JOIN classic_stat_keys sk ON sk.account_id = ck.account_id AND sk.\`key\` = ?
         LEFT JOIN stats s ON s.id = sk.stat_id AND s.account_id = ck.account_id
        WHERE ck.ukey = ?`,
      [key, ukey],
    );
    const r = rows[0];
    if (!r) return 'unknown_ukey';
    if (r.name === null || r.name === undefined) return 'unknown_key';
    return { accountId: Number(r.account_id), name: String(r.name), kind: Number(r.kind) };
  }
}
