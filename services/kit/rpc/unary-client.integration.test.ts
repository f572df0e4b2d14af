import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { pino } from 'pino';
import { Code, ConnectError } from '@connectrpc/connect';
import { IngestService, MetricKind } from '../../../gen/osprey/v1/ingest_pb.js';
import { build, type IngestReplica } from '../../ingest/server.js';
import { createAccount } from '../accounts.js';
import { connectDatabase } from '../db/client.js';
import { createMetrics } from '../metrics.js';
import { createTestDatabase, testBaseConfig, TEST_SERVICE_TOKEN, type TestDatabase } from '../testing/db.js';
import { isNotApplied } from './client.js';
import { codecMap } from './codecs.js';
import { recordRequestCodec, recordResponseCodec } from './record-codec.js';
import { Http1UnaryClient, parseResponse } from './http1-client.js';
import { UnaryClient } from './unary-client.js';

let tdb: TestDatabase;
let ingest: IngestReplica;
const record = IngestService.method.record;

beforeEach(async () => {
  tdb = await createTestDatabase();
  ingest = await build({
    config: { ...testBaseConfig(tdb.url), FLUSH_INTERVAL_MS: 60_000, MAX_POINT_AGE_DAYS: 730, MAX_POINT_FUTURE_SEC: 600 },
    log: pino({ level: 'silent' }),
    database: connectDatabase(tdb.url),
    metrics: createMetrics('ingest'),
  });
});
afterEach(async () => {
  await ingest.stop();
  await tdb.drop();
});

const clients = [
  ['UnaryClient (HTTP/2)', UnaryClient],
  ['Http1UnaryClient (HTTP/1.1)', Http1UnaryClient],
] as const;

describe.each(clients)('%s against the fast unary path (integration)', (_, Client) => {
  const client = (token = TEST_SERVICE_TOKEN, address = ingest.address) =>
    new Client(`http://${address}`, { headers: { authorization: `Bearer ${token}` }, codecs: codecMap(recordRequestCodec, recordResponseCodec) });

  it('records points, many calls in flight on one session', async () => {
    const account = await createAccount(tdb.database.pool, 'u@example.com');
    const c = client();
    const calls = Array.from({ length: 20 }, (_, i) => c.unary(record, undefined, undefined, undefined, { points: [{ accountId: account.id, stat: 'n', kind: MetricKind.COUNTER, number: i }] }));
    const res = await Promise.all(calls);
    expect(res.map((r) => r.message.accepted)).toEqual(Array.from({ length: 20 }, () => 1));
    const bad = await c.unary(record, undefined, undefined, undefined, { points: [{ accountId: account.id, stat: 'n', kind: MetricKind.VALUE, number: 1 }] });
    expect(bad.message.errors.map((e) => e.message)).toEqual(['stat "n" is a counter, not a value']);
    c.close();
  });

  it('carries the server error code, and marks refusals that applied nothing', async () => {
    const wrong = client('wrong-token-wrong-token');
    const err = await wrong.unary(record, undefined, undefined, undefined, { points: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect([(err as ConnectError).code, (err as ConnectError).rawMessage]).toEqual([Code.Unauthenticated, 'missing or wrong service token']);
    expect(isNotApplied(err)).toBe(false);
    wrong.close();

    const c = client();
    await ingest.rpc.drain();
    const draining = await c.unary(record, undefined, undefined, undefined, { points: [] }).catch((e: unknown) => e);
    expect((draining as ConnectError).code).toBe(Code.Unavailable);
    expect(isNotApplied(draining)).toBe(true);
    c.close();
  });

  it('reports a refused connection as Unavailable and not applied', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const c = client(TEST_SERVICE_TOKEN, `127.0.0.1:${port}`);
    const err = await c.unary(record, undefined, undefined, undefined, { points: [] }).catch((e: unknown) => e);
    expect((err as ConnectError).code).toBe(Code.Unavailable);
    expect(isNotApplied(err)).toBe(true);
    c.close();
  });
});

describe('Http1UnaryClient (integration)', () => {
  const client = () => new Http1UnaryClient(`http://${ingest.address}`, { headers: { authorization: `Bearer ${TEST_SERVICE_TOKEN}` }, codecs: codecMap(recordRequestCodec, recordResponseCodec), maxConnections: 4 });

  it('keeps its connections alive and reuses them, queueing calls beyond maxConnections', async () => {
    const account = await createAccount(tdb.database.pool, 'k@example.com');
    const c = client();
    const point = (n: number) => ({ points: [{ accountId: account.id, stat: 'k', kind: MetricKind.COUNTER, number: n }] });
    for (let round = 0; round < 3; round++) {
      const res = await Promise.all(Array.from({ length: 10 }, (_, i) => c.unary(record, undefined, undefined, undefined, point(i))));
      expect(res.every((r) => r.message.accepted === 1)).toBe(true);
      expect(c.connections).toBeLessThanOrEqual(4);
    }
    expect(c.connections).toBeGreaterThan(0);
    c.close();
  });

  it('gives up on a call at its deadline or when cancelled, and the next call works', async () => {
    const account = await createAccount(tdb.database.pool, 'd@example.com');
    const c = client();
    const ac = new AbortController();
    ac.abort();
    const cancelled = await c.unary(record, ac.signal, undefined, undefined, { points: [] }).catch((e: unknown) => e);
    expect((cancelled as ConnectError).code).toBe(Code.Canceled);
    const ok = await c.unary(record, undefined, 5000, undefined, { points: [{ accountId: account.id, stat: 'd', kind: MetricKind.COUNTER, number: 1 }] });
    expect(ok.message.accepted).toBe(1);
    c.close();
  });

  it('sends a draining replica\'s callers away: not applied, and the connection is closed', async () => {
    const c = client();
    await c.unary(record, undefined, undefined, undefined, { points: [] });
    expect(c.connections).toBe(1);
    await ingest.rpc.drain();
    // The idle connection is still open: the call on it is refused, and the answer closes it.
    const err = await c.unary(record, undefined, undefined, undefined, { points: [] }).catch((e: unknown) => e);
    expect(isNotApplied(err)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.connections).toBe(0);
    c.close();
  });

  it('never has a call cut by a stopping replica: a call on an idle connection meanwhile is refused as not applied', async () => {
    const c = client();
    await c.unary(record, undefined, undefined, undefined, { points: [] });
    const stopping = ingest.stop();
    // Answered (it came before the drain) or refused as not applied: never cut.
    const during = await Promise.all(Array.from({ length: 5 }, () => c.unary(record, undefined, undefined, undefined, { points: [] }).catch((e: unknown) => e)));
    for (const d of during) expect(d instanceof Error ? isNotApplied(d) : true).toBe(true);
    await stopping;
    const after = await c.unary(record, undefined, undefined, undefined, { points: [] }).catch((e: unknown) => e);
    expect(isNotApplied(after)).toBe(true);
    c.close();
    ingest = await build({
      config: { ...testBaseConfig(tdb.url), FLUSH_INTERVAL_MS: 60_000, MAX_POINT_AGE_DAYS: 730, MAX_POINT_FUTURE_SEC: 600 },
      log: pino({ level: 'silent' }),
      database: connectDatabase(tdb.url),
      metrics: createMetrics('ingest'),
    });
  });

  it('is one port with HTTP/2: a plain HTTP/1.1 client reaches the Connect adapter too', async () => {
    const res = await fetch(`http://${ingest.address}/grpc.health.v1.Health/Check`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect([res.status, await res.json()]).toEqual([200, { status: 'SERVING' }]);
  });
});

describe('parseResponse', () => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  it('reads Content-Length and chunked bodies, skips 1xx, and waits for the rest', () => {
    const plain = 'HTTP/1.1 200 OK\r\nContent-Type: application/proto\r\nContent-Length: 3\r\n\r\nabc';
    for (let cut = 0; cut < plain.length; cut++) expect(parseResponse(b(plain.slice(0, cut)))).toBeUndefined();
    expect(parseResponse(b(plain))).toMatchObject({ status: 200, headers: { 'content-type': 'application/proto' }, body: b('abc'), rest: b('') });
    const chunked = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nOsprey-Not-Applied: 1\r\n\r\n2\r\nab\r\n1;x=y\r\nc\r\n0\r\nT: v\r\n\r\n';
    for (let cut = 0; cut < chunked.length; cut++) expect(parseResponse(b(chunked.slice(0, cut)))).toBeUndefined();
    expect(parseResponse(b(chunked))).toMatchObject({ status: 503, headers: { 'osprey-not-applied': '1' }, body: b('abc'), rest: b('') });
  });

  it('refuses what is not an HTTP/1.1 answer', () => {
    expect(parseResponse(b('SSH-2.0-x\r\n\r\n'))).toBeInstanceOf(Error);
    expect(parseResponse(b('HTTP/1.1 200 OK\r\n\r\n'))).toBeInstanceOf(Error);
  });
});
