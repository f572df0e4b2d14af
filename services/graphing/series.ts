// From rollup rows to the points a chart or the export API shows. Pure: rows in, series out.
//
// A point covers [time, time + step) and merges every row whose bucket starts inside it,
// so the same code turns 1-minute rows into 3-hour points (`1w3h`) and 1-hour rows into
// 1-hour points. Merging follows the columns' own algebra (counts and sums add, min/max,
// last by time), so a point is exactly what one bucket of that length would have held.

import type { RollupColumns } from '../kit/db/schema.js';

export type MetricKind = 'counter' | 'value' | 'gauge' | 'set';

/** One rollup row of one stat (any table): its columns (kit/db/schema.ts) and its sketch. */
export interface RollupRow extends Omit<RollupColumns, 'statId'> {
  /** Sets: the bucket's distinct count, read from its sketch. */
  distinct?: number;
  /** The row's serialized sketch (quantile for values, distinct for sets), when the table has one. */
  sketch?: Uint8Array;
  /**
   * Sketch contributions ingest has flushed for this row but not folded into `sketch` yet
   * (pending_sketches, read in the same snapshot): part of the row's sketch all the same.
   */
  pending?: Uint8Array[];
}

export interface Quantiles {
  p50: number;
  p90: number;
  p99: number;
}

export interface SeriesOptions {
  kind: MetricKind;
  /** Inclusive, unix seconds. */
  fromSec: number;
  /** Exclusive, unix seconds; (to - from) is cut into ceil((to - from) / step) points. */
  toSec: number;
  stepSec: number;
  /**
   * Percentiles of one point from its rows' quantile sketches (merged by the caller, who
   * owns the sketch format). Given only for value stats; null when a point has no sketch.
   */
  quantiles?: (rows: readonly RollupRow[]) => Quantiles | null;
  /**
   * Sets: the distinct count over several buckets, by merging their sketches. Without it a
   * point that spans several buckets shows the largest bucket's distinct count: a lower
   * bound, since distinct counts do not add.
   */
  distinct?: (rows: readonly RollupRow[]) => number;
}

export interface Series {
  kind: MetricKind;
  fromSec: number;
  toSec: number;
  stepSec: number;
  /** Start of each point, unix seconds, ascending. */
  times: number[];
  /** null is a gap: drawn as a break, exported as null. */
  values: (number | null)[];
  p50?: (number | null)[];
  p90?: (number | null)[];
  p99?: (number | null)[];
  /** Comparison series: how far back its data was read (its times are shifted forward by this). */
  offsetSec?: number;
}

export const MAX_SERIES_POINTS = 1_000_000;

export class SeriesRangeError extends Error {
  override readonly name = 'SeriesRangeError';
}

function checkRange(o: Pick<SeriesOptions, 'fromSec' | 'toSec' | 'stepSec'>): number {
  const { fromSec, toSec, stepSec } = o;
  if (![fromSec, toSec, stepSec].every(Number.isFinite) || stepSec <= 0 || toSec < fromSec) {
    throw new SeriesRangeError(`bad series range from=${fromSec} to=${toSec} step=${stepSec}`);
  }
  const n = Math.ceil((toSec - fromSec) / stepSec);
  // Time frames already cap points at 10,000; this only stops a caller's bug from
  // allocating arrays the size of the heap.
  if (n > MAX_SERIES_POINTS) throw new SeriesRangeError(`${n} points asked, more than ${MAX_SERIES_POINTS}`);
  return n;
}

/** Merge rows into one, as one bucket covering all of them would be. Empty input: count 0. */
export function mergeRows(rows: readonly RollupRow[]): RollupRow {
  const out: RollupRow = {
    bucket: Infinity,
    count: 0,
    sum: 0,
    min: Infinity,
    max: -Infinity,
    sumsq: 0,
    lastValue: 0,
    lastTime: -Infinity,
  };
  for (const r of rows) {
    if (r.bucket < out.bucket) out.bucket = r.bucket;
    out.count += r.count;
    out.sum += r.sum;
    out.sumsq += r.sumsq;
    if (r.min < out.min) out.min = r.min;
    if (r.max > out.max) out.max = r.max;
    if (r.lastTime > out.lastTime) {
      out.lastTime = r.lastTime;
      out.lastValue = r.lastValue;
    }
    if (r.distinct !== undefined) out.distinct = Math.max(out.distinct ?? 0, r.distinct);
  }
  return out;
}

/** The value of one point from its rows, per kind. No rows: 0 for counters and sets, a gap otherwise. */
export function pointValue(
  kind: MetricKind,
  rows: readonly RollupRow[],
  distinct?: SeriesOptions['distinct'],
): number | null {
  if (rows.length === 0) return kind === 'counter' || kind === 'set' ? 0 : null;
  switch (kind) {
    case 'counter': {
      let s = 0;
      for (const r of rows) s += r.sum;
      return s;
    }
    case 'value': {
      const m = mergeRows(rows);
      return m.count > 0 ? m.sum / m.count : null;
    }
    case 'gauge':
      return mergeRows(rows).lastValue;
    case 'set':
      if (distinct) return distinct(rows);
      return mergeRows(rows).distinct ?? 0;
  }
}

/** Rows of [from, to) grouped by point index; rows outside the range are dropped. */
function groupRows(rows: readonly RollupRow[], fromSec: number, stepSec: number, n: number): RollupRow[][] {
  const groups: RollupRow[][] = Array.from({ length: n }, () => []);
  for (const r of rows) {
    const i = Math.floor((r.bucket - fromSec) / stepSec);
    if (i >= 0 && i < n) groups[i].push(r);
  }
  return groups;
}

/** A dense series over [from, to): one point per step, gaps filled per kind. Rows may come in any order. */
export function buildSeries(rows: readonly RollupRow[], opts: SeriesOptions): Series {
  const n = checkRange(opts);
  const { kind, fromSec, toSec, stepSec } = opts;
  const groups = groupRows(rows, fromSec, stepSec, n);
  const times = new Array<number>(n);
  const values = new Array<number | null>(n);
  for (let i = 0; i < n; i++) {
    times[i] = fromSec + i * stepSec;
    values[i] = pointValue(kind, groups[i], opts.distinct);
  }
  const series: Series = { kind, fromSec, toSec, stepSec, times, values };
  if (opts.quantiles && kind === 'value') {
    const p50 = new Array<number | null>(n);
    const p90 = new Array<number | null>(n);
    const p99 = new Array<number | null>(n);
    for (let i = 0; i < n; i++) {
      const q = groups[i].length > 0 ? opts.quantiles(groups[i]) : null;
      p50[i] = q?.p50 ?? null;
      p90[i] = q?.p90 ?? null;
      p99[i] = q?.p99 ?? null;
    }
    Object.assign(series, { p50, p90, p99 });
  }
  return series;
}

/**
 * The same range `offsetSec` earlier, with its times moved forward by the offset so each
 * point sits on the main series' timestamp it compares with. `rows` are the rows of the
 * earlier range, [from - offset, to - offset).
 */
export function buildComparisonSeries(
  rows: readonly RollupRow[],
  opts: SeriesOptions & { offsetSec: number },
): Series {
  const { offsetSec, ...rest } = opts;
  const earlier = buildSeries(rows, { ...rest, fromSec: rest.fromSec - offsetSec, toSec: rest.toSec - offsetSec });
  return {
    ...earlier,
    fromSec: rest.fromSec,
    toSec: rest.toSec,
    times: earlier.times.map((t) => t + offsetSec),
    offsetSec,
  };
}

/**
 * At most `maxPoints` points, keeping every peak: the points are cut into maxPoints/2
 * groups of neighbours and each group keeps its lowest and its highest point (in time
 * order). The global minimum and maximum always survive, unlike averaging; a group with
 * no value keeps one gap so the line still breaks there. Percentiles follow the kept indices.
 */
export function downsample(series: Series, maxPoints: number): Series {
  return downsampleTogether([series], maxPoints)[0];
}

/**
 * Several series of the same times (a stat and its comparison) thinned to the same kept
 * indices, so they still line up point for point: each group keeps the lowest and highest
 * point of every series, so the groups are maxPoints / (2 * series) wide and no series
 * loses a peak.
 */
export function downsampleTogether(list: readonly Series[], maxPoints: number): Series[] {
  if (list.length === 0) return [];
  const n = list[0].values.length;
  for (const s of list) {
    if (s.values.length !== n) throw new SeriesRangeError(`series of ${s.values.length} and ${n} points cannot be thinned together`);
  }
  if (!(maxPoints >= 2 * list.length)) maxPoints = 2 * list.length;
  maxPoints = Math.floor(maxPoints);
  if (n <= maxPoints) return [...list];
  const groups = Math.floor(maxPoints / (2 * list.length));
  const keep: number[] = [];
  const picked: number[] = [];
  for (let g = 0; g < groups; g++) {
    const lo = Math.floor((g * n) / groups);
    const hi = Math.floor(((g + 1) * n) / groups);
    picked.length = 0;
    for (const s of list) {
      const v = s.values;
      let iMin = -1;
      let iMax = -1;
      for (let i = lo; i < hi; i++) {
        const x = v[i];
        if (x === null) continue;
        if (iMin < 0 || x < v[iMin]!) iMin = i;
        if (iMax < 0 || x > v[iMax]!) iMax = i;
      }
      if (iMin >= 0) picked.push(iMin, iMax);
    }
    if (picked.length === 0) {
      keep.push(lo);
      continue;
    }
    picked.sort((a, b) => a - b);
    for (let j = 0; j < picked.length; j++) if (j === 0 || picked[j] !== picked[j - 1]) keep.push(picked[j]);
  }
  return list.map((series) => {
    const pick = <T>(a: T[]) => keep.map((i) => a[i]);
    const out: Series = { ...series, times: pick(series.times), values: pick(series.values) };
    if (series.p50) out.p50 = pick(series.p50);
    if (series.p90) out.p90 = pick(series.p90);
    if (series.p99) out.p99 = pick(series.p99);
    return out;
  });
}

export interface Summary {
  /** Points in the range that have a value (gaps are not counted). */
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  /** Counters: the sum of all counts. Values: the sum of all samples. Gauges and sets: null. */
  total: number | null;
  /** Population standard deviation. */
  stddev: number | null;
  /** Samples received in the range (the rows' count column). */
  samples: number;
}

/**
 * Summary of a range. Value stats are summarised over their samples, from the rows'
 * columns: min and max are the smallest and largest sample, the mean is sum/count over the
 * whole range (not the mean of the point means), the deviation comes from sum of squares.
 * Counters, gauges and sets are summarised over the dense point values (a counter's empty
 * point is a 0 and counts; a gauge's gap does not), so they depend on the step.
 */
export function summarize(rows: readonly RollupRow[], opts: SeriesOptions, dense?: Series): Summary {
  const { kind, fromSec, toSec } = opts;
  const series = dense ?? buildSeries(rows, opts);
  let count = 0;
  for (const x of series.values) if (x !== null) count++;

  if (kind === 'value') {
    const inRange = rows.filter((r) => r.bucket >= fromSec && r.bucket < toSec && r.count > 0);
    const m = mergeRows(inRange);
    if (m.count === 0) {
      return { count, min: null, max: null, mean: null, total: null, stddev: null, samples: 0 };
    }
    const mean = m.sum / m.count;
    // E[x^2] - mean^2 cancels badly for large, close values; clamp the rounding below zero.
    const variance = Math.max(0, m.sumsq / m.count - mean * mean);
    return { count, min: m.min, max: m.max, mean, total: m.sum, stddev: Math.sqrt(variance), samples: m.count };
  }

  let samples = 0;
  for (const r of rows) if (r.bucket >= fromSec && r.bucket < toSec) samples += r.count;
  if (count === 0) {
    return { count, min: null, max: null, mean: null, total: kind === 'counter' ? 0 : null, stddev: null, samples };
  }
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const x of series.values) {
    if (x === null) continue;
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
  }
  const mean = sum / count;
  let sq = 0;
  for (const x of series.values) if (x !== null) sq += (x - mean) * (x - mean);
  return {
    count,
    min,
    max,
    mean,
    total: kind === 'counter' ? sum : null,
    stddev: Math.sqrt(sq / count),
    samples,
  };
}
