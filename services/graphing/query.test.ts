import { describe, expect, it } from 'vitest';
import { OspreyError } from '../kit/errors.js';
import { offsetLabel } from './converters.js';
import { MAX_ROWS_PER_STAT, planQuery } from './query.js';
import { RenderLimiter } from './render-limiter.js';
import { mergeRanges } from './rollups.js';
import { downsampleTogether, type Series } from './series.js';

const DAY = 86_400;
const T0 = 19_675 * DAY;

describe('planQuery', () => {
  it('picks the table by range and gives one point per bucket without a step', () => {
    expect(planQuery({ fromSec: T0, toSec: T0 + DAY, nowSec: T0 + DAY })).toEqual({
      resolution: '1m', bucketSec: 60, stepSec: 60, fromSec: T0, toSec: T0 + DAY, points: 1440,
    });
    expect(planQuery({ fromSec: T0, toSec: T0 + 7 * DAY, nowSec: T0 }).resolution).toBe('1h');
    expect(planQuery({ fromSec: T0, toSec: T0 + 365 * DAY, nowSec: T0 }).resolution).toBe('1d');
  });

  it('raises a step to whole buckets and widens the range to whole steps', () => {
    const p = planQuery({ fromSec: T0 + 30, toSec: T0 + 400, stepSec: 100, nowSec: T0 });
    expect(p).toMatchObject({ resolution: '1m', stepSec: 120, fromSec: T0, toSec: T0 + 480, points: 4 });
  });

  it('passes over the minute table once retention dropped the start of the range', () => {
    const retention = { '1m': 30 * DAY };
    expect(planQuery({ fromSec: T0, toSec: T0 + DAY, nowSec: T0 + 29 * DAY, retention }).resolution).toBe('1m');
    expect(planQuery({ fromSec: T0, toSec: T0 + DAY, nowSec: T0 + 31 * DAY, retention }).resolution).toBe('1h');
  });

  it('refuses empty, reversed and oversized ranges', () => {
    const bad = (f: () => unknown) => expect(f).toThrow(OspreyError);
    bad(() => planQuery({ fromSec: T0, toSec: T0, nowSec: T0 }));
    bad(() => planQuery({ fromSec: T0 + 1, toSec: T0, nowSec: T0 }));
    bad(() => planQuery({ fromSec: T0, toSec: T0 + 365 * DAY, resolution: '1m', nowSec: T0 }));
    expect(planQuery({ fromSec: T0, toSec: T0 + MAX_ROWS_PER_STAT * 60, resolution: '1m', nowSec: T0 }).points).toBe(MAX_ROWS_PER_STAT);
  });
});

describe('mergeRanges', () => {
  it('joins overlapping and touching ranges and keeps apart the rest', () => {
    expect(mergeRanges([{ fromSec: 10, toSec: 20 }, { fromSec: 0, toSec: 10 }, { fromSec: 30, toSec: 40 }, { fromSec: 35, toSec: 36 }])).toEqual([
      { fromSec: 0, toSec: 20 },
      { fromSec: 30, toSec: 40 },
    ]);
  });
});

describe('downsampleTogether', () => {
  const series = (values: (number | null)[]): Series => ({
    kind: 'value', fromSec: 0, toSec: values.length, stepSec: 1, times: values.map((_, i) => i), values,
  });

  it('keeps every series\' peaks at shared times', () => {
    const n = 1000;
    const a = series(Array.from({ length: n }, (_, i) => (i === 100 ? 99 : i === 600 ? -99 : 0)));
    const b = series(Array.from({ length: n }, (_, i) => (i === 101 ? 77 : i === 900 ? null : 1)));
    const [ta, tb] = downsampleTogether([a, b], 40);
    expect(ta.times).toEqual(tb.times);
    expect(ta.values.length).toBeLessThanOrEqual(40);
    expect(ta.values).toContain(99);
    expect(ta.values).toContain(-99);
    expect(tb.values).toContain(77);
  });

  it('returns short series as they are', () => {
    const a = series([1, 2, 3]);
    expect(downsampleTogether([a, a], 10)[0]).toBe(a);
  });
});

describe('RenderLimiter', () => {
  it('runs at most `concurrency` at once and refuses beyond the queue', async () => {
    const limiter = new RenderLimiter(2, 1);
    let running = 0;
    let peak = 0;
    const releases: (() => void)[] = [];
    const job = () =>
      limiter.run(async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((r) => releases.push(r));
        running--;
      });
    const jobs = [job(), job(), job()];
    await new Promise((r) => setImmediate(r));
    expect([limiter.active, limiter.queued]).toEqual([2, 1]);
    await expect(job()).rejects.toThrow(/too many renders/);
    while (releases.length > 0 || limiter.active > 0) {
      releases.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(jobs);
    expect(peak).toBe(2);
    expect([limiter.active, limiter.queued]).toEqual([0, 0]);
  });
});

describe('offsetLabel', () => {
  it('names the usual offsets', () => {
    expect([DAY, 7 * DAY, 30 * DAY, 2 * DAY, 3600, 90].map(offsetLabel)).toEqual([
      '1 day earlier', '1 week earlier', '1 month earlier', '2 days earlier', '1 hour earlier', '90 seconds earlier',
    ]);
  });
});
