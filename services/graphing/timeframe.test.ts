import { describe, expect, it } from 'vitest';
import {
  EMBED_TIMEFRAMES,
  MAX_POINTS_PER_SERIES,
  PAGE_TIMEFRAMES,
  TIMEFRAME_GRAMMAR,
  TimeframeError,
  embedTimeframe,
  parseTimeframe,
} from './timeframe.js';

describe('parseTimeframe', () => {
  it.each([
    ['1w3h', 7 * 86400, 3 * 3600, 56, '1 week @ 3 hours'],
    ['1d15m', 86400, 900, 96, '1 day @ 15 minutes'],
    ['30m1m', 1800, 60, 30, '30 minutes @ 1 minute'],
    ['1h1h', 3600, 3600, 1, '1 hour @ 1 hour'],
    ['2M1d', 60 * 86400, 86400, 60, '2 months @ 1 day'],
    ['1y1w', 365 * 86400, 7 * 86400, 53, '1 year @ 1 week'],
    ['1d7h', 86400, 7 * 3600, 4, '1 day @ 7 hours'],
    ['6d1m', 6 * 86400, 60, 8640, '6 days @ 1 minute'],
  ])('%s', (t, durationSec, intervalSec, points, label) => {
    expect(parseTimeframe(t)).toEqual({ durationSec, intervalSec, points, label });
  });

  it.each([
    ['', 'empty'],
    ['1w', 'does not match'],
    ['w3h', 'does not match'],
    ['1w3', 'does not match'],
    ['1w3hx', 'does not match'],
    [' 1w3h', 'does not match'],
    ['1w3h ', 'does not match'],
    ['1W3h', 'does not match'],
    ['1w3s', 'does not match'],
    ['0w3h', 'does not match'],
    ['1w0h', 'does not match'],
    ['01w3h', 'does not match'],
    ['-1w3h', 'does not match'],
    ['1.5w3h', 'does not match'],
    ['1w3h1m', 'does not match'],
    ['1234567d1d', 'does not match'],
    ['1h1d', 'interval is longer'],
    ['101y1y', 'longer than 100 years'],
    ['1M1m', 'more than'],
    ['1w1m', '10080 points'],
    ['999999y1y', 'longer than 100 years'],
  ])('rejects %j', (t, reason) => {
    let err: unknown;
    try {
      parseTimeframe(t);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TimeframeError);
    const te = err as TimeframeError;
    expect(te.code).toBe('invalid_timeframe');
    expect(te.message).toContain(reason);
    expect(te.message).toContain(TIMEFRAME_GRAMMAR);
  });

  it('honours the points limit exactly', () => {
    // 10,000 minutes is the limit; one more minute of duration is one point too many.
    expect(parseTimeframe(`${MAX_POINTS_PER_SERIES}m1m`).points).toBe(MAX_POINTS_PER_SERIES);
    expect(() => parseTimeframe(`${MAX_POINTS_PER_SERIES + 1}m1m`)).toThrow(TimeframeError);
    expect(() => parseTimeframe('1d1h', 10)).toThrow(/24 points, more than 10/);
  });

  it('truncates a hostile input in the message', () => {
    const t = `1w${'x'.repeat(5000)}`;
    expect(() => parseTimeframe(t)).toThrow(TimeframeError);
    try {
      parseTimeframe(t);
    } catch (e) {
      expect((e as Error).message.length).toBeLessThan(TIMEFRAME_GRAMMAR.length + 200);
    }
  });
});

describe('embed and page frames', () => {
  it('maps the embed names, comparisons one period back', () => {
    expect(embedTimeframe('hour')).toEqual({ name: 'hour', durationSec: 3600 });
    expect(embedTimeframe('day_compare')).toEqual({ name: 'day_compare', durationSec: 86400, compareOffsetSec: 86400 });
    expect(embedTimeframe('week_compare').compareOffsetSec).toBe(7 * 86400);
    expect(Object.keys(EMBED_TIMEFRAMES).sort()).toEqual(
      ['day', 'day_compare', 'hour', 'month', 'week', 'week_compare', 'year'].sort(),
    );
  });

  it('falls back to a week for an unknown or prototype-ish tf', () => {
    expect(embedTimeframe(undefined).name).toBe('week');
    expect(embedTimeframe('fortnight').name).toBe('week');
    expect(embedTimeframe('__proto__').name).toBe('week');
    expect(embedTimeframe('toString').name).toBe('week');
  });

  it('has the six page frames', () => {
    expect(Object.keys(PAGE_TIMEFRAMES)).toEqual(['1h', '1d', '1w', '1M', '3M', '1y']);
    expect(PAGE_TIMEFRAMES['3M'].durationSec).toBe(90 * 86400);
    expect(PAGE_TIMEFRAMES['1h'].compareOffsetSec).toBe(86400);
  });
});
