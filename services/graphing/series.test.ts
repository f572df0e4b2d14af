import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type MetricKind,
  type RollupRow,
  type Series,
  SeriesRangeError,
  buildComparisonSeries,
  buildSeries,
  downsample,
  summarize,
} from './series.js';

const T0 = 1_699_999_200; // a whole hour

/** Rollup rows from raw samples, as ingest would write them. */
function rollup(samples: { t: number; v: number }[], bucketSec: number): RollupRow[] {
  const by = new Map<number, RollupRow>();
  for (const { t, v } of samples) {
    const bucket = Math.floor(t / bucketSec) * bucketSec;
    const r = by.get(bucket) ?? {
      bucket, count: 0, sum: 0, min: Infinity, max: -Infinity, sumsq: 0, lastValue: 0, lastTime: -Infinity,
    };
    r.count++;
    r.sum += v;
    r.sumsq += v * v;
    r.min = Math.min(r.min, v);
    r.max = Math.max(r.max, v);
    if (t * 1000 >= r.lastTime) {
      r.lastTime = t * 1000;
      r.lastValue = v;
    }
    by.set(bucket, r);
  }
  return [...by.values()];
}

const row = (bucket: number, v: number, extra: Partial<RollupRow> = {}): RollupRow => ({
  bucket, count: 1, sum: v, min: v, max: v, sumsq: v * v, lastValue: v, lastTime: bucket * 1000, ...extra,
});

describe('buildSeries gap filling', () => {
  const rows = [row(T0 + 120, 5, { distinct: 3 }), row(T0, 2, { distinct: 1 })]; // unsorted, minute 1 empty
  const opts = (kind: MetricKind) => ({ kind, fromSec: T0, toSec: T0 + 240, stepSec: 60 });

  it.each([
    ['counter', [2, 0, 5, 0]],
    ['set', [1, 0, 3, 0]],
    ['value', [2, null, 5, null]],
    ['gauge', [2, null, 5, null]],
  ] as const)('%s', (kind, expected) => {
    const s = buildSeries(rows, opts(kind));
    expect(s.values).toEqual(expected);
    expect(s.times).toEqual([T0, T0 + 60, T0 + 120, T0 + 180]);
  });

  it('drops rows outside [from, to)', () => {
    const s = buildSeries([row(T0 - 60, 9), row(T0 + 240, 9), row(T0 + 60, 1)], opts('counter'));
    expect(s.values).toEqual([0, 1, 0, 0]);
  });

  it('an empty range has no points; a bad range throws', () => {
    expect(buildSeries([], { kind: 'counter', fromSec: T0, toSec: T0, stepSec: 60 }).values).toEqual([]);
    expect(() => buildSeries([], { kind: 'counter', fromSec: T0, toSec: T0 - 1, stepSec: 60 })).toThrow(SeriesRangeError);
    expect(() => buildSeries([], { kind: 'counter', fromSec: T0, toSec: T0 + 60, stepSec: 0 })).toThrow(SeriesRangeError);
    expect(() => buildSeries([], { kind: 'counter', fromSec: 0, toSec: 1e9, stepSec: 60 })).toThrow(/more than/);
  });
});

describe('re-bucketing minute rows into 3-hour points', () => {
  const step = 3 * 3600;
  // Samples every 7 minutes over 9 hours, values varying, shuffled minute rows.
  const samples = Array.from({ length: (9 * 60) / 7 }, (_, i) => ({ t: T0 + i * 7 * 60 + 13, v: ((i * 37) % 11) - 3 }));
  const rows = rollup(samples, 60).reverse();
  const naive = (k: number) => samples.filter((s) => s.t >= T0 + k * step && s.t < T0 + (k + 1) * step);

  it('counter: sums add', () => {
    const s = buildSeries(rows, { kind: 'counter', fromSec: T0, toSec: T0 + 9 * 3600, stepSec: step });
    expect(s.values).toEqual([0, 1, 2].map((k) => naive(k).reduce((a, x) => a + x.v, 0)));
  });

  it('value: mean over the merged bucket, not mean of means', () => {
    const s = buildSeries(rows, { kind: 'value', fromSec: T0, toSec: T0 + 9 * 3600, stepSec: step });
    [0, 1, 2].forEach((k) => {
      const xs = naive(k);
      expect(s.values[k]).toBeCloseTo(xs.reduce((a, x) => a + x.v, 0) / xs.length, 12);
    });
  });

  it('gauge: the last value by time, whatever the row order', () => {
    const s = buildSeries(rows, { kind: 'gauge', fromSec: T0, toSec: T0 + 9 * 3600, stepSec: step });
    expect(s.values).toEqual([0, 1, 2].map((k) => naive(k).at(-1)!.v));
  });

  it('set: a merge hook gets every row of a point; without one, the largest bucket count', () => {
    const setRows = [row(T0, 0, { distinct: 4 }), row(T0 + 60, 0, { distinct: 6 })];
    const o = { kind: 'set' as const, fromSec: T0, toSec: T0 + step, stepSec: step };
    expect(buildSeries(setRows, o).values).toEqual([6]);
    expect(buildSeries(setRows, { ...o, distinct: (rs) => rs.length * 100 }).values).toEqual([200]);
  });

  it('percentiles come from the caller\'s sketch merge, for value stats only', () => {
    const o = { fromSec: T0, toSec: T0 + 2 * step, stepSec: step, quantiles: (rs: readonly RollupRow[]) => ({ p50: rs.length, p90: 1, p99: 2 }) };
    const s = buildSeries([row(T0, 1), row(T0 + 60, 1)], { ...o, kind: 'value' });
    expect(s.p50).toEqual([2, null]);
    expect(s.p99).toEqual([2, null]);
    expect(buildSeries([row(T0, 1)], { ...o, kind: 'counter' }).p50).toBeUndefined();
  });
});

describe('comparison', () => {
  it('reads the earlier range and lines its points up with the main series', () => {
    const week = 7 * 86400;
    const opts = { kind: 'counter' as const, fromSec: T0, toSec: T0 + 3 * 3600, stepSec: 3600 };
    const main = buildSeries([row(T0, 1)], opts);
    const cmp = buildComparisonSeries([row(T0 - week + 3600, 7), row(T0, 99)], { ...opts, offsetSec: week });
    expect(cmp.times).toEqual(main.times);
    expect(cmp.values).toEqual([0, 7, 0]);
    expect(cmp.offsetSec).toBe(week);
  });
});

const seriesArb = fc
  .array(fc.option(fc.double({ min: -1e9, max: 1e9, noNaN: true }), { nil: null, freq: 4 }), { minLength: 0, maxLength: 3000 })
  .map((values): Series => ({
    kind: 'value', fromSec: 0, toSec: values.length * 60, stepSec: 60,
    times: values.map((_, i) => i * 60), values,
  }));

describe('downsample', () => {
  it('keeps at most maxPoints, in time order, and the global min and max', () => {
    fc.assert(
      fc.property(seriesArb, fc.integer({ min: 2, max: 600 }), (s, maxPoints) => {
        const d = downsample(s, maxPoints);
        expect(d.values.length).toBeLessThanOrEqual(Math.max(maxPoints, 0));
        for (let i = 1; i < d.times.length; i++) expect(d.times[i]).toBeGreaterThan(d.times[i - 1]);
        const present = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
        const all = present(s.values);
        if (all.length > 0) {
          const kept = present(d.values);
          expect(Math.min(...kept)).toBe(Math.min(...all));
          expect(Math.max(...kept)).toBe(Math.max(...all));
        }
        // Every kept point is a real point of the input, unchanged.
        d.times.forEach((t, i) => expect(d.values[i]).toBe(s.values[t / 60]));
      }),
      { numRuns: 200 },
    );
  });

  it('leaves a short series alone and keeps a gap where a whole group is empty', () => {
    const s: Series = { kind: 'value', fromSec: 0, toSec: 600, stepSec: 60, times: [0, 60, 120, 180, 240, 300, 360, 420], values: [1, 2, null, null, null, null, 3, 4] };
    expect(downsample(s, 8)).toBe(s);
    expect(downsample(s, 8).values).toEqual(s.values);
    expect(downsample(s, 6).values).toContain(null);
  });

  it('carries the percentiles of the kept points', () => {
    const values = [5, 1, 9, 2, 8, 3];
    const s: Series = { kind: 'value', fromSec: 0, toSec: 360, stepSec: 60, times: values.map((_, i) => i * 60), values, p50: values.map((v) => v * 10) };
    const d = downsample(s, 2);
    expect(d.values).toEqual([1, 9]);
    expect(d.p50).toEqual([10, 90]);
  });
});

describe('summarize', () => {
  const samplesArb = fc.array(
    fc.record({ t: fc.integer({ min: T0, max: T0 + 86400 - 1 }), v: fc.double({ min: -1e6, max: 1e6, noNaN: true }) }),
    { minLength: 1, maxLength: 400 },
  );
  const rel = (a: number, b: number, tol: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b)));

  it('value stats: from samples, matches a naive computation', () => {
    fc.assert(
      fc.property(samplesArb, (samples) => {
        const rows = rollup(samples, 60);
        const sum = samples.reduce((a, s) => a + s.v, 0);
        const mean = sum / samples.length;
        const sd = Math.sqrt(samples.reduce((a, s) => a + (s.v - mean) ** 2, 0) / samples.length);
        const got = summarize(rows, { kind: 'value', fromSec: T0, toSec: T0 + 86400, stepSec: 3600 });
        expect(got.samples).toBe(samples.length);
        // -0 and 0 are the same min (which of them a merge keeps is not specified): compared as numbers.
        expect(got.min! + 0).toBe(Math.min(...samples.map((s) => s.v)) + 0);
        expect(got.max! + 0).toBe(Math.max(...samples.map((s) => s.v)) + 0);
        rel(got.mean!, mean, 1e-9);
        rel(got.total!, sum, 1e-9);
        // Sum of squares loses digits when the deviation is tiny next to the values.
        expect(Math.abs(got.stddev! - sd)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.sqrt(samples.reduce((a, s) => a + s.v * s.v, 0) / samples.length)));
        expect(got.count).toBe(new Set(samples.map((s) => Math.floor((s.t - T0) / 3600))).size);
      }),
      { numRuns: 100 },
    );
  });

  it('counters: over the point values, empty points counting as 0', () => {
    fc.assert(
      fc.property(samplesArb, (samples) => {
        const rows = rollup(samples.map((s) => ({ t: s.t, v: Math.round(s.v) })), 60);
        const points = Array.from({ length: 24 }, (_, k) =>
          samples.filter((s) => s.t >= T0 + k * 3600 && s.t < T0 + (k + 1) * 3600).reduce((a, s) => a + Math.round(s.v), 0));
        const mean = points.reduce((a, b) => a + b, 0) / 24;
        const sd = Math.sqrt(points.reduce((a, p) => a + (p - mean) ** 2, 0) / 24);
        const got = summarize(rows, { kind: 'counter', fromSec: T0, toSec: T0 + 86400, stepSec: 3600 });
        expect(got.count).toBe(24);
        expect(got.total).toBe(points.reduce((a, b) => a + b, 0));
        expect(got.min! + 0).toBe(Math.min(...points) + 0);
        expect(got.max! + 0).toBe(Math.max(...points) + 0);
        rel(got.mean!, mean, 1e-12);
        rel(got.stddev!, sd, 1e-9);
      }),
      { numRuns: 100 },
    );
  });

  it('empty ranges', () => {
    const o = { fromSec: T0, toSec: T0 + 3600, stepSec: 60 };
    expect(summarize([], { ...o, kind: 'value' })).toEqual({ count: 0, min: null, max: null, mean: null, total: null, stddev: null, samples: 0 });
    expect(summarize([], { ...o, kind: 'gauge' }).count).toBe(0);
    const c = summarize([], { ...o, kind: 'counter' });
    expect(c).toMatchObject({ count: 60, min: 0, max: 0, mean: 0, total: 0, stddev: 0 });
  });

  it('gauges: over present points only', () => {
    const got = summarize([row(T0, 4), row(T0 + 120, 8)], { kind: 'gauge', fromSec: T0, toSec: T0 + 600, stepSec: 60 });
    expect(got).toMatchObject({ count: 2, min: 4, max: 8, mean: 6, total: null, stddev: 2 });
  });
});
