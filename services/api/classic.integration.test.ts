import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAccount, type Account } from '../kit/accounts.js';
import { KIND } from '../kit/db/schema.js';
import { createTestDatabase, type TestDatabase } from '../kit/testing/db.js';
import { createMissingStatKeys, listStatKeys, rotateUkey } from '../web/store/keys.js';
import { startIngestEdge, type IngestEdge } from './testing.js';

// The classic API (/c, /v with ukey + key), fractional counts and t backfill, through a
// real api and a real ingest replica into MariaDB; every rollup column is checked.

let tdb: TestDatabase;
let edge: IngestEdge;
let account: Account;

beforeEach(async () => {
  tdb = await createTestDatabase();
  edge = await startIngestEdge(tdb);
  account = await createAccount(tdb.database.pool, 'classic@example.com');
});

afterEach(async () => {
  await edge.stop();
  await tdb.drop();
});

const post = (path: string, body: string) => fetch(edge.base + path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
const q = (fields: Record<string, string | number>) => new URLSearchParams(Object.entries(fields).map(([k, v]): [string, string] => [k, String(v)])).toString();

/** Creates the stats through /ez (as a user would), then a ukey and stat keys as Settings does. */
async function classicKeysFor(acc: Account, stats: Record<string, 'count' | 'value'>): Promise<{ ukey: string; keys: Record<string, string> }> {
  for (const [stat, field] of Object.entries(stats)) expect((await post('/ez', q({ ezkey: acc.ezkey, stat, [field]: 0 }))).status).toBe(204);
  const ukey = await rotateUkey(tdb.database.pool, acc.id);
  await createMissingStatKeys(tdb.database.pool, acc.id);
  const rows = await listStatKeys(tdb.database.pool, acc.id);
  return { ukey, keys: Object.fromEntries(rows.map((r) => [r.name, r.key!])) };
}

describe('classic /c and /v (integration)', () => {
  it('counts with /c and values with /v, by POST form and by GET query, answering 204 or 200 with vb=1', async () => {
    const { ukey, keys } = await classicKeysFor(account, { hits: 'count', load: 'value' });
    const before = await edge.totals();
    expect(before.map((r) => [r.name, r.count, r.sum])).toEqual([
      ['hits', 1, 0],
      ['load', 1, 0],
    ]);
    expect((await post('/c', q({ ukey, key: keys.hits, count: 2 }))).status).toBe(204);
    expect((await fetch(`${edge.base}/c?${q({ ukey, key: keys.hits, count: 0.25 })}`)).status).toBe(204);
    // Some old clients sent a classic count as `value`.
    expect((await post('/c', q({ ukey, key: keys.hits, value: 0.5 }))).status).toBe(204);
    const vb = await post('/v', q({ ukey, key: keys.load, value: 1.5, vb: 1 }));
    expect([vb.status, await vb.json()]).toEqual([200, { status: 200, msg: 'ok' }]);
    expect((await fetch(`${edge.base}/v/?${q({ ukey, key: keys.load, value: 4 })}`)).status).toBe(204);
    const rows = await edge.totals();
    expect(rows.map((r) => [r.name, r.kind, r.count, r.sum, r.min, r.max, r.sumsq])).toEqual([
      ['hits', KIND.counter, 4, 2.75, 0, 2, 4 + 0.0625 + 0.25],
      ['load', KIND.value, 3, 5.5, 0, 4, 2.25 + 16],
    ]);
  });

  it('answers StatHat errors: missing fields 400, unknown ukey 401, unknown key 404, wrong kind 400', async () => {
    const { ukey, keys } = await classicKeysFor(account, { hits: 'count', load: 'value' });
    const cases: [string, string, number, string][] = [
      ['/c', q({ key: keys.hits, count: 1 }), 400, 'ukey is required'],
      ['/c', q({ ukey, count: 1 }), 400, 'key is required'],
      ['/c', q({ ukey, key: keys.hits }), 400, 'count is required'],
      ['/v', q({ ukey, key: keys.load, count: 1 }), 400, 'value is required'],
      ['/c', q({ ukey, key: keys.hits, count: 1, value: 1 }), 400, 'give count or value, not both'],
      ['/c', q({ ukey, key: keys.hits, count: 'lots' }), 400, 'count must be a number, got "lots"'],
      ['/v', q({ ukey, key: keys.load, value: '1e999' }), 400, 'value is out of range'],
      ['/c', q({ ukey, key: keys.hits, count: 1, t: 'noon' }), 400, 't must be a unix time in seconds, got "noon"'],
      ['/c', q({ ukey: 'not-a-ukey', key: keys.hits, count: 1 }), 401, 'unknown ukey'],
      ['/c', q({ ukey, key: 'not-a-key', count: 1 }), 404, 'no stat has this key'],
      ['/c', q({ ukey, key: keys.load, count: 1 }), 400, 'stat "load" is a value, not a counter: send it to /v'],
      ['/v', q({ ukey, key: keys.hits, value: 1 }), 400, 'stat "hits" is a counter, not a value: send it to /c'],
    ];
    for (const [path, body, status, msg] of cases) {
      const res = await post(path, body);
      expect([path, body, res.status, await res.json()]).toEqual([path, body, status, { status, msg }]);
    }
    const put = await fetch(`${edge.base}/v`, { method: 'PUT', body: 'x' });
    expect([put.status, put.headers.get('allow')]).toEqual([405, 'GET, POST']);
    // Nothing of the above reached a rollup (the zeros are the /ez posts that made the stats).
    expect((await edge.totals()).map((r) => r.sum)).toEqual([0, 0]);
  });

  it("finds nothing with one account's ukey and another account's stat key", async () => {
    const mine = await classicKeysFor(account, { mine: 'count' });
    const other = await createAccount(tdb.database.pool, 'other@example.com');
    const theirs = await classicKeysFor(other, { theirs: 'count' });
    const res = await post('/c', q({ ukey: mine.ukey, key: theirs.keys.theirs, count: 5 }));
    expect([res.status, await res.json()]).toEqual([404, { status: 404, msg: 'no stat has this key' }]);
    const swapped = await post('/c', q({ ukey: theirs.ukey, key: mine.keys.mine, count: 5 }));
    expect(swapped.status).toBe(404);
    expect((await edge.totals()).map((r) => [r.name, r.sum])).toEqual([
      ['mine', 0],
      ['theirs', 0],
    ]);
  });
});

describe('fractional counts and t backfill (integration)', () => {
  it('stores fractional counts exactly, from /ez form, JSON and /c', async () => {
    const { ukey, keys } = await classicKeysFor(account, { frac: 'count' });
    expect((await post('/ez', q({ ezkey: account.ezkey, stat: 'frac', count: 0.5 }))).status).toBe(204);
    const json = await fetch(`${edge.base}/ez`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ ezkey: account.ezkey, data: [{ stat: 'frac', count: 0.125 }, { stat: 'frac', count: '1.25' }] }) });
    expect(json.status).toBe(204);
    expect((await post('/c', q({ ukey, key: keys.frac, count: '-0.375' }))).status).toBe(204);
    const [row] = await edge.totals();
    expect([row.count, row.sum, row.min, row.max]).toEqual([5, 0.5 + 0.125 + 1.25 - 0.375, -0.375, 1.25]);
  });

  it('puts a point with t into the 1m, 1h and 1d buckets of that time, not of now', async () => {
    const { ukey, keys } = await classicKeysFor(account, { late: 'count', 'late value': 'value' });
    await edge.rollups(); // flush the zeros that made the stats
    await tdb.database.pool.query('DELETE FROM rollups_1m');
    await tdb.database.pool.query('DELETE FROM rollups_1h');
    await tdb.database.pool.query('DELETE FROM rollups_1d');
    const day = Math.floor(Date.now() / 1000 / 86400) * 86400 - 3 * 86400;
    const t1 = day + 5 * 3600 + 7 * 60 + 13; // three days ago, 05:07:13
    const t2 = t1 + 30; // same minute
    const t3 = t1 + 3600; // next hour
    expect((await post('/ez', q({ ezkey: account.ezkey, stat: 'late', count: 2, t: t1 }))).status).toBe(204);
    expect((await post('/c', q({ ukey, key: keys.late, count: 3, t: t2 }))).status).toBe(204);
    expect((await fetch(`${edge.base}/ez`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ezkey: account.ezkey, data: [{ stat: 'late', count: 4, t: t3 }] }) })).status).toBe(204);
    expect((await fetch(`${edge.base}/v?${q({ ukey, key: keys['late value'], value: 9, t: t1 })}`)).status).toBe(204);
    const minute = t1 - (t1 % 60);
    const hour = t1 - (t1 % 3600);
    const pick = (rows: Awaited<ReturnType<IngestEdge['rollups']>>) => rows.map((r) => [r.name, r.bucket, r.count, r.sum]);
    expect(pick(await edge.rollups('rollups_1m'))).toEqual([
      ['late', minute, 2, 5],
      ['late', minute + 3600, 1, 4],
      ['late value', minute, 1, 9],
    ]);
    expect(pick(await edge.rollups('rollups_1h'))).toEqual([
      ['late', hour, 2, 5],
      ['late', hour + 3600, 1, 4],
      ['late value', hour, 1, 9],
    ]);
    expect(pick(await edge.rollups('rollups_1d'))).toEqual([
      ['late', day, 3, 9],
      ['late value', day, 1, 9],
    ]);
  });

  it('refuses a t too far in the future or the past, naming it, and stores nothing', async () => {
    const { ukey, keys } = await classicKeysFor(account, { when: 'count' });
    const now = Math.floor(Date.now() / 1000);
    const future = await post('/c', q({ ukey, key: keys.when, count: 1, t: now + 3600 }));
    expect([future.status, await future.json()]).toEqual([400, { status: 400, msg: `t=${now + 3600} is more than 600 seconds in the future` }]);
    const old = await post('/ez', q({ ezkey: account.ezkey, stat: 'when', count: 1, t: now - 800 * 86400 }));
    expect([old.status, await old.json()]).toEqual([400, { status: 400, msg: `t=${now - 800 * 86400} is older than 730 days` }]);
    expect((await edge.totals()).map((r) => [r.count, r.sum])).toEqual([[1, 0]]);
  });
});
