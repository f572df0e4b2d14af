import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { createRequire } from 'node:module';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { createAccount, type Account } from '../kit/accounts.js';
import { KIND } from '../kit/db/schema.js';
import { createTestDatabase, type TestDatabase } from '../kit/testing/db.js';
import { createMissingStatKeys, listStatKeys, rotateUkey } from '../web/store/keys.js';
import { startIngestEdge, type IngestEdge } from './testing.js';

// The real `stathat` npm client, unchanged, against the local api. Its host is hard-coded
// (api.stathat.com) and it takes no agent: it uses http.globalAgent, so for this file the
// global agent is one whose connections all go to 127.0.0.1:<api port>. Nothing of the
// library is touched.

type Callback = (status: number, body: unknown) => void;
interface StatHatClient {
  trackEZCount(ezkey: string, stat: string, count: number, cb: Callback): void;
  trackEZCountWithTime(ezkey: string, stat: string, count: number, t: number, cb: Callback): void;
  trackEZValue(ezkey: string, stat: string, value: number, cb: Callback): void;
  trackEZValueWithTime(ezkey: string, stat: string, value: number, t: number, cb: Callback): void;
  trackCount(ukey: string, key: string, count: number, cb: Callback): void;
  trackCountWithTime(ukey: string, key: string, count: number, t: number, cb: Callback): void;
  trackValue(ukey: string, key: string, value: number, cb: Callback): void;
  trackValueWithTime(ukey: string, key: string, value: number, t: number, cb: Callback): void;
}
const stathat = createRequire(import.meta.url)('stathat') as StatHatClient;

let tdb: TestDatabase;
let edge: IngestEdge;
let account: Account;
const savedAgent = http.globalAgent;
/** Called when the connection of the call in progress has closed, with what the server sent. */
let onClosed: ((raw: string) => void) | undefined;
const hosts: string[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  edge = await startIngestEdge(tdb);
  account = await createAccount(tdb.database.pool, 'client@example.com');
  const port = edge.api.port;
  // One connection per call (no keep-alive), so "the connection closed" means "the call is answered".
  const agent = new http.Agent({ keepAlive: false });
  agent.createConnection = (options: net.NetConnectOpts & { host?: string }) => {
    hosts.push(String(options.host));
    const socket = net.connect({ host: '127.0.0.1', port });
    let raw = '';
    socket.on('data', (chunk: Buffer) => (raw += chunk.toString('latin1')));
    socket.once('close', () => onClosed?.(raw));
    return socket;
  };
  http.globalAgent = agent;
});

afterAll(async () => {
  http.globalAgent = savedAgent;
  await edge?.stop();
  await tdb?.drop();
});

/**
 * One client call, answered: the HTTP status the server sent (from the raw response, since
 * the client calls back only when a body arrives, and a 204 has none) and what the
 * client's callback got, if it was called.
 */
function call(start: (cb: Callback) => void): Promise<{ status: number; callback?: [number, string] }> {
  return new Promise((resolve) => {
    let callback: [number, string] | undefined;
    onClosed = (raw) => {
      onClosed = undefined;
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0), callback });
    };
    start((status, body) => (callback = [status, String(body)]));
  });
}

async function createStat(name: string, kind: number): Promise<void> {
  await tdb.database.pool.query<ResultSetHeader>('INSERT INTO stats (account_id, name, kind) VALUES (?, ?, ?)', [account.id, name, kind]);
}

describe('the stathat npm client against the local api (integration)', () => {
  it('posts EZ and classic counts and values, with and without t, and they land in MySQL exactly', async () => {
    await createStat('client classic count', KIND.counter);
    await createStat('client classic value', KIND.value);
    const ukey = await rotateUkey(tdb.database.pool, account.id);
    await createMissingStatKeys(tdb.database.pool, account.id);
    const keys = Object.fromEntries((await listStatKeys(tdb.database.pool, account.id)).map((s) => [s.name, s.key!]));
    const ck = keys['client classic count'];
    const vk = keys['client classic value'];
    const ez = account.ezkey;
    const then = Math.floor(Date.now() / 1000) - 2 * 3600;
    const thenBucket = then - (then % 60);

    // The client writes its parameters unencoded (`stat=client ez count`): the api reads them as sent.
    const calls: [string, (cb: Callback) => void][] = [
      ['ez count', (cb) => stathat.trackEZCount(ez, 'client ez count', 3, cb)],
      ['ez count', (cb) => stathat.trackEZCount(ez, 'client ez count', 2.5, cb)],
      ['ez count t', (cb) => stathat.trackEZCountWithTime(ez, 'client ez count', 5, then, cb)],
      ['ez value', (cb) => stathat.trackEZValue(ez, 'client ez value', 0.5, cb)],
      ['ez value t', (cb) => stathat.trackEZValueWithTime(ez, 'client ez value', 1.5, then, cb)],
      ['classic count', (cb) => stathat.trackCount(ukey, ck, 4, cb)],
      ['classic count t', (cb) => stathat.trackCountWithTime(ukey, ck, 6, then, cb)],
      ['classic value', (cb) => stathat.trackValue(ukey, vk, 2.25, cb)],
      ['classic value t', (cb) => stathat.trackValueWithTime(ukey, vk, 7.5, then, cb)],
    ];
    for (const [what, start] of calls) {
      const answer = await call(start);
      expect([what, answer]).toEqual([what, { status: 204, callback: undefined }]);
    }
    // An error has a body, so the client's callback sees it.
    expect(await call((cb) => stathat.trackCount('wrong-ukey', ck, 1, cb))).toEqual({ status: 401, callback: [401, '{"status":401,"msg":"unknown ukey"}'] });
    expect(await call((cb) => stathat.trackValue(ukey, ck, 1, cb))).toEqual({
      status: 400,
      callback: [400, '{"status":400,"msg":"stat \\"client classic count\\" is a counter, not a value: send it to /c"}'],
    });
    expect(new Set(hosts)).toEqual(new Set(['api.stathat.com']));

    await edge.ingest.flusher.flush();
    const [rows] = await tdb.database.pool.query<RowDataPacket[]>(
      `SELECT s.name, s.kind, r.bucket = ? AS then_, SUM(r.count) AS count, SUM(r.sum) AS sum, MIN(r.min) AS min, MAX(r.max) AS max, SUM(r.sumsq) AS sumsq
         FROM rollups_1m r JOIN stats s ON s.id = r.stat_id GROUP BY s.id, then_ ORDER BY s.name, then_`,
      [thenBucket],
    );
    const got = rows.map((r) => [String(r.name), Number(r.kind), Number(r.then_) ? 'then' : 'now', Number(r.count), Number(r.sum), Number(r.min), Number(r.max), Number(r.sumsq)]);
    expect(got).toEqual([
      ['client classic count', KIND.counter, 'now', 1, 4, 4, 4, 16],
      ['client classic count', KIND.counter, 'then', 1, 6, 6, 6, 36],
      ['client classic value', KIND.value, 'now', 1, 2.25, 2.25, 2.25, 2.25 * 2.25],
      ['client classic value', KIND.value, 'then', 1, 7.5, 7.5, 7.5, 56.25],
      ['client ez count', KIND.counter, 'now', 2, 5.5, 2.5, 3, 9 + 6.25],
      ['client ez count', KIND.counter, 'then', 1, 5, 5, 5, 25],
      ['client ez value', KIND.value, 'now', 1, 0.5, 0.5, 0.5, 0.25],
      ['client ez value', KIND.value, 'then', 1, 1.5, 1.5, 1.5, 2.25],
    ]);
    // The hour and day rollups hold the same totals.
    for (const table of ['rollups_1h', 'rollups_1d']) {
      const [sums] = await tdb.database.pool.query<RowDataPacket[]>(`SELECT s.name, SUM(r.count) AS count, SUM(r.sum) AS sum FROM ${table} r JOIN stats s ON s.id = r.stat_id GROUP BY s.id ORDER BY s.name`);
      expect(sums.map((r) => [String(r.name), Number(r.count), Number(r.sum)])).toEqual([
        ['client classic count', 2, 10],
        ['client classic value', 2, 9.75],
        ['client ez count', 3, 10.5],
        ['client ez value', 2, 2],
      ]);
    }
  });
});
