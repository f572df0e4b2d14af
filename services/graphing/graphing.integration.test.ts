import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Code, ConnectError, createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import type { ResultSetHeader } from 'mysql2/promise';
import { pino } from 'pino';
import { ChartFormat, GraphService, Resolution } from '../../gen/osprey/v1/graphing_pb.js';
import { MetricKind } from '../../gen/osprey/v1/ingest_pb.js';
import { createAccount } from '../kit/accounts.js';
import { connectDatabase } from '../kit/db/client.js';
import { createMetrics } from '../kit/metrics.js';
import { Aggregator } from '../ingest/aggregator.js';
import { RollupFlusher } from '../ingest/flusher.js';
import { Registry } from 'prom-client';
import { createBalancedClient } from '../kit/rpc/client.js';
import { createTestDatabase, testBaseConfig, TEST_SERVICE_TOKEN, type TestDatabase } from '../kit/testing/db.js';
import { build, type GraphingReplica } from './server.js';
import { DistinctSketch } from '../kit/sketch/distinct.js';
import { QuantileSketch } from '../kit/sketch/quantile.js';
import type { SketchReader } from './sketches.js';

const DAY = 86_400;
/** A UTC midnight. */
const T0 = 19_675 * DAY;
const log = pino({ level: 'silent' });

let tdb: TestDatabase;
let nowMs = (T0 + 10 * DAY) * 1000;
const replicas: GraphingReplica[] = [];

async function startGraphing(sketches?: SketchReader): Promise<GraphingReplica> {
  const r = await build({
    config: {
      ...testBaseConfig(tdb.url),
      ROLLUP_1M_RETENTION_DAYS: 30,
      ROLLUP_1H_RETENTION_DAYS: 730,
      RENDER_CONCURRENCY: 2,
      RENDER_QUEUE_MAX: 64,
      QUERY_MAX_STATS: 20,
    },
    log,
    database: connectDatabase(tdb.url),
    metrics: createMetrics('graphing'),
    now: () => nowMs,
    sketches,
  });
  replicas.push(r);
  return r;
}

function clientFor(r: GraphingReplica): Client<typeof GraphService> {
  return createClient(
    GraphService,
    createConnectTransport({
      baseUrl: `http://${r.address}`,
      httpVersion: '2',
      interceptors: [(next) => (req) => (req.header.set('authorization', `Bearer ${TEST_SERVICE_TOKEN}`), next(req))],
    }),
  );
}

type Kind = 'counter' | 'value' | 'gauge' | 'set';
const KINDS: Record<Kind, number> = { counter: 1, value: 2, gauge: 3, set: 4 };

async function createStat(accountId: number, name: string, kind: Kind, opts: { deleted?: boolean } = {}): Promise<number> {
  const [res] = await tdb.database.pool.query<ResultSetHeader>(
    'INSERT INTO stats (account_id, name, kind, deleted_at) VALUES (?, ?, ?, ?)',
    [accountId, name, KINDS[kind], opts.deleted ? new Date() : null],
  );
  return res.insertId;
}

/** Rollup rows as ingest writes them, from each bucket's samples. */
async function insertSamples(table: '1m' | '1h' | '1d', statId: number, buckets: [bucket: number, samples: number[]][]): Promise<void> {
  const rows = buckets.map(([bucket, xs]) => [
    statId,
    bucket,
    xs.length,
    xs.reduce((a, b) => a + b, 0),
    Math.min(...xs),
    Math.max(...xs),
    xs.reduce((a, b) => a + b * b, 0),
    xs.at(-1)!,
    (bucket + 1) * 1000,
  ]);
  await tdb.database.pool.query(`INSERT INTO rollups_${table} (stat_id, bucket, count, sum, min, max, sumsq, last_value, last_time) VALUES ?`, [rows]);
}

async function expectCode(p: Promise<unknown>, code: Code): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code).toBe(code);
}

beforeEach(async () => {
  tdb = await createTestDatabase();
  nowMs = (T0 + 10 * DAY) * 1000;
});
afterEach(async () => {
  for (const r of replicas.splice(0)) await r.stop();
  await tdb.drop();
});

describe('GraphService.Query', () => {
  it('fills a counter gap with 0 and a value gap with a gap (NaN)', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const hits = await createStat(account.id, 'hits', 'counter');
    const latency = await createStat(account.id, 'latency', 'value');
    await insertSamples('1m', hits, [[T0 + 60, [2, 3]], [T0 + 180, [7]]]);
    await insertSamples('1m', latency, [[T0 + 60, [10, 20]], [T0 + 180, [7]]]);
    const c = clientFor(await startGraphing());
    const res = await c.query({ accountId: account.id, statIds: [hits, latency], from: T0, to: T0 + 300 });
    expect(res.resolution).toBe(Resolution.RESOLUTION_1M);
    expect(res.stepSec).toBe(60);
    const [h, l] = res.stats;
    expect(h.series!.name).toBe('hits');
    expect(h.series!.kind).toBe(MetricKind.COUNTER);
    expect(h.series!.times).toEqual([T0, T0 + 60, T0 + 120, T0 + 180, T0 + 240]);
    expect(h.series!.values).toEqual([0, 5, 0, 7, 0]);
    expect(l.series!.kind).toBe(MetricKind.VALUE);
    expect(l.series!.values).toEqual([NaN, 15, NaN, 7, NaN]);
  });

  it('reads the minute, hour or day table by the length of the range, and skips minutes past retention', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 'marked', 'counter');
    // A different number in each table tells which one answered.
    await insertSamples('1m', s, [[T0, [1]]]);
    await insertSamples('1h', s, [[T0, [10]]]);
    await insertSamples('1d', s, [[T0, [100]]]);
    const c = clientFor(await startGraphing());
    const q = (to: number, resolution = Resolution.RESOLUTION_UNSPECIFIED) =>
      c.query({ accountId: account.id, statIds: [s], from: T0, to, resolution });

    const day = await q(T0 + DAY);
    expect([day.resolution, day.stepSec, day.stats[0].series!.values.length, day.stats[0].series!.values[0]]).toEqual([Resolution.RESOLUTION_1M, 60, 1440, 1]);
    const week = await q(T0 + 7 * DAY);
    expect([week.resolution, week.stepSec, week.stats[0].series!.values.length, week.stats[0].series!.values[0]]).toEqual([Resolution.RESOLUTION_1H, 3600, 168, 10]);
    const month = await q(T0 + 30 * DAY);
    expect([month.resolution, month.stats[0].series!.values[0]]).toEqual([Resolution.RESOLUTION_1H, 10]);
    const year = await q(T0 + 365 * DAY);
    expect([year.resolution, year.stepSec, year.stats[0].series!.values.length, year.stats[0].series!.values[0]]).toEqual([Resolution.RESOLUTION_1D, 86400, 365, 100]);
    const forced = await q(T0 + DAY, Resolution.RESOLUTION_1D);
    expect([forced.resolution, forced.stats[0].series!.values]).toEqual([Resolution.RESOLUTION_1D, [100]]);

    // 40 days later the minutes of that day are gone: auto reads hours instead of drawing zeros.
    nowMs = (T0 + 40 * DAY) * 1000;
    const old = await q(T0 + DAY);
    expect([old.resolution, old.stats[0].series!.values[0]]).toEqual([Resolution.RESOLUTION_1H, 10]);
    // A year of minutes is refused rather than read.
    await expectCode(q(T0 + 365 * DAY, Resolution.RESOLUTION_1M), Code.InvalidArgument);
  });

  it('merges buckets into a coarser step and aligns the range to whole buckets', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 'hits', 'counter');
    await insertSamples('1m', s, [[T0, [1]], [T0 + 60, [2]], [T0 + 120, [4]], [T0 + 300, [8]]]);
    const c = clientFor(await startGraphing());
    const res = await c.query({ accountId: account.id, statIds: [s], from: T0 + 30, to: T0 + 400, stepSec: 180 });
    expect(res.stepSec).toBe(180);
    expect(res.stats[0].series!.times).toEqual([T0, T0 + 180, T0 + 360]);
    expect(res.stats[0].series!.values).toEqual([7, 8, 0]);
  });

  it('returns the comparison on the main series\' times, thinned at the same points', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 'signups', 'counter');
    const from = T0 + DAY;
    await insertSamples('1m', s, [[T0 + 600, [3]], [T0 + 3000, [50]], [from + 600, [4]], [from + 7200, [90]]]);
    const c = clientFor(await startGraphing());
    const res = await c.query({ accountId: account.id, statIds: [s], from, to: from + DAY, compareOffsetSec: DAY });
    const { series, comparison } = res.stats[0];
    expect(comparison!.times).toEqual(series!.times);
    expect(series!.values[10]).toBe(4);
    expect(comparison!.values[10]).toBe(3);
    expect(comparison!.values[50]).toBe(50);
    expect(comparison!.values.reduce((a, b) => a + b, 0)).toBe(53);
    // The summary is the main range's only.
    expect(res.stats[0].summary!.total).toBe(94);

    const thin = await c.query({ accountId: account.id, statIds: [s], from, to: from + DAY, compareOffsetSec: DAY, maxPoints: 100 });
    const t = thin.stats[0];
    expect(t.series!.values.length).toBeLessThanOrEqual(100);
    expect(t.comparison!.times).toEqual(t.series!.times);
    expect(t.series!.values).toContain(90);
    expect(t.series!.values).toContain(4);
    expect(t.comparison!.values).toContain(50);
    expect(t.comparison!.values).toContain(3);
  });

  it('downsamples to at most max_points and keeps the peaks', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 'load', 'value');
    const buckets: [number, number[]][] = [];
    for (let i = 0; i < 1440; i++) {
      const v = i === 777 ? 1000 : i === 123 ? -500 : 50 + 10 * Math.sin(i / 30);
      if (i % 200 !== 199) buckets.push([T0 + i * 60, [v]]);
    }
    await insertSamples('1m', s, buckets);
    const c = clientFor(await startGraphing());
    const res = await c.query({ accountId: account.id, statIds: [s], from: T0, to: T0 + DAY, maxPoints: 100 });
    const { times, values } = res.stats[0].series!;
    expect(values.length).toBeLessThanOrEqual(100);
    expect(values.length).toBeGreaterThan(50);
    expect(times[values.indexOf(1000)]).toBe(T0 + 777 * 60);
    expect(times[values.indexOf(-500)]).toBe(T0 + 123 * 60);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    // The summary is taken before thinning, over every sample.
    expect(res.stats[0].summary!.count).toBe(buckets.length);
    expect(res.stats[0].summary!.max).toBe(1000);
  });

  it('summarises a value over its samples and a counter over its points, as computed by hand', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const v = await createStat(account.id, 'v', 'value');
    const k = await createStat(account.id, 'k', 'counter');
    await insertSamples('1m', v, [[T0, [4, 6]], [T0 + 120, [1, 2, 3]]]);
    await insertSamples('1m', k, [[T0 + 60, [2, 3]], [T0 + 180, [7]]]);
    const c = clientFor(await startGraphing());
    const res = await c.query({ accountId: account.id, statIds: [v, k], from: T0, to: T0 + 300 });
    const sv = res.stats[0].summary!;
    // Samples 4, 6, 1, 2, 3: sum 16, mean 3.2, E[x²] = 66/5, variance 13.2 - 10.24 = 2.96.
    expect([sv.min, sv.max, sv.total, sv.count, sv.samples]).toEqual([1, 6, 16, 2, 5]);
    expect(sv.mean).toBeCloseTo(3.2, 12);
    expect(sv.stddev).toBeCloseTo(Math.sqrt(2.96), 12);
    const sk = res.stats[1].summary!;
    // Points 0, 5, 0, 7, 0: mean 2.4, squared deviations 3·5.76 + 6.76 + 21.16 = 45.2.
    expect([sk.min, sk.max, sk.total, sk.count, sk.samples]).toEqual([0, 7, 12, 5, 3]);
    expect(sk.mean).toBeCloseTo(2.4, 12);
    expect(sk.stddev).toBeCloseTo(Math.sqrt(45.2 / 5), 12);
  });

  it('answers NotFound for another account\'s, a deleted or an unknown stat', async () => {
    const a = await createAccount(tdb.database.pool, 'a@example.com');
    const b = await createAccount(tdb.database.pool, 'b@example.com');
    const mine = await createStat(a.id, 'mine', 'counter');
    const theirs = await createStat(b.id, 'theirs', 'counter');
    const trashed = await createStat(a.id, 'trashed', 'counter', { deleted: true });
    await insertSamples('1m', theirs, [[T0, [1]]]);
    const c = clientFor(await startGraphing());
    const q = (ids: number[]) => c.query({ accountId: a.id, statIds: ids, from: T0, to: T0 + 600 });
    expect((await q([mine])).stats).toHaveLength(1);
    await expectCode(q([theirs]), Code.NotFound);
    await expectCode(q([mine, theirs]), Code.NotFound);
    await expectCode(q([trashed]), Code.NotFound);
    await expectCode(q([999_999]), Code.NotFound);
    await expectCode(c.render({ accountId: a.id, statIds: [theirs], from: T0, to: T0 + 600 }), Code.NotFound);
    // Their owner sees it.
    expect((await c.query({ accountId: b.id, statIds: [theirs], from: T0, to: T0 + 600 })).stats[0].series!.values[0]).toBe(1);
  });

  it('refuses bad arguments as InvalidArgument', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 's', 'counter');
    const c = clientFor(await startGraphing());
    await expectCode(c.query({ accountId: account.id, statIds: [s], from: T0, to: T0 }), Code.InvalidArgument);
    await expectCode(c.query({ accountId: account.id, statIds: [], from: T0, to: T0 + 60 }), Code.InvalidArgument);
    await expectCode(c.query({ accountId: 0, statIds: [s], from: T0, to: T0 + 60 }), Code.InvalidArgument);
    await expectCode(c.render({ accountId: account.id, statIds: [s, s, s, s], from: T0, to: T0 + 60 }), Code.InvalidArgument);
  });

  it('answers percentiles and set counts from the stored sketches, merged per point, not-yet-folded ones included', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 'latency', 'value');
    const u = await createStat(account.id, 'users', 'set');
    await insertSamples('1m', s, [[T0, [1, 2, 3]], [T0 + 60, [4, 5]], [T0 + 180, [9, 10, 11]]]);
    await insertSamples('1m', u, [[T0, [0, 0]], [T0 + 60, [0, 0]], [T0 + 120, [0]]]);
    const q = (xs: number[]) => {
      const k = new QuantileSketch();
      for (const x of xs) k.add(x);
      return k;
    };
    const d = (ms: string[]) => {
      const k = new DistinctSketch();
      for (const m of ms) k.add(m);
      return k.serialize();
    };
    const setSketch = (id: number, bucket: number, b: Buffer) =>
      tdb.database.pool.query('UPDATE rollups_1m SET sketch = ? WHERE stat_id = ? AND bucket = ?', [b, id, bucket]);
    const pending = (id: number, minute: number, format: number, b: Buffer) =>
      tdb.database.pool.query('INSERT INTO pending_sketches (stat_id, bucket, format, since, sketch) VALUES (?, ?, ?, 0, ?)', [id, minute, format, b]);
    await setSketch(s, T0, q([1, 2, 3]).serialize());
    await setSketch(s, T0 + 60, q([4, 5]).serialize());
    await setSketch(s, T0 + 180, q([9]).serialize());
    await pending(s, T0 + 180, 1, q([10, 11]).serialize()); // flushed, not folded yet
    await setSketch(u, T0, d(['ann', 'bob']));
    await setSketch(u, T0 + 60, d(['bob', 'cy']));
    await pending(u, T0 + 120, 2, d(['dee']));
    const c = clientFor(await startGraphing()); // the default reader: ingest's sketches
    const ps = (xs: number[][], p: number) => xs.map((x) => (x.length ? q(x).quantile(p) : NaN));
    const res = await c.query({ accountId: account.id, statIds: [s, u], from: T0, to: T0 + 240, percentiles: true });
    const minutes = [[1, 2, 3], [4, 5], [], [9, 10, 11]];
    expect(res.stats[0].series!.p50).toEqual(ps(minutes, 0.5));
    expect(res.stats[0].series!.p99).toEqual(ps(minutes, 0.99));
    expect(res.stats[0].series!.p50[3]).toBeCloseTo(10, 0); // within 1%
    expect(res.stats[1].series!.values).toEqual([2, 2, 1, 0]);
    // Several minutes per point: sketches are merged, not averaged, and a set's members are a union.
    const merged = await c.query({ accountId: account.id, statIds: [s, u], from: T0, to: T0 + 240, stepSec: 120, percentiles: true });
    expect(merged.stats[0].series!.p50).toEqual(ps([[1, 2, 3, 4, 5], [9, 10, 11]], 0.5));
    expect(merged.stats[0].series!.p90).toEqual(ps([[1, 2, 3, 4, 5], [9, 10, 11]], 0.9));
    expect(merged.stats[1].series!.values).toEqual([3, 1]);
    // Not asked: not computed.
    expect((await c.query({ accountId: account.id, statIds: [s], from: T0, to: T0 + 240 })).stats[0].series!.p50).toEqual([]);
  });

  it('reads the hour table\'s sketches with the pending minutes of each hour', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 'latency', 'value');
    await insertSamples('1h', s, [[T0, [1, 2]], [T0 + 3600, [7]]]);
    const q = (xs: number[]) => {
      const k = new QuantileSketch();
      for (const x of xs) k.add(x);
      return k;
    };
    await tdb.database.pool.query('UPDATE rollups_1h SET sketch = ? WHERE stat_id = ? AND bucket = ?', [q([1]).serialize(), s, T0]);
    await tdb.database.pool.query('INSERT INTO pending_sketches (stat_id, bucket, format, since, sketch) VALUES (?, ?, 1, 0, ?), (?, ?, 1, 0, ?)', [
      s, T0 + 1800, q([2]).serialize(), s, T0 + 3600 + 120, q([7]).serialize(),
    ]);
    const c = clientFor(await startGraphing());
    const res = await c.query({ accountId: account.id, statIds: [s], from: T0, to: T0 + 7200, resolution: Resolution.RESOLUTION_1H, percentiles: true });
    expect(res.stats[0].series!.p99).toEqual([q([1, 2]).quantile(0.99), q([7]).quantile(0.99)]);
  });

  it('answers from what ingest writes, before and after its sketches are folded', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 'latency', 'value');
    const u = await createStat(account.id, 'users', 'set');
    const agg = new Aggregator();
    const flusher = new RollupFlusher(tdb.database.pool, agg, 'test', log, new Registry());
    const samples = Array.from({ length: 500 }, (_, i) => 1 + ((i * 37) % 400));
    for (const [i, v] of samples.entries()) {
      agg.add(s, (T0 + 60) * 1000 + i, v);
      agg.addSet(u, (T0 + 60) * 1000 + i, `user${i % 40}`);
    }
    await flusher.flush();
    const expected = new QuantileSketch();
    for (const v of samples) expected.add(v);
    const c = clientFor(await startGraphing());
    for (const phase of ['pending', 'folded']) {
      if (phase === 'folded') await flusher.foldAll();
      const res = await c.query({ accountId: account.id, statIds: [s, u], from: T0, to: T0 + 120, percentiles: true });
      expect(res.stats[0].series!.p99, phase).toEqual([NaN, expected.quantile(0.99)]);
      expect(res.stats[1].series!.values, phase).toEqual([0, 40]);
      const day = await c.query({ accountId: account.id, statIds: [s, u], from: T0, to: T0 + DAY, resolution: Resolution.RESOLUTION_1D, percentiles: true });
      expect(day.stats[0].series!.p50, phase).toEqual([expected.quantile(0.5)]);
      expect(day.stats[1].series!.values, phase).toEqual([40]);
    }
  });

  it('takes another SketchReader in its deps (the wiring from the column to the points)', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 'latency', 'value');
    await insertSamples('1m', s, [[T0, [1, 2, 3]], [T0 + 60, [4, 5]], [T0 + 180, [9]]]);
    // A stand-in sketch format: the samples as float64s.
    const enc = (xs: number[]) => Buffer.from(new Float64Array(xs).buffer);
    await tdb.database.pool.query('UPDATE rollups_1m SET sketch = ? WHERE stat_id = ? AND bucket = ?', [enc([1, 2, 3]), s, T0]);
    await tdb.database.pool.query('UPDATE rollups_1m SET sketch = ? WHERE stat_id = ? AND bucket = ?', [enc([4, 5]), s, T0 + 60]);
    await tdb.database.pool.query('UPDATE rollups_1m SET sketch = ? WHERE stat_id = ? AND bucket = ?', [enc([9]), s, T0 + 180]);
    const rank = (xs: number[], q: number) => xs[Math.floor(q * (xs.length - 1))];
    const reader: SketchReader = {
      quantiles(sketches) {
        const xs = sketches.flatMap((b) => [...new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))]).sort((a, b) => a - b);
        return { p50: rank(xs, 0.5), p90: rank(xs, 0.9), p99: rank(xs, 0.99) };
      },
      distinct: () => 0,
    };
    const c = clientFor(await startGraphing(reader));
    const res = await c.query({ accountId: account.id, statIds: [s], from: T0, to: T0 + 240, percentiles: true });
    expect(res.stats[0].series!.p50).toEqual([2, 4, NaN, 9]);
    const merged = await c.query({ accountId: account.id, statIds: [s], from: T0, to: T0 + 240, stepSec: 120, percentiles: true });
    expect(merged.stats[0].series!.p50).toEqual([3, 9]);
    expect(merged.stats[0].series!.p90).toEqual([4, 9]);
  });

  it('leaves percentiles out on a database without the sketch column', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 'latency', 'value');
    await insertSamples('1m', s, [[T0, [1, 2, 3]]]);
    await tdb.database.pool.query('ALTER TABLE rollups_1m DROP COLUMN sketch');
    const c = clientFor(await startGraphing());
    const res = await c.query({ accountId: account.id, statIds: [s], from: T0, to: T0 + 60, percentiles: true });
    expect(res.stats[0].series!.values).toEqual([2]);
    expect(res.stats[0].series!.p50).toEqual([]);
  });
});

function svgLines(svg: string): string[] {
  return [...svg.matchAll(/<g clip-path="url\(#[^"]+\)">\s*<path ([^>]*)>/g)]
    .map((m) => m[1])
    .filter((a) => / fill="none"/.test(a) && / stroke="#/.test(a));
}

describe('GraphService.Render', () => {
  async function threeStats() {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const ids: number[] = [];
    for (const name of ['alpha', 'beta', 'gamma']) {
      const id = await createStat(account.id, name, 'value');
      const rows: [number, number[]][] = [];
      for (let h = 0; h < 14 * 24; h++) rows.push([T0 - 7 * DAY + h * 3600, [ids.length * 10 + (h % 24)]]);
      await insertSamples('1h', id, rows);
      ids.push(id);
    }
    return { account, ids };
  }

  it.each([1, 2, 3])('draws an SVG with %i series, and their comparisons dashed', async (n) => {
    const { account, ids } = await threeStats();
    const c = clientFor(await startGraphing());
    const res = await c.render({
      accountId: account.id,
      statIds: ids.slice(0, n),
      from: T0,
      to: T0 + 7 * DAY,
      compareOffsetSec: 7 * DAY,
      title: 'Week <b>&',
      width: 640,
      height: 240,
      format: ChartFormat.SVG,
    });
    expect(res.contentType).toBe('image/svg+xml');
    const svg = Buffer.from(res.data).toString('utf8');
    expect(svg).toMatch(/^<svg[^>]* width="640" height="240"/);
    const lines = svgLines(svg);
    expect(lines.filter((a) => !a.includes('stroke-dasharray'))).toHaveLength(n);
    expect(lines.filter((a) => a.includes('stroke-dasharray'))).toHaveLength(n);
    expect(svg).toContain('Week &lt;b&gt;&amp;');
    expect(svg).toContain('alpha (1 week earlier)');
  });

  it('draws a PNG of the asked size, and 400 px for sizes out of range', async () => {
    const { account, ids } = await threeStats();
    const c = clientFor(await startGraphing());
    const png = async (width: number, height: number, style = 'standard') => {
      const res = await c.render({ accountId: account.id, statIds: ids, from: T0 - 7 * DAY, to: T0 + 7 * DAY, width, height, style, format: ChartFormat.PNG });
      expect(res.contentType).toBe('image/png');
      const b = Buffer.from(res.data);
      expect([...b.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      expect(b.subarray(12, 16).toString('latin1')).toBe('IHDR');
      return [b.readUInt32BE(16), b.readUInt32BE(20)];
    };
    expect(await png(800, 300)).toEqual([800, 300]);
    expect(await png(120, 40, 'spark')).toEqual([120, 40]);
    expect(await png(5000, 0, 'fill')).toEqual([400, 400]);
  });
});

describe('two replicas behind the balanced client', () => {
  it('spreads queries and renders over both replicas', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const s = await createStat(account.id, 'hits', 'counter');
    await insertSamples('1m', s, [[T0 + 60, [5]]]);
    const [a, b] = [await startGraphing(), await startGraphing()];
    const { client, transport } = createBalancedClient(GraphService, { pool: tdb.database.pool, service: 'graphing', serviceToken: TEST_SERVICE_TOKEN, log });
    transport.start();
    try {
      for (let i = 0; i < 6; i++) {
        const res = await client.query({ accountId: account.id, statIds: [s], from: T0, to: T0 + 180 });
        expect(res.stats[0].series!.values).toEqual([0, 5, 0]);
      }
      const renders = await Promise.all(
        Array.from({ length: 4 }, () => client.render({ accountId: account.id, statIds: [s], from: T0, to: T0 + 180, format: ChartFormat.PNG, width: 200, height: 100 })),
      );
      for (const r of renders) expect(Buffer.from(r.data).readUInt32BE(16)).toBe(200);
      expect([await a.calls('query'), await b.calls('query')]).toEqual([3, 3]);
      expect([await a.calls('render'), await b.calls('render')]).toEqual([2, 2]);
    } finally {
      transport.close();
    }
  });
});
