import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createAccount, type Account } from '../kit/accounts.js';
import { createTestDatabase, type TestDatabase } from '../kit/testing/db.js';
import { Draw, drawn, fuzzParams, fuzzTimeout } from '../kit/testing/fuzz.js';
import { createMissingStatKeys, listStatKeys, rotateUkey } from '../web/store/keys.js';
import { startIngestEdge, type IngestEdge } from './testing.js';

// The /ez, /c and /v handlers fuzzed over real HTTP, against a real api and ingest on
// MariaDB: whatever arrives (method, path, content type, body, query, with real keys or
// not), the answer is a StatHat answer (204, or JSON {"status": N, "msg"} with N the HTTP
// status) with a 2xx or 4xx status, never a 5xx, and the api keeps serving afterwards.
// HTTP round trips make each case cost about a millisecond, hence fewer cases than the
// parser fuzzers (ez.fuzz.test.ts) run.

let tdb: TestDatabase;
let edge: IngestEdge;
let account: Account;
let ukey: string;
let keys: string[];

beforeAll(async () => {
  tdb = await createTestDatabase();
  edge = await startIngestEdge(tdb, { API_MAX_BODY_BYTES: 4096, RATE_LIMIT_POINTS_PER_SEC: 0 });
  account = await createAccount(tdb.database.pool, 'fuzz@example.com');
  for (const [stat, field] of [
    ['c', 'count'],
    ['v', 'value'],
  ]) {
    const res = await fetch(`${edge.base}/ez`, { method: 'POST', body: new URLSearchParams({ ezkey: account.ezkey, stat, [field]: '1' }) });
    expect(res.status).toBe(204);
  }
  ukey = await rotateUkey(tdb.database.pool, account.id);
  await createMissingStatKeys(tdb.database.pool, account.id);
  keys = (await listStatKeys(tdb.database.pool, account.id)).map((s) => s.key!);
});

afterAll(async () => {
  await edge?.stop();
  await tdb?.drop();
});

const ALLOWED = new Set([200, 204, 400, 401, 404, 405, 413]);

function request(d: Draw) {
  const pick = <T>(xs: readonly T[]) => d.pick(xs);
  const value = () =>
    d.pick([
      () => account.ezkey,
      () => ukey,
      () => d.pick(keys),
      () => d.decimal(['', '-']),
      () => String(Math.floor(Date.now() / 1000) - d.int(100_000)),
      () => d.text('', 0, 12),
      () => d.pick(['', '1', 'NaN', '1e999', 'x~a,b', '~', '%zz', 'a'.repeat(300)]),
    ])();
  const fields = Array.from({ length: d.int(7) }, () => [pick(['ezkey', 'email', 'stat', 'count', 'value', 't', 'vb', 'ukey', 'key', d.text('', 1, 4)]), value()] as [string, string]);
  const form = d.chance(0.7) ? new URLSearchParams(fields).toString() : fields.map(([k, v]) => `${k}=${v}`).join('&');
  const json = () =>
    JSON.stringify(
      d.pick([
        () => ({ ezkey: d.chance(0.7) ? account.ezkey : value(), data: Array.from({ length: d.int(6) }, () => Object.fromEntries(Array.from({ length: d.int(4) }, () => [pick(['stat', 'count', 'value', 't', 'x']), d.chance(0.5) ? value() : Number(d.decimal(['', '-']))]))) }),
        () => ({ ezkey: account.ezkey, data: Array.from({ length: 1001 }, () => ({ stat: 'c', count: 1 })) }),
        () => d.text('', 0, 20),
        () => [1, 2],
      ])(),
    );
  const type = pick(['application/x-www-form-urlencoded', 'application/json', 'Application/JSON; charset=utf-8', 'text/plain', undefined]);
  const body = pick([() => form, json, () => d.text('', 0, 40), () => 'x'.repeat(5000)])();
  const method = pick(['POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE', 'HEAD']);
  const path = pick(['/ez', '/c', '/v', '/ez/', '/c/', '/v/']);
  const query = d.chance(0.5) ? `?${d.chance(0.5) ? form : d.text('', 0, 20)}` : '';
  return { method, url: path + query, type, body: method === 'GET' || method === 'HEAD' ? undefined : body };
}

describe('/ez, /c and /v over HTTP (fuzz, integration)', () => {
  it('answers anything with a StatHat 2xx or 4xx, never a 5xx, and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(drawn(request), async (r) => {
        const headers: Record<string, string> = r.type ? { 'content-type': r.type } : {};
        // A URL fetch() refuses to send is not a request the api can get: skip it.
        let url: URL;
        try {
          url = new URL(edge.base + r.url);
        } catch {
          return;
        }
        const res = await fetch(url, { method: r.method, headers, body: r.body });
        const text = await res.text();
        if (!ALLOWED.has(res.status)) throw new Error(`${r.method} ${r.url} answered ${res.status}: ${text}`);
        if (res.status === 204 || r.method === 'HEAD') return;
        const doc = JSON.parse(text) as { status: number; msg: string };
        if (doc.status !== res.status || typeof doc.msg !== 'string' || doc.msg.length === 0) throw new Error(`${res.status} with ${text}`);
      }),
      fuzzParams(1000),
    );
    expect((await fetch(`${edge.base}/ez`, { method: 'POST', body: new URLSearchParams({ ezkey: account.ezkey, stat: 'c', count: '1' }) })).status).toBe(204);
    expect((await fetch(`${edge.base}/healthz`)).status).toBe(200);
  }, fuzzTimeout(1000, 20));
});
