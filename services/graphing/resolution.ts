// Which rollup table answers a query, and the exact bucket-aligned range it reads.
//
// Buckets in every table start at multiples of their length since the epoch (UTC), so a
// day bucket is a UTC day. A point of a series is a whole number of buckets of one table;
// a step that is not a multiple of the table's bucket is raised to the next multiple.

export type Resolution = '1m' | '1h' | '1d';

export const RESOLUTION_SECONDS: Readonly<Record<Resolution, number>> = {
  '1m': 60,
  '1h': 3_600,
  '1d': 86_400,
};

const FINEST_FIRST: readonly Resolution[] = ['1m', '1h', '1d'];

/**
 * Auto picks the finest table that needs at most this many buckets (rows per stat) for the
 * range. 2,880 is two days of minutes: minute detail for the hour and day views, where it
 * shows something, while a week of minutes (10,080 rows per stat, three stats per chart)
 * would cost query time for detail no chart 2,000 px wide can draw. The same limit gives
 * hours up to 120 days, which covers the 1 month and 3 month views (2,160 rows), and days
 * beyond (a year is 365 rows). Minute rollups are also only kept 30 days by default.
 */
export const AUTO_MAX_BUCKETS = 2_880;

export function isResolution(s: string): s is Resolution {
  return s === '1m' || s === '1h' || s === '1d';
}

export interface ResolutionChoice {
  resolution: Resolution;
  bucketSec: number;
}

export interface PickResolutionInput {
  fromSec: number;
  toSec: number;
  /** The wanted spacing of points; the table's bucket must divide it. */
  stepSec?: number;
  /** 'auto' (default) or a table the caller insists on. */
  resolution?: Resolution | 'auto';
  /**
   * Oldest bucket each table still holds (retention). A table that no longer covers
   * `fromSec` is passed over by auto, so an old range is not drawn as zeros.
   */
  oldestSec?: Partial<Record<Resolution, number>>;
  maxBuckets?: number;
}

export function pickResolution(input: PickResolutionInput): ResolutionChoice {
  const { fromSec, toSec, stepSec, oldestSec = {}, maxBuckets = AUTO_MAX_BUCKETS } = input;
  const wanted = input.resolution ?? 'auto';
  if (wanted !== 'auto') return { resolution: wanted, bucketSec: RESOLUTION_SECONDS[wanted] };

  const span = Math.max(0, toSec - fromSec);
  const covers = (r: Resolution) => oldestSec[r] === undefined || oldestSec[r]! <= fromSec;
  const divides = (r: Resolution) =>
    stepSec === undefined || (stepSec >= RESOLUTION_SECONDS[r] && stepSec % RESOLUTION_SECONDS[r] === 0);
  // A step no table divides (100 s, 30 s) is raised to whole buckets of a table no
  // coarser than the step itself (minutes at least), not handed to the day table.
  const fitsStep = FINEST_FIRST.some(divides)
    ? divides
    : (r: Resolution) => RESOLUTION_SECONDS[r] <= Math.max(stepSec ?? 0, RESOLUTION_SECONDS['1m']);

  for (const r of FINEST_FIRST) {
    if (fitsStep(r) && covers(r) && Math.ceil(span / RESOLUTION_SECONDS[r]) <= maxBuckets) {
      return { resolution: r, bucketSec: RESOLUTION_SECONDS[r] };
    }
  }
  // Nothing fits every wish. The step wins over the row budget (the points limit in the
  // time frame already bounds the work), then retention: the coarsest table that still
  // divides the step and holds the range, else the coarsest that holds it, else days.
  const stepFitting = FINEST_FIRST.filter(fitsStep);
  const held = stepFitting.filter(covers);
  const r = held.at(-1) ?? FINEST_FIRST.filter(covers).at(-1) ?? '1d';
  return { resolution: r, bucketSec: RESOLUTION_SECONDS[r] };
}

export function floorTo(t: number, unit: number): number {
  return Math.floor(t / unit) * unit;
}

export function ceilTo(t: number, unit: number): number {
  return Math.ceil(t / unit) * unit;
}

/** [from, to) widened to whole buckets. */
export function alignRange(fromSec: number, toSec: number, bucketSec: number): { fromSec: number; toSec: number } {
  return { fromSec: floorTo(fromSec, bucketSec), toSec: ceilTo(toSec, bucketSec) };
}

export interface RangePlan {
  resolution: Resolution;
  bucketSec: number;
  /** A multiple of bucketSec. */
  stepSec: number;
  /** Inclusive start, a bucket boundary. */
  fromSec: number;
  /** Exclusive end, a bucket boundary; (to - from) = points * step. */
  toSec: number;
  points: number;
}

export interface PlanRangeInput {
  durationSec: number;
  /** Default: the duration split into at most `defaultPoints` points of whole buckets. */
  stepSec?: number;
  /** Where the range starts (StatHat's `start=`); without it the range ends at `nowSec`. */
  startSec?: number;
  nowSec: number;
  resolution?: Resolution | 'auto';
  oldestSec?: Partial<Record<Resolution, number>>;
  defaultPoints?: number;
}

/**
 * The range a time frame reads. Without a start the range ends with the bucket holding
 * `now` (a partly filled last point, as StatHat drew it) and its points are counted back
 * from there, so the newest point is always the current one.
 */
export function planRange(input: PlanRangeInput): RangePlan {
  const { durationSec, nowSec, startSec, defaultPoints = 500 } = input;
  const roughFrom = startSec ?? nowSec - durationSec;
  const choice = pickResolution({
    fromSec: roughFrom,
    toSec: roughFrom + durationSec,
    stepSec: input.stepSec,
    resolution: input.resolution,
    oldestSec: input.oldestSec,
  });
  const b = choice.bucketSec;
  const stepSec = Math.max(b, ceilTo(input.stepSec ?? durationSec / defaultPoints, b));
  const points = Math.max(1, Math.ceil(durationSec / stepSec));
  let fromSec: number;
  let toSec: number;
  if (startSec !== undefined) {
    fromSec = floorTo(startSec, b);
    toSec = fromSec + points * stepSec;
  } else {
    toSec = floorTo(nowSec, b) + b;
    fromSec = toSec - points * stepSec;
  }
  return { ...choice, stepSec, fromSec, toSec, points };
}
