import { OspreyError } from '../kit/errors.js';
import { COMPARE_OFFSETS, PAGE_TIMEFRAMES, isPageTimeframe, parseTimeframe, type Timeframe } from '../graphing/timeframe.js';
import type { RangeQuery } from './graph.js';

/** Pages draw at most this many points per line (graphing keeps the peaks). */
export const PAGE_MAX_POINTS = 600;

export interface RangeParams {
  /** A page frame: 1h 1d 1w 1M 3M 1y. */
  tf?: string;
  /** StatHat's duration+interval, e.g. 1w3h. */
  t?: string;
  /** Unix seconds. */
  from?: number;
  to?: number;
  /** 1/true: the frame's own comparison; day/week/month; 0/false/absent: none. */
  compare?: string;
  percentiles?: boolean;
  maxPoints?: number;
}

function compareOffset(compare: string | undefined, frameDefault: number, durationSec: number): number {
  if (!compare || compare === '0' || compare === 'false') return 0;
  if (compare === '1' || compare === 'true') return frameDefault || durationSec;
  if (Object.hasOwn(COMPARE_OFFSETS, compare)) return COMPARE_OFFSETS[compare as keyof typeof COMPARE_OFFSETS];
  throw new OspreyError('invalid', 'compare must be 0, 1, day, week or month');
}

/** Turns the query parameters every series endpoint shares into a graphing range. */
export function resolveRange(p: RangeParams, nowMs: number): RangeQuery & { timeframe?: Timeframe } {
  const now = Math.floor(nowMs / 1000);
  const maxPoints = p.maxPoints ?? PAGE_MAX_POINTS;
  if (p.t !== undefined) {
    const tf = parseTimeframe(p.t);
    // Without a start, the range ends at the next interval boundary, so every point covers
    // a whole interval and there are exactly duration/interval of them.
    const from = p.from ?? Math.ceil(now / tf.intervalSec) * tf.intervalSec - tf.durationSec;
    return { from, to: from + tf.durationSec, stepSec: tf.intervalSec, maxPoints: 0, compareOffsetSec: compareOffset(p.compare, 0, tf.durationSec), percentiles: p.percentiles, timeframe: tf };
  }
  if (p.from !== undefined || p.to !== undefined) {
    const to = p.to ?? now;
    const from = p.from ?? to - 86_400;
    if (from >= to) throw new OspreyError('invalid', 'from must be before to');
    return { from, to, maxPoints, compareOffsetSec: compareOffset(p.compare, 0, to - from), percentiles: p.percentiles };
  }
  const name = p.tf ?? '1d';
  if (!isPageTimeframe(name)) throw new OspreyError('invalid', `tf must be one of ${Object.keys(PAGE_TIMEFRAMES).join(', ')}`);
  const frame = PAGE_TIMEFRAMES[name];
  return { from: now - frame.durationSec, to: now, maxPoints, compareOffsetSec: compareOffset(p.compare, frame.compareOffsetSec, frame.durationSec), percentiles: p.percentiles };
}
