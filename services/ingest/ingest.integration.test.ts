import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import type { RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import { IngestService, MetricKind } from '../../gen/osprey/v1/ingest_pb.js';
import { createAccount } from '../kit/accounts.js';
import { connectDatabase } from '../kit/db/client.js';
import { createMetrics } from '../kit/metrics.js';
import { createTestDatabase, testBaseConfig, TEST_SERVICE_TOKEN, type TestDatabase } from '../kit/testing/db.js';
import { build, type IngestReplica } from './server.js';

let tdb: TestDatabase;
const replicas: IngestReplica[] = [];

async function startIngest(): Promise<IngestReplica> {
  const r = await build({
    config: { ...testBaseConfig(tdb.url), FLUSH_INTERVAL_MS: 60_000, MAX_POINT_AGE_DAYS: 730, MAX_POINT_FUTURE_SEC: 600 },
    log: pino({ level: 'silent' }),
    database: connectDatabase(tdb.url),
    metrics: createMetrics('ingest'),
  });
  replicas.push(r);
  return r;
}

function clientFor(r: IngestReplica) {
  return createClient(
    IngestService,
    createConnectTransport({
      baseUrl: `http://${r.address}`,
      httpVersion: '2',
      interceptors: [(next) => (req) => (req.header.set('authorization', `Bearer ${TEST_SERVICE_TOKEN}`), next(req))],
    }),
  );
}

async function rollups(table: string) {
  const [rows] = await tdb.database.pool.query<RowDataPacket[]>(
    `SELECT s.name, r.bucket, r.count, r.sum, r.min, r.max FROM ${table} r JOIN stats s ON s.id = r.stat_id ORDER BY s.name, r.bucket`,
  );
  return rows.map((r) => ({ ...r }));
}

beforeEach(async () => {
  tdb = await createTestDatabase();
});
afterEach(async () => {
  for (const r of replicas.splice(0)) await r.stop();
  await tdb.drop();
});

describe('IngestService.Record', () => {
  it('aggregates per stat and minute and flushes 1m, 1h and 1d rollups', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const r = await startIngest();
    const c = clientFor(r);
    const res = await c.record({
      points: [
        { accountId: account.id, stat: 'hits', kind: MetricKind.COUNTER, number: 2, unixTime: Math.floor(Date.now() / 1000) },
        { accountId: account.id, stat: 'hits', kind: MetricKind.COUNTER, number: 3, unixTime: Math.floor(Date.now() / 1000) },
        { accountId: account.id, stat: 'load', kind: MetricKind.VALUE, number: 0.5 },
        { accountId: account.id, stat: 'load', kind: MetricKind.VALUE, number: 1.5 },
      ],
    });
    expect(res.errors).toEqual([]);
    expect(res.accepted).toBe(4);
    await r.flusher.flush();
    const m = await rollups('rollups_1m');
    expect(m.map((x) => [x.name, x.count, x.sum, x.min, x.max])).toEqual([
      ['hits', 2, 5, 2, 3],
      ['load', 2, 2, 0.5, 1.5],
    ]);
    expect((await rollups('rollups_1h')).length).toBe(2);
    expect((await rollups('rollups_1d')).length).toBe(2);
  });

  it('refuses a point whose kind differs from the stat, naming both kinds, and takes the rest', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const c = clientFor(await startIngest());
    await c.record({ points: [{ accountId: account.id, stat: 'x', kind: MetricKind.COUNTER, number: 1 }] });
    const res = await c.record({
      points: [
        { accountId: account.id, stat: 'x', kind: MetricKind.VALUE, number: 1 },
        { accountId: account.id, stat: 'y', kind: MetricKind.VALUE, number: 1 },
        { accountId: account.id, stat: 'z', kind: MetricKind.COUNTER, number: Number.NaN },
      ],
    });
    expect(res.accepted).toBe(1);
    expect(res.errors.map((e) => [e.index, e.message])).toEqual([
      [2, 'number must be finite, got NaN'],
      [0, 'stat "x" is a counter, not a value'],
    ]);
  });

  it('takes gauge points: the last value by time, one kind per name as for counters and values', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const r = await startIngest();
    const c = clientFor(r);
    const t = Math.floor(Date.now() / 1000);
    const res = await c.record({
      points: [
        { accountId: account.id, stat: 'queue', kind: MetricKind.GAUGE, number: 7, unixTime: t - 1 },
        { accountId: account.id, stat: 'queue', kind: MetricKind.GAUGE, number: 3, unixTime: t },
        { accountId: account.id, stat: 'queue', kind: MetricKind.GAUGE, number: 9, unixTime: t - 2 },
        { accountId: account.id, stat: 'queue', kind: MetricKind.COUNTER, number: 1 },
        { accountId: account.id, stat: 'members', kind: MetricKind.SET, number: 1 },
      ],
    });
    expect(res.errors.map((e) => [e.index, e.message])).toEqual([
      [4, 'kind must be counter, value or gauge, got SET'],
      [3, 'stat "queue" is a gauge, not a counter'],
    ]);
    expect(res.accepted).toBe(3);
    await r.flusher.flush();
    const [row] = await tdb.database.pool.query<RowDataPacket[]>(
      "SELECT r.count, r.min, r.max, r.last_value, r.sketch FROM rollups_1d r JOIN stats s ON s.id = r.stat_id WHERE s.name = 'queue'",
    );
    expect({ ...row[0] }).toEqual({ count: 3, min: 3, max: 9, last_value: 3, sketch: null });
  });

  it('needs the service token', async () => {
    const r = await startIngest();
    const bare = createClient(IngestService, createConnectTransport({ baseUrl: `http://${r.address}`, httpVersion: '2' }));
    await expect(bare.record({ points: [] })).rejects.toThrow(/service token/);
  });

  it('applies a flush exactly once when the reply to its commit is lost', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const r = await startIngest();
    await clientFor(r).record({ points: [{ accountId: account.id, stat: 'n', kind: MetricKind.COUNTER, number: 7 }] });
    r.flusher.afterCommit = () => {
      throw new Error('connection lost after COMMIT');
    };
    await expect(r.flusher.flush()).rejects.toThrow('connection lost');
    r.flusher.afterCommit = undefined;
    await clientFor(r).record({ points: [{ accountId: account.id, stat: 'n', kind: MetricKind.COUNTER, number: 1 }] });
    await r.flusher.flush(); // retries the lost one: a no-op
    await r.flusher.flush(); // then the new point
    const m = await rollups('rollups_1m');
    expect(m.reduce((s, x) => s + x.sum, 0)).toBe(8);
  });

  it('gives the same totals from two replicas writing the same minute as from one', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const [a, b] = [await startIngest(), await startIngest()];
    const now = Math.floor(Date.now() / 1000);
    const pts = (vals: number[]) => vals.map((v) => ({ accountId: account.id, stat: 'v', kind: MetricKind.VALUE, number: v, unixTime: now }));
    await clientFor(a).record({ points: pts([1, 9, 4]) });
    await clientFor(b).record({ points: pts([-3, 20]) });
    await Promise.all([a.flusher.flush(), b.flusher.flush()]);
    const [row] = await rollups('rollups_1m');
    expect([row.count, row.sum, row.min, row.max]).toEqual([5, 31, -3, 20]);
  });

  it('flushes on stop and leaves the registry', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const r = await startIngest();
    await clientFor(r).record({ points: [{ accountId: account.id, stat: 'n', kind: MetricKind.COUNTER, number: 4 }] });
    replicas.splice(replicas.indexOf(r), 1);
    await r.stop();
    expect((await rollups('rollups_1m'))[0].sum).toBe(4);
    const [rows] = await tdb.database.pool.query<RowDataPacket[]>('SELECT * FROM service_instances');
    expect(rows).toEqual([]);
  });
});
