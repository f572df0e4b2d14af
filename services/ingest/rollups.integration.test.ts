// The flusher against a real MariaDB: every kind to 1m/1h/1d, sketches through
// pending_sketches, exactly-once retries, two replicas racing, gauge deltas across
// replicas, and a property test that any split of a stream over two replicas gives the
// rollups one replica gives.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { KIND, type RollupColumns } from '../kit/db/schema.js';
import { DistinctSketch } from '../kit/sketch/distinct.js';
import { QuantileSketch } from '../kit/sketch/quantile.js';
import { createTestDatabase, type TestDatabase } from '../kit/testing/db.js';
import { Aggregator } from './aggregator.js';
import { RollupFlusher } from './flusher.js';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

const log = pino({ level: 'silent' });
let replicaNo = 0;

function replica(now: () => number = Date.now): { agg: Aggregator; flusher: RollupFlusher; metrics: Registry } {
  const agg = new Aggregator();
  const metrics = new Registry();
  return { agg, flusher: new RollupFlusher(tdb.database.pool, agg, `test-${++replicaNo}`, log, metrics, now), metrics };
}

async function createStats(kinds: number[]): Promise<number[]> {
  const ids: number[] = [];
  for (const kind of kinds) {
    const [res] = await tdb.database.pool.query('INSERT INTO stats (account_id, name, kind) VALUES (1, ?, ?)', [`s${Math.random()}`, kind]);
    ids.push((res as { insertId: number }).insertId);
  }
  return ids;
}

interface Row extends RollupColumns {
  sketch: Buffer | null;
}

async function rows(table: string, ids: readonly number[]): Promise<Row[]> {
  const [found] = await tdb.database.pool.query<RowDataPacket[]>(
    `SELECT stat_id, bucket, count, sum, min, max, sumsq, last_value, last_time, sketch FROM ${table} WHERE stat_id IN (?) ORDER BY stat_id, bucket`,
    [ids],
  );
  return found.map((r) => ({
    statId: Number(r.stat_id),
    bucket: Number(r.bucket),
    count: Number(r.count),
    sum: Number(r.sum),
    min: Number(r.min),
    max: Number(r.max),
    sumsq: Number(r.sumsq),
    lastValue: Number(r.last_value),
    lastTime: Number(r.last_time),
    sketch: (r.sketch as Buffer | null) ?? null,
  }));
}

async function pendingCount(ids: readonly number[]): Promise<number> {
  const [[r]] = (await tdb.database.pool.query('SELECT COUNT(*) AS n FROM pending_sketches WHERE stat_id IN (?)', [ids])) as unknown as [[{ n: number }]];
  return Number(r.n);
}

async function latestGauge(id: number): Promise<number> {
  const [found] = await tdb.database.pool.query<RowDataPacket[]>('SELECT last_value FROM rollups_1d WHERE stat_id = ? ORDER BY bucket DESC LIMIT 1', [id]);
  return Number(found[0].last_value);
}

function quantileOf(values: number[], weights?: number[]): Buffer {
  const s = new QuantileSketch();
  values.forEach((v, i) => s.add(v, weights?.[i] ?? 1));
  return s.serialize();
}

const TABLES = ['rollups_1m', 'rollups_1h', 'rollups_1d'] as const;
// A day boundary minus 90 s: a few minutes of points cross a minute, an hour and a day.
const T0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 90_000;

describe('RollupFlusher on MariaDB', () => {
  it('writes every kind to 1m, 1h and 1d; sketches reach all three through pending_sketches', async () => {
    const [counter, value, gauge, set] = await createStats([KIND.counter, KIND.value, KIND.gauge, KIND.set]);
    const { agg, flusher } = replica();
    agg.add(counter, T0, 2, 10); // 2 at sample rate 0.1
    agg.add(counter, T0 + 1, 3);
    for (const v of [1, 5, 400]) agg.add(value, T0 + 2, v);
    agg.addGauge(gauge, T0 + 3, 5, false);
    agg.addGauge(gauge, T0 + 4, 2, true);
    for (const m of ['ann', 'bob', 'ann', 'cy']) agg.addSet(set, T0 + 5, m);
    await flusher.flush();
    const m = await rows('rollups_1m', [counter, value, gauge, set]);
    expect(m.map((r) => [r.count, r.sum, r.min, r.max, r.lastValue])).toEqual([
      [11, 23, 2, 3, 3],
      [3, 406, 1, 400, 400],
      [2, 12, 5, 7, 7],
      [4, 0, 0, 0, 0],
    ]);
    // Not folded yet: the rollups' sketches are still in pending_sketches.
    expect(m.every((r) => r.sketch === null)).toBe(true);
    expect(await pendingCount([value, set])).toBe(2);
    await flusher.foldAll();
    expect(await pendingCount([value, set])).toBe(0);
    for (const table of TABLES) {
      const [c, v, g, s] = await rows(table, [counter, value, gauge, set]);
      expect(c.sketch).toBeNull();
      expect(g.sketch).toBeNull();
      expect(v.sketch).toEqual(quantileOf([1, 5, 400]));
      expect(DistinctSketch.deserialize(s.sketch!).count).toBe(3);
    }
  });

  it('folds a pending row on the flush that finds it old enough, then starts a new one', async () => {
    const [value] = await createStats([KIND.value]);
    let clock = T0;
    const { agg, flusher } = replica(() => clock);
    flusher.foldAfterSec = 10;
    const flushAt = async (sec: number, v: number) => {
      clock = T0 + sec * 1000;
      agg.add(value, T0 + 1000, v); // all in the same minute
      await flusher.flush();
    };
    await flushAt(0, 10);
    await flushAt(5, 20);
    expect(await pendingCount([value])).toBe(1);
    expect((await rows('rollups_1m', [value]))[0].sketch).toBeNull();
    await flushAt(11, 30); // the row is 11 s old: folded together with this flush's part
    expect(await pendingCount([value])).toBe(0);
    for (const table of TABLES) expect((await rows(table, [value]))[0].sketch).toEqual(quantileOf([10, 20, 30]));
    await flushAt(12, 40);
    expect(await pendingCount([value])).toBe(1);
    await flusher.sweep(0);
    for (const table of TABLES) expect((await rows(table, [value]))[0].sketch).toEqual(quantileOf([10, 20, 30, 40]));
  });

  it('applies a flush once when the reply to its COMMIT is lost, sketches, folds and gauge deltas included', async () => {
    const [value, set, gauge] = await createStats([KIND.value, KIND.set, KIND.gauge]);
    const { agg, flusher } = replica();
    agg.add(value, T0, 7);
    agg.addSet(set, T0, 'x');
    agg.addGauge(gauge, T0, 100, false);
    await flusher.flush();
    flusher.foldAfterSec = 0; // the next flush folds the pending rows it touches
    agg.add(value, T0 + 1, 8, 2);
    agg.addSet(set, T0 + 1, 'y');
    agg.addGauge(gauge, T0 + 1, 5, true);
    flusher.afterCommit = () => {
      throw new Error('connection lost after COMMIT');
    };
    await expect(flusher.flush()).rejects.toThrow('connection lost');
    flusher.afterCommit = undefined;
    agg.add(value, T0 + 2, 9);
    await flusher.flush(); // retries the lost one: a no-op
    await flusher.flush(); // then the new point
    await flusher.foldAll();
    for (const table of TABLES) {
      const [v, s, g] = await rows(table, [value, set, gauge]);
      expect([v.count, v.sum]).toEqual([4, 7 + 16 + 9]);
      expect(v.sketch).toEqual(quantileOf([7, 8, 9], [1, 2, 1]));
      expect(s.count).toBe(2);
      expect(DistinctSketch.deserialize(s.sketch!).count).toBe(2);
      expect([g.count, g.lastValue]).toEqual([2, 105]);
    }
  });

  it('applies a flush once when it fails before COMMIT and is retried', async () => {
    const [value] = await createStats([KIND.value]);
    const { agg, flusher } = replica();
    agg.add(value, T0, 1);
    flusher.beforeFreshPending = async () => {
      throw new Error('MySQL went away mid-flush');
    };
    await expect(flusher.flush()).rejects.toThrow('went away');
    flusher.beforeFreshPending = undefined;
    expect(await rows('rollups_1m', [value])).toEqual([]); // rolled back
    await flusher.flush();
    await flusher.foldAll();
    const [r] = await rows('rollups_1h', [value]);
    expect([r.count, r.sketch]).toEqual([1, quantileOf([1])]);
  });

  it('merges, not overwrites, when another replica inserts the same pending row between our read and our insert', async () => {
    const [value] = await createStats([KIND.value]);
    const a = replica();
    const b = replica();
    a.agg.add(value, T0, 10);
    b.agg.add(value, T0, 20);
    a.flusher.beforeFreshPending = async () => {
      a.flusher.beforeFreshPending = undefined;
      await b.flusher.flush(); // commits the row A just found missing
    };
    await a.flusher.flush();
    const races = await a.metrics.getSingleMetric('osprey_flush_sketch_races_total')!.get();
    expect(races.values[0].value).toBe(1);
    await a.flusher.foldAll();
    for (const table of TABLES) {
      const [r] = await rows(table, [value]);
      expect([r.count, r.sum]).toEqual([2, 30]);
      expect(r.sketch).toEqual(quantileOf([10, 20]));
    }
  });

  it('adds up gauge deltas from two replicas exactly once, whatever the flush order', async () => {
    for (const order of ['ab', 'ba', 'together'] as const) {
      const [gauge] = await createStats([KIND.gauge]);
      const a = replica();
      const b = replica();
      a.agg.addGauge(gauge, T0, 100, false);
      await a.flusher.flush();
      // A's deltas are stamped later than B's; B may commit last anyway.
      for (const [i, d] of [1, 1, 1].entries()) a.agg.addGauge(gauge, T0 + 60_000 + i, d, true);
      for (const [i, d] of [2, 2].entries()) b.agg.addGauge(gauge, T0 + 1_000 + i, d, true);
      if (order === 'ab') {
        await a.flusher.flush();
        await b.flusher.flush();
      } else if (order === 'ba') {
        await b.flusher.flush();
        await a.flusher.flush();
      } else {
        await Promise.all([a.flusher.flush(), b.flusher.flush()]);
      }
      expect(await latestGauge(gauge), order).toBe(107);
      const day = await rows('rollups_1d', [gauge]);
      expect(day.reduce((n, r) => n + r.count, 0), order).toBe(6);
      // and the next delta, on either replica, builds on 107
      b.agg.addGauge(gauge, T0 + 120_000, -7, true);
      await b.flusher.flush();
      expect(await latestGauge(gauge), order).toBe(100);
    }
  });

  it('gives two replicas flushing the same buckets at the same time the rollups of one', async () => {
    const [value, set] = await createStats([KIND.value, KIND.set]);
    const [value1, set1] = await createStats([KIND.value, KIND.set]);
    const a = replica();
    const b = replica();
    const one = replica();
    for (let i = 0; i < 300; i++) {
      const r = i % 2 ? a : b;
      r.agg.add(value, T0 + i * 100, i % 37);
      r.agg.addSet(set, T0 + i * 100, `m${i % 280}`);
      one.agg.add(value1, T0 + i * 100, i % 37);
      one.agg.addSet(set1, T0 + i * 100, `m${i % 280}`);
    }
    await Promise.all([a.flusher.flush(), b.flusher.flush(), one.flusher.flush()]);
    await Promise.all([a.flusher.foldAll(), b.flusher.foldAll()]);
    for (const table of TABLES) {
      const split = await rows(table, [value, set]);
      const whole = await rows(table, [value1, set1]);
      expect(split.map((r) => ({ ...r, statId: 0 }))).toEqual(whole.map((r) => ({ ...r, statId: 0 })));
    }
    const [s] = await rows('rollups_1d', [set]);
    // past the exact limit: a HyperLogLog, within 2% (standard error 0.8%)
    expect(Math.abs(DistinctSketch.deserialize(s.sketch!).count - 280)).toBeLessThanOrEqual(0.02 * 280);
  });
});

describe('flush pacing', () => {
  const busy = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };
  it('spaces flushes out so that they take at most busyShare of the time, never beyond maxIntervalMs', async () => {
    const [counter] = await createStats([KIND.counter]);
    const paced = async (opts: { busyShare: number; maxIntervalMs: number }) => {
      const { agg, flusher } = replica();
      // Every flush takes at least 120 ms and leaves a point for the next, so whichever run's
      // pause the loop below reads (on a loaded machine it may wake after several), it
      // followed a slow flush, not an empty run.
      flusher.afterCommit = () => {
        busy(120);
        agg.add(counter, Date.now(), 1);
      };
      agg.add(counter, Date.now(), 1);
      flusher.start(10, opts);
      try {
        const until = Date.now() + 10_000;
        while (flusher.nextPauseMs === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
        return flusher.nextPauseMs;
      } finally {
        flusher.stop();
      }
    };
    // a quarter of the time: the pause is at least three times the flush
    expect(await paced({ busyShare: 0.25, maxIntervalMs: 10_000 })).toBeGreaterThanOrEqual(3 * 120);
    // but flushes stay at most maxIntervalMs apart, start to start
    expect(await paced({ busyShare: 0.25, maxIntervalMs: 200 })).toBeLessThanOrEqual(200 - 120);
  });

  it('keeps the interval when flushes are quick', async () => {
    const { agg, flusher } = replica();
    const [counter] = await createStats([KIND.counter]);
    let flushes = 0;
    flusher.afterCommit = () => flushes++;
    flusher.start(20, { busyShare: 0.2, maxIntervalMs: 10_000 });
    try {
      for (let i = 0; i < 5; i++) {
        agg.add(counter, Date.now(), 1);
        const before = flushes;
        const until = Date.now() + 10_000;
        while (flushes === before && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      flusher.stop();
    }
    expect(flushes).toBe(5);
    expect(flusher.nextPauseMs).toBeLessThan(1000);
  });
});

describe('any stream split over two replicas gives the rollups of one (property, MariaDB)', () => {
  // Stats per kind in one run. Gauges come in three families, for what holds of each:
  //   abs:      absolute values only, split arbitrarily: every column equal;
  //   affinity: absolute values and deltas, every point of a stat on one replica (its
  //             points' order is the stream's): every column equal;
  //   deltas:   an optional absolute seed flushed first, then deltas split arbitrarily:
  //             the latest value is seed + the sum of the deltas, and the points are all
  //             counted (the min/max/sum of intermediate values depend on how the replicas'
  //             flushes interleave, so they are not compared).
  const N = 2;
  type Kind = 'counter' | 'value' | 'set' | 'abs' | 'affinity' | 'deltas';
  const KINDS: Kind[] = ['counter', 'value', 'set', 'abs', 'affinity', 'deltas'];
  const DB_KIND: Record<Kind, number> = { counter: KIND.counter, value: KIND.value, set: KIND.set, abs: KIND.gauge, affinity: KIND.gauge, deltas: KIND.gauge };

  const point = fc.record({
    kind: fc.constantFrom(...KINDS),
    stat: fc.integer({ min: 0, max: N - 1 }),
    /** ms after T0, for counters, values and sets (gauges take increasing times). */
    t: fc.integer({ min: 0, max: 240_000 }),
    v: fc.integer({ min: -1000, max: 1000 }),
    w: fc.constantFrom(1, 2, 4, 10),
    delta: fc.boolean(),
    member: fc.integer({ min: 0, max: 60 }),
    toA: fc.boolean(),
    /** Flush after this point: bit 0 replica A, bit 1 replica B, bit 2 the single replica. */
    flushes: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 7 }) }),
  });
  const run = fc.record({
    points: fc.array(point, { minLength: 10, maxLength: 150, size: 'max' }),
    seeds: fc.array(fc.option(fc.integer({ min: -500, max: 500 }), { nil: undefined }), { minLength: N, maxLength: N }),
    /** 0: every flush folds the pending rows it touches; else they wait for the final foldAll. */
    foldAfterSec: fc.constantFrom(0, 3600),
  });

  it('holds for counters, values, sets and gauges, with sketches, at 1m, 1h and 1d', { timeout: 300_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(run, async ({ points, seeds, foldAfterSec }) => {
        // Each run its own stats: ids of the split path and of the single path.
        const splitIds = {} as Record<Kind, number[]>;
        const oneIds = {} as Record<Kind, number[]>;
        for (const k of KINDS) {
          splitIds[k] = await createStats(new Array(N).fill(DB_KIND[k]));
          oneIds[k] = await createStats(new Array(N).fill(DB_KIND[k]));
        }
        const a = replica();
        const b = replica();
        const one = replica();
        for (const r of [a, b, one]) r.flusher.foldAfterSec = foldAfterSec;
        // Seeds of the delta gauges, in MySQL before the stream.
        for (let s = 0; s < N; s++) {
          if (seeds[s] === undefined) continue;
          a.agg.addGauge(splitIds.deltas[s], T0 - 5_000, seeds[s]!, false);
          one.agg.addGauge(oneIds.deltas[s], T0 - 5_000, seeds[s]!, false);
        }
        await a.flusher.flush();
        await one.flusher.flush();

        let gaugeTime = T0;
        for (const p of points) {
          const side = p.kind === 'affinity' ? (p.stat === 0 ? a : b) : p.toA ? a : b;
          const feed = (r: typeof a, id: number) => {
            switch (p.kind) {
              case 'counter':
              case 'value':
                r.agg.add(id, T0 + p.t, p.v, p.w);
                break;
              case 'set':
                r.agg.addSet(id, T0 + p.t, `m${p.member}`);
                break;
              case 'abs':
                r.agg.addGauge(id, gaugeTime, p.v, false);
                break;
              case 'affinity':
              case 'deltas':
                r.agg.addGauge(id, gaugeTime, p.kind === 'deltas' ? (p.v % 50) + 0 : p.v, p.kind === 'deltas' || p.delta);
                break;
            }
          };
          gaugeTime += 1_500; // distinct, increasing: no ties in time across replicas
          feed(side, splitIds[p.kind][p.stat]);
          feed(one, oneIds[p.kind][p.stat]);
          if (p.flushes & 1) await a.flusher.flush();
          if (p.flushes & 2) await b.flusher.flush();
          if (p.flushes & 4) await one.flusher.flush();
        }
        await Promise.all([a.flusher.flush(), b.flusher.flush(), one.flusher.flush()]);
        await a.flusher.foldAll();
        await b.flusher.foldAll();

        const logical = (ids: Record<Kind, number[]>) => {
          const m = new Map<number, string>();
          for (const k of KINDS) ids[k].forEach((id, s) => m.set(id, `${k}#${s}`));
          return m;
        };
        const splitName = logical(splitIds);
        const oneName = logical(oneIds);
        const exact: Kind[] = ['counter', 'value', 'set', 'abs', 'affinity'];
        for (const table of TABLES) {
          const norm = (rs: Row[], names: Map<number, string>) => rs.map((r) => ({ ...r, statId: names.get(r.statId) }));
          const split = norm(await rows(table, exact.flatMap((k) => splitIds[k])), splitName);
          const whole = norm(await rows(table, exact.flatMap((k) => oneIds[k])), oneName);
          split.sort((x, y) => x.statId!.localeCompare(y.statId!) || x.bucket - y.bucket);
          whole.sort((x, y) => x.statId!.localeCompare(y.statId!) || x.bucket - y.bucket);
          expect(split, table).toEqual(whole);
          // what the sketches answer, spelled out (equal bytes imply it)
          for (let i = 0; i < split.length; i++) {
            const s = split[i];
            if (s.statId!.startsWith('value')) {
              const [x, y] = [QuantileSketch.deserialize(s.sketch!), QuantileSketch.deserialize(whole[i].sketch!)];
              for (const q of [0.5, 0.9, 0.99]) expect(x.quantile(q)).toBe(y.quantile(q));
            }
            if (s.statId!.startsWith('set')) expect(DistinctSketch.deserialize(s.sketch!).count).toBe(DistinctSketch.deserialize(whole[i].sketch!).count);
          }
          for (let s = 0; s < N; s++) {
            const mine = await rows(table, [splitIds.deltas[s]]);
            const ref = await rows(table, [oneIds.deltas[s]]);
            expect(mine.reduce((n, r) => n + r.count, 0)).toBe(ref.reduce((n, r) => n + r.count, 0));
          }
        }
        for (let s = 0; s < N; s++) {
          const deltas = points.filter((p) => p.kind === 'deltas' && p.stat === s);
          if (deltas.length === 0 && seeds[s] === undefined) continue;
          const expected = (seeds[s] ?? 0) + deltas.reduce((n, p) => n + (p.v % 50) + 0, 0);
          expect(await latestGauge(splitIds.deltas[s])).toBe(expected);
          expect(await latestGauge(oneIds.deltas[s])).toBe(expected);
        }
        expect(await pendingCount([...KINDS.flatMap((k) => splitIds[k]), ...KINDS.flatMap((k) => oneIds[k])])).toBe(0);
      }),
      { numRuns: 40 },
    );
  });
});
