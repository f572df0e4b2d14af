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
import { recordRequestCodec } from './record-codec.js';
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

const client = (token = TEST_SERVICE_TOKEN, address = ingest.address) =>
  new UnaryClient(`http://${address}`, { headers: { authorization: `Bearer ${token}` }, codecs: codecMap(recordRequestCodec) });

describe('UnaryClient against the fast unary path (integration)', () => {
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
