import { describe, expect, it } from 'vitest';
import { AUTO_MAX_BUCKETS, alignRange, pickResolution, planRange } from './resolution.js';
import { parseTimeframe } from './timeframe.js';

const H = 3600;
const D = 86400;
const NOW = 1_700_000_000; // not aligned to anything

describe('pickResolution', () => {
  it('auto picks minutes up to two days, hours up to 120 days, then days', () => {
    const r = (span: number) => pickResolution({ fromSec: NOW - span, toSec: NOW }).resolution;
    expect(r(H)).toBe('1m');
    expect(r(2 * D)).toBe('1m');
    expect(r(2 * D + 60)).toBe('1h');
    expect(r(7 * D)).toBe('1h');
    expect(r(90 * D)).toBe('1h');
    expect(r(AUTO_MAX_BUCKETS * H)).toBe('1h');
    expect(r(AUTO_MAX_BUCKETS * H + H)).toBe('1d');
    expect(r(365 * D)).toBe('1d');
  });

  it('honours an explicit resolution', () => {
    expect(pickResolution({ fromSec: NOW - 365 * D, toSec: NOW, resolution: '1m' }).resolution).toBe('1m');
    expect(pickResolution({ fromSec: NOW - H, toSec: NOW, resolution: '1d' })).toEqual({ resolution: '1d', bucketSec: D });
  });

  it('needs a table whose bucket divides the step', () => {
    // 1 day @ 15 minutes: minutes; 1 week @ 3 hours: hours; 1 year @ 1 hour forces hours.
    expect(pickResolution({ fromSec: NOW - D, toSec: NOW, stepSec: 900 }).resolution).toBe('1m');
    expect(pickResolution({ fromSec: NOW - 7 * D, toSec: NOW, stepSec: 3 * H }).resolution).toBe('1h');
    expect(pickResolution({ fromSec: NOW - 365 * D, toSec: NOW, stepSec: H }).resolution).toBe('1h');
    expect(pickResolution({ fromSec: NOW - 365 * D, toSec: NOW, stepSec: 7 * D }).resolution).toBe('1d');
    // 90 minutes cannot come from hours.
    expect(pickResolution({ fromSec: NOW - 30 * D, toSec: NOW, stepSec: 5400 }).resolution).toBe('1m');
    // No table divides 100 s or 30 s: minutes, raised, rather than days.
    expect(pickResolution({ fromSec: NOW - D, toSec: NOW, stepSec: 100 }).resolution).toBe('1m');
    expect(pickResolution({ fromSec: NOW - D, toSec: NOW, stepSec: 30 }).resolution).toBe('1m');
    expect(pickResolution({ fromSec: NOW - 365 * D, toSec: NOW, stepSec: 4000 }).resolution).toBe('1h');
  });

  it('passes over a table whose retention no longer covers the start', () => {
    const oldestSec = { '1m': NOW - 30 * D };
    expect(pickResolution({ fromSec: NOW - 40 * D, toSec: NOW - 39 * D, oldestSec }).resolution).toBe('1h');
    expect(pickResolution({ fromSec: NOW - D, toSec: NOW, oldestSec }).resolution).toBe('1m');
  });
});

describe('ranges', () => {
  it('aligns [from, to) outward to whole buckets', () => {
    expect(alignRange(3601, 7199, 3600)).toEqual({ fromSec: 3600, toSec: 7200 });
    expect(alignRange(3600, 7200, 3600)).toEqual({ fromSec: 3600, toSec: 7200 });
  });

  it('plans 1w3h ending with the current hour', () => {
    const tf = parseTimeframe('1w3h');
    const p = planRange({ durationSec: tf.durationSec, stepSec: tf.intervalSec, nowSec: NOW });
    expect(p.resolution).toBe('1h');
    expect(p.stepSec).toBe(3 * H);
    expect(p.points).toBe(56);
    expect(p.toSec % H).toBe(0);
    expect(p.toSec).toBeGreaterThan(NOW);
    expect(p.toSec - NOW).toBeLessThanOrEqual(H);
    expect(p.toSec - p.fromSec).toBe(56 * 3 * H);
  });

  it('plans from a start (StatHat start=)', () => {
    const p = planRange({ durationSec: D, stepSec: 900, startSec: NOW, nowSec: NOW + 10 * D });
    expect(p.resolution).toBe('1m');
    expect(p.fromSec).toBe(Math.floor(NOW / 60) * 60);
    expect(p.toSec - p.fromSec).toBe(D);
    expect(p.points).toBe(96);
  });

  it('raises a step that the chosen table cannot divide', () => {
    const p = planRange({ durationSec: 365 * D, stepSec: 90 * 60, nowSec: NOW, resolution: '1h' });
    expect(p.stepSec).toBe(2 * H);
  });

  it('chooses a default step of whole buckets', () => {
    const p = planRange({ durationSec: 365 * D, nowSec: NOW });
    expect(p.resolution).toBe('1d');
    expect(p.stepSec).toBe(D);
    expect(p.points).toBe(365);
    expect(p.fromSec % D).toBe(0);
  });
});
