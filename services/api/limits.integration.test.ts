import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { createAccount } from '../kit/accounts.js';
import { createTestDatabase, type TestDatabase } from '../kit/testing/db.js';
import { createMissingStatKeys, listStatKeys, rotateUkey } from '../web/store/keys.js';
import { apiConfigSchema } from './config.js';
import { startIngestEdge, type IngestEdge } from './testing.js';
import { testBaseConfig } from '../kit/testing/db.js';

// The api's limits, through a real api and ingest on MariaDB: the per-account rate limit
// (429 + Retry-After, on a clock the test moves), the body limit (413 in StatHat's shape,
// sent as soon as the body is known to be too large), and node:http's timeouts against
// slow and idle clients (each case waits for the server to act; none measures time).

let tdb: TestDatabase | undefined;
let edge: IngestEdge | undefined;

afterEach(async () => {
  await edge?.stop();
  await tdb?.drop();
  edge = undefined;
  tdb = undefined;
});

const form = (path: string, body: string) => fetch(edge!.base + path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
const json = (doc: unknown) => fetch(edge!.base + '/ez', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(doc) });

/**
 * Writes `data` on a fresh connection and collects everything the server sends. The client
 * never closes the connection, so this resolves only once the server has closed it.
 */
function rawExchange(port: number, data: string): Promise<{ text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // The server may reset a connection it closed while the client still had bytes in flight.
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err);
    });
    socket.on('close', () => resolve({ text }));
    socket.write(data);
  });
}

describe('per-account rate limit (integration)', () => {
  it('answers 429 with Retry-After once an account is over its points per second, keeps other accounts apart, and stores only what it took', async () => {
    tdb = await createTestDatabase();
    let now = 1_700_000_000_000;
    edge = await startIngestEdge(tdb, { RATE_LIMIT_POINTS_PER_SEC: 2, RATE_LIMIT_BURST: 3 }, { now: () => now });
    const a = await createAccount(tdb.database.pool, 'a@example.com');
    const b = await createAccount(tdb.database.pool, 'b@example.com');
    const hit = (ezkey: string, stat = 'hits') => form('/ez', `ezkey=${encodeURIComponent(ezkey)}&stat=${stat}&count=1`);

    expect([(await hit(a.ezkey)).status, (await hit(a.ezkey)).status, (await hit(a.ezkey)).status]).toEqual([204, 204, 204]);
    const limited = await hit(a.ezkey);
    expect([limited.status, limited.headers.get('retry-after'), await limited.json()]).toEqual([
      429,
      '1',
      { status: 429, msg: 'too many points: this account may send 2 points per second; retry in 1 s' },
    ]);
    // Another account has its own bucket.
    expect((await hit(b.ezkey)).status).toBe(204);

    now += 1000; // two points back
    // A JSON batch counts its points: 3 points with 2 in the bucket waits 0.5 s, rounded up.
    const batch = await json({ ezkey: a.ezkey, data: [{ stat: 'hits', count: 1 }, { stat: 'hits', count: 1 }, { stat: 'hits', count: 1 }] });
    expect([batch.status, batch.headers.get('retry-after')]).toEqual([429, '1']);
    // prefix~a,b is two points.
    expect((await hit(a.ezkey, 'p~x,y')).status).toBe(204);
    expect((await hit(a.ezkey)).status).toBe(429);

    // The classic API draws on the same bucket.
    now += 500;
    const ukey = await rotateUkey(tdb.database.pool, a.id);
    await createMissingStatKeys(tdb.database.pool, a.id);
    const key = (await listStatKeys(tdb.database.pool, a.id)).find((s) => s.name === 'hits')!.key!;
    expect((await form('/c', `ukey=${ukey}&key=${key}&count=1`)).status).toBe(204);
    const classic = await form('/c', `ukey=${ukey}&key=${key}&count=1`);
    expect([classic.status, classic.headers.get('retry-after')]).toEqual([429, '1']);

    expect(edge.api.limiter.refused).toBe(4);
    const totals = await edge.totals();
    // a's hits: 3 by /ez and 1 by /c; b's hits: 1.
    expect(totals.map((r) => [r.name, r.count]).sort()).toEqual([
      ['hits', 1],
      ['hits', 4],
      ['p x', 1],
      ['p y', 1],
    ]);
  });

  it('counts every item of a JSON batch, refused ones too (they cost work as well)', async () => {
    tdb = await createTestDatabase();
    edge = await startIngestEdge(tdb, { RATE_LIMIT_POINTS_PER_SEC: 1, RATE_LIMIT_BURST: 3 }, { now: () => 1_700_000_000_000 });
    const a = await createAccount(tdb.database.pool, 'a@example.com');
    const bad = await json({ ezkey: a.ezkey, data: [{ stat: 'x' }, { stat: 'y' }, { stat: 'z' }] });
    expect(bad.status).toBe(400);
    // The three refused items took the whole burst.
    const next = await json({ ezkey: a.ezkey, data: [{ stat: 'y', count: 1 }] });
    expect([next.status, next.headers.get('retry-after')]).toEqual([429, '1']);
    expect(await edge.totals()).toEqual([]);
  });

  it('is off with RATE_LIMIT_POINTS_PER_SEC=0', async () => {
    tdb = await createTestDatabase();
    edge = await startIngestEdge(tdb, { RATE_LIMIT_POINTS_PER_SEC: 0, RATE_LIMIT_BURST: 1 });
    const a = await createAccount(tdb.database.pool, 'a@example.com');
    const data = Array.from({ length: 1000 }, () => ({ stat: 's', count: 1 }));
    for (let i = 0; i < 3; i++) expect((await json({ ezkey: a.ezkey, data })).status).toBe(204);
    expect((await edge.totals()).map((r) => r.count)).toEqual([3000]);
  });
});

describe('body size limit (integration)', () => {
  it('takes a body of exactly the limit and answers 413 in StatHat shape beyond it, on /ez, /c and /v', async () => {
    tdb = await createTestDatabase();
    edge = await startIngestEdge(tdb, { API_MAX_BODY_BYTES: 2048 });
    const a = await createAccount(tdb.database.pool, 'a@example.com');
    const start = `ezkey=${encodeURIComponent(a.ezkey)}&stat=x&count=1&pad=`;
    const exact = start + 'p'.repeat(2048 - start.length);
    expect((await form('/ez', exact)).status).toBe(204);
    for (const path of ['/ez', '/c', '/v']) {
      const res = await form(path, exact + 'p');
      expect([path, res.status, res.headers.get('connection'), await res.json()]).toEqual([path, 413, 'close', { status: 413, msg: 'body is larger than 2048 bytes' }]);
    }
    const big = await json({ ezkey: a.ezkey, data: Array.from({ length: 100 }, () => ({ stat: 'a long stat name '.repeat(4), count: 1 })) });
    expect(big.status).toBe(413);
    expect((await edge.totals()).map((r) => [r.name, r.count])).toEqual([['x', 1]]);
  });

  it('answers 413 from Content-Length before reading the body, and as soon as a chunked body crosses the limit', async () => {
    tdb = await createTestDatabase();
    edge = await startIngestEdge(tdb, { API_MAX_BODY_BYTES: 2048 });
    // Headers only: the body is never sent, so an answer can only come from Content-Length.
    const declared = await rawExchange(edge.api.port, 'POST /ez HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n');
    expect(declared.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(declared.text).toContain('{"status":413,"msg":"body is larger than 2048 bytes"}');
    // A chunked body that never ends: the answer comes when the limit is crossed.
    const chunk = 'x'.repeat(3000);
    const chunked = await rawExchange(edge.api.port, `POST /ez HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    expect(chunked.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(chunked.text).toContain('{"status":413,"msg":"body is larger than 2048 bytes"}');
  });
});

describe('HTTP timeouts against slow and idle clients (integration)', () => {
  it('answers 408 and closes when headers or a body come too slowly, and closes idle keep-alive connections', async () => {
    tdb = await createTestDatabase();
    edge = await startIngestEdge(tdb, { HTTP_HEADERS_TIMEOUT_MS: 200, HTTP_REQUEST_TIMEOUT_MS: 300, HTTP_KEEPALIVE_TIMEOUT_MS: 200 });
    const port = edge.api.port;
    // Headers that never finish (slowloris).
    const headers = await rawExchange(port, 'POST /ez HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n');
    expect(headers.text).toMatch(/^HTTP\/1\.1 408 /);
    // Whole headers, then a body that stops short of its Content-Length.
    const body = await rawExchange(port, 'POST /ez HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nezkey=abc');
    expect(body.text).toMatch(/^HTTP\/1\.1 408 /);
    // A finished request on a keep-alive connection, then silence: the server closes it.
    const idle = await rawExchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    expect(idle.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(idle.text).toMatch(/keep-alive/i);
  });

  it('refuses a headers timeout longer than the request timeout at start, naming the variable', () => {
    const parsed = apiConfigSchema.safeParse({ ...testBaseConfig('mysql://root@127.0.0.1/x'), HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '1000' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['HTTP_HEADERS_TIMEOUT_MS', 'must not be longer than HTTP_REQUEST_TIMEOUT_MS']]);
  });
});
