import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { KIND_NAME } from '../kit/db/schema.js';
import { OspreyError } from '../kit/errors.js';

interface Known {
  id: number;
  kind: number;
}

/**
 * Maps (account, stat name) to the stat's id, creating the stat on first use. StatHat's
 * rule holds here: a name has one kind, and a point of another kind is refused with an
 * error naming both. Lookups are cached: a stat's id and kind never change.
 */
export class StatResolver {
  /** account → name → stat; nested maps spare building a key string per point. */
  private readonly cache = new Map<number, Map<string, Known>>();

  constructor(private readonly pool: Pool) {}

  /** Cached answer, or undefined when the database must be asked. */
  peek(accountId: number, name: string): Known | undefined {
    return this.cache.get(accountId)?.get(name);
  }

  private remember(accountId: number, name: string, known: Known): void {
    let names = this.cache.get(accountId);
    if (!names) this.cache.set(accountId, (names = new Map()));
    names.set(name, known);
  }

  /** Resolves many names of one account with at most three queries. */
  async resolve(accountId: number, wanted: Map<string, number>): Promise<Map<string, Known | OspreyError>> {
    const out = new Map<string, Known | OspreyError>();
    const missing: string[] = [];
    for (const name of wanted.keys()) {
      const hit = this.peek(accountId, name);
      if (hit) out.set(name, hit);
      else missing.push(name);
    }
    if (missing.length > 0) {
      let found = await this.load(accountId, missing);
      const toCreate = missing.filter((n) => !found.has(n));
      if (toCreate.length > 0) {
        await this.pool.query<ResultSetHeader>(
          'INSERT IGNORE INTO stats (account_id, name, kind) VALUES ?',
          [toCreate.map((n) => [accountId, n, wanted.get(n)!])],
        );
        found = new Map([...found, ...(await this.load(accountId, toCreate))]);
      }
      for (const [name, known] of found) {
        this.remember(accountId, name, known);
        out.set(name, known);
      }
    }
    for (const [name, kind] of wanted) {
      const known = out.get(name);
      if (known && !(known instanceof OspreyError) && known.kind !== kind) {
        out.set(name, new OspreyError('invalid', `stat "${name}" is a ${KIND_NAME[known.kind]}, not a ${KIND_NAME[kind]}`));
      }
    }
    return out;
  }

  /**
   * statsd's identity: (account, name, kind), so `a:1|c` and `a:1|ms` are two stats (the
   * unique key of `stats` is the same triple). Creates what is missing; no StatHat
   * one-kind rule here. Names must fit the column (255 characters): the caller checks.
   * The answer is keyed by the names asked for. Not cached here: the statsd intake keeps
   * its own table of live stats, with the per-interval values its management interface shows.
   */
  async resolveKind(accountId: number, kind: number, names: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (names.length === 0) return out;
    const pick = (rows: RowDataPacket[]) => {
      // The column's collation pads with spaces ('a ' = 'a'), so match the way MySQL does.
      const ids = new Map<string, number>();
      for (const r of rows) {
        const key = padKey(String(r.name));
        if (!ids.has(key)) ids.set(key, Number(r.id));
      }
      for (const n of names) {
        const id = ids.get(padKey(n));
        if (id !== undefined) out.set(n, id);
      }
    };
    const select = 'SELECT id, name FROM stats WHERE account_id = ? AND kind = ? AND name IN (?) ORDER BY id';
    const [found] = await this.pool.query<RowDataPacket[]>(select, [accountId, kind, names]);
    pick(found);
    const missing = names.filter((n) => !out.has(n));
    if (missing.length > 0) {
      await this.pool.query<ResultSetHeader>('INSERT IGNORE INTO stats (account_id, name, kind) VALUES ?', [missing.map((n) => [accountId, n, kind])]);
      const [created] = await this.pool.query<RowDataPacket[]>(select, [accountId, kind, missing]);
      pick(created);
    }
    return out;
  }

  private async load(accountId: number, names: string[]): Promise<Map<string, Known>> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      // Trashed stats keep receiving points (restore brings them back whole); the oldest
      // stat of a name wins if two kinds were ever created for it.
      'SELECT id, name, kind FROM stats WHERE account_id = ? AND name IN (?) ORDER BY id',
      [accountId, names],
    );
    const found = new Map<string, Known>();
    for (const r of rows) if (!found.has(r.name)) found.set(String(r.name), { id: Number(r.id), kind: Number(r.kind) });
    return found;
  }
}

function padKey(name: string): string {
  return name.charCodeAt(name.length - 1) === 32 ? name.replace(/ +$/, '') : name;
}
