import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import { createAccount, type Account } from '../kit/accounts.js';
import { connectDatabase } from '../kit/db/client.js';
import { createMetrics } from '../kit/metrics.js';
import { createTestDatabase, type TestDatabase } from '../kit/testing/db.js';
import { build as buildIngest, type IngestReplica } from '../ingest/server.js';
import { MetricKind } from '../../gen/osprey/v1/ingest_pb.js';
import { build as buildApi } from './server.js';
import { testApiConfig, testIngestConfig } from './testing.js';

let tdb: TestDatabase;
let account: Account;
let ingest: IngestReplica;
let api: Awaited<ReturnType<typeof buildApi>>;

beforeEach(async () => {
  tdb = await createTestDatabase();
  account = await createAccount(tdb.database.pool, 'ez@example.com');
  const silent = pino({ level: 'silent' });
  ingest = await buildIngest({
    config: testIngestConfig(tdb.url, 60_000),
    log: silent,
    database: connectDatabase(tdb.url),
    metrics: createMetrics('ingest'),
  });
  api = await buildApi({
    config: testApiConfig(tdb.url),
    log: silent,
    database: connectDatabase(tdb.url),
    metrics: createMetrics('api'),
  });
});

afterEach(async () => {
  await api.stop();
  await ingest.stop();
  await tdb.drop();
});

const url = () => `http://${api.address}/ez`;
const form = (body: string) => fetch(url(), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
const json = (doc: unknown, query = '') => fetch(url() + query, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof doc === 'string' ? doc : JSON.stringify(doc) });

async function stored(): Promise<Record<string, { count: number; sum: number }>> {
  await ingest.flusher.flush();
  const [rows] = await tdb.database.pool.query<RowDataPacket[]>('SELECT s.name, SUM(r.count) AS count, SUM(r.sum) AS sum FROM rollups_1m r JOIN stats s ON s.id = r.stat_id GROUP BY s.name');
  return Object.fromEntries(rows.map((r) => [r.name, { count: Number(r.count), sum: Number(r.sum) }]));
}

describe('/ez through api and ingest (integration)', () => {
  it('takes form posts and GETs, answers 204 or 200 with vb=1, and stores the points', async () => {
    const k = encodeURIComponent(account.ezkey);
    expect((await form(`ezkey=${k}&stat=page+views&count=2`)).status).toBe(204);
    const vb = await form(`ezkey=${k}&stat=page+views&count=3&vb=1`);
    expect([vb.status, await vb.json()]).toEqual([200, { status: 200, msg: 'ok' }]);
    expect((await fetch(`${url()}?ezkey=${k}&stat=load&value=0.5`)).status).toBe(204);
    expect((await fetch(`${url()}?stat=load&value=1.5`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `ezkey=${k}` })).status).toBe(204);
    expect(await stored()).toEqual({ 'page views': { count: 2, sum: 5 }, load: { count: 2, sum: 2 } });
  });

  it('answers StatHat error shapes', async () => {
    const unknown = await form('ezkey=nope&stat=x&count=1');
    expect([unknown.status, await unknown.json()]).toEqual([401, { status: 401, msg: 'unknown ezkey' }]);
    const bad = await form(`ezkey=${account.ezkey}&stat=x&count=abc`);
    expect([bad.status, await bad.json()]).toEqual([400, { status: 400, msg: 'count must be a number, got "abc"' }]);
    await form(`ezkey=${account.ezkey}&stat=x&count=1`);
    const kind = await form(`ezkey=${account.ezkey}&stat=x&value=1`);
    expect([kind.status, await kind.json()]).toEqual([400, { status: 400, msg: 'stat "x" is a counter, not a value' }]);
    const put = await fetch(url(), { method: 'PUT', body: 'x' });
    expect([put.status, put.headers.get('allow')]).toEqual([405, 'GET, POST']);
    const other = await fetch(`http://${api.address}/nope`);
    expect([other.status, await other.json()]).toEqual([404, { status: 404, msg: 'no such endpoint: GET /nope' }]);
  });

  it('takes a JSON batch of 1,000 points and refuses 1,001 with 413', async () => {
    const data = (n: number) => Array.from({ length: n }, (_, i) => ({ stat: `s${i % 4}`, count: 1 }));
    expect((await json({ ezkey: account.ezkey, data: data(1000) })).status).toBe(204);
    const big = await json({ ezkey: account.ezkey, data: data(1001) });
    expect([big.status, await big.json()]).toEqual([413, { status: 413, msg: 'at most 1000 points per request, got 1001' }]);
    const s = await stored();
    expect(Object.values(s).reduce((a, x) => a + x.count, 0)).toBe(1000);
  });

  it('reports per-item errors with vb=1, from the parser and from ingest, and keeps the good points', async () => {
    await form(`ezkey=${account.ezkey}&stat=c&count=1`);
    const res = await json({ ezkey: account.ezkey, data: [{ stat: 'v', value: 2 }, { stat: 'c', value: 1 }, { stat: 'x' }, { stat: 'p~a,b', count: 1 }] }, '?vb=1');
    expect([res.status, await res.json()]).toEqual([
      200,
      {
        status: 200,
        msg: '2 of 4 points refused',
        errors: [
          { index: 1, msg: 'data[1]: stat "c" is a counter, not a value' },
          { index: 2, msg: 'data[2]: count or value is required' },
        ],
      },
    ]);
    const quiet = await json({ ezkey: account.ezkey, data: [{ stat: 'v', value: 3 }, { stat: 'x' }] });
    expect([quiet.status, await quiet.json()]).toEqual([200, { status: 200, msg: '1 of 2 points refused' }]);
    const none = await json({ ezkey: account.ezkey, data: [{ stat: 'x' }, { stat: 'y' }] });
    expect([none.status, await none.json()]).toEqual([400, { status: 400, msg: 'data[0]: count or value is required (and 1 more)' }]);
    const broken = await json('{"ezkey":');
    expect([broken.status, await broken.json()]).toEqual([400, { status: 400, msg: 'body is not valid JSON' }]);
    expect(await stored()).toEqual({ c: { count: 1, sum: 1 }, v: { count: 2, sum: 5 }, 'p a': { count: 1, sum: 1 }, 'p b': { count: 1, sum: 1 } });
  });

  it('coalesces points submitted while a Record call runs into one call, answering each submitter', async () => {
    const before = api.batcher.calls;
    const point = (i: number) => [{ $typeName: 'osprey.v1.Point' as const, accountId: account.id, stat: 'co', kind: MetricKind.COUNTER, number: i, unixTime: 0 }];
    // Submitted in one tick: the first call goes out at once, the other 49 wait for it and leave together.
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => api.batcher.submit(point(i + 1))));
    expect(results).toEqual(Array.from({ length: 50 }, () => [undefined]));
    expect(api.batcher.calls - before).toBe(2);
    expect(await stored()).toEqual({ co: { count: 50, sum: 1275 } });
  });

  it('answers a refused point in a coalesced call to its own request only', async () => {
    await api.batcher.submit([{ $typeName: 'osprey.v1.Point', accountId: account.id, stat: 'k', kind: MetricKind.COUNTER, number: 1, unixTime: 0 }]);
    const mk = (kind: MetricKind) => [{ $typeName: 'osprey.v1.Point' as const, accountId: account.id, stat: 'k', kind, number: 1, unixTime: 0 }];
    const results = await Promise.all([api.batcher.submit(mk(MetricKind.COUNTER)), api.batcher.submit(mk(MetricKind.VALUE)), api.batcher.submit(mk(MetricKind.COUNTER))]);
    expect(results).toEqual([[undefined], ['stat "k" is a counter, not a value'], [undefined]]);
  });

  it('answers 503 when ingest is gone, and stores nothing it did not confirm', async () => {
    await ingest.stop();
    const res = await form(`ezkey=${account.ezkey}&stat=x&count=1`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    ingest = await buildIngest({
      config: testIngestConfig(tdb.url, 60_000),
      log: pino({ level: 'silent' }),
      database: connectDatabase(tdb.url),
      metrics: createMetrics('ingest'),
    });
    expect(await stored()).toEqual({});
  });
});

describe('/ez field checks (integration)', () => {
  it('accepts the account email as the ezkey and expands prefix~a,b', async () => {
    expect((await form('ezkey=ez%40example.com&stat=http~2xx,5xx&count=1')).status).toBe(204);
    const s = await stored();
    expect([s['http 2xx'], s['http 5xx']]).toEqual([{ count: 1, sum: 1 }, { count: 1, sum: 1 }]);
  });

  it.each([
    ['stat=x&count=1', 400, 'ezkey is required'],
    ['ezkey=K&count=1', 400, 'stat is required'],
    ['ezkey=K&stat=x', 400, 'count or value is required'],
    ['ezkey=K&stat=x&count=1&value=1', 400, 'give count or value, not both'],
    ['ezkey=K&stat=x&value=1e999', 400, 'value is out of range'],
    ['ezkey=K&stat=x&count=1&t=yesterday', 400, 't must be a unix time in seconds, got "yesterday"'],
    [`ezkey=K&stat=${'n'.repeat(256)}&count=1`, 400, 'stat is longer than 255 characters'],
  ])('answers %s with %i naming the field', async (body, status, msg) => {
    const res = await form(body.replace('ezkey=K', `ezkey=${encodeURIComponent(account.ezkey)}`));
    expect([res.status, await res.json()]).toEqual([status, { status, msg }]);
  });
});
