import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Aggregator, mergeInto, rollUp, type Bucket } from './aggregator.js';

describe('Aggregator', () => {
  it('keeps one bucket per stat and minute with count, sum, min, max, sumsq and the last value', () => {
    const a = new Aggregator();
    a.add(1, 60_000 + 5, 3);
    a.add(1, 60_000 + 59_999, -2);
    a.add(1, 120_000, 10);
    a.add(2, 60_000, 7);
    const out = a.take().sort((x, y) => x.statId - y.statId || x.bucket - y.bucket);
    expect(out).toEqual([
      { statId: 1, bucket: 60, count: 2, sum: 1, min: -2, max: 3, sumsq: 13, lastValue: -2, lastTime: 119_999 },
      { statId: 1, bucket: 120, count: 1, sum: 10, min: 10, max: 10, sumsq: 100, lastValue: 10, lastTime: 120_000 },
      { statId: 2, bucket: 60, count: 1, sum: 7, min: 7, max: 7, sumsq: 49, lastValue: 7, lastTime: 60_000 },
    ]);
    expect(a.size).toBe(0);
  });

  it('gives the same buckets however a stream is split between two aggregators', () => {
    const sample = fc.record({ stat: fc.integer({ min: 1, max: 3 }), t: fc.integer({ min: 0, max: 600_000 }), v: fc.integer({ min: -1000, max: 1000 }), side: fc.boolean() });
    fc.assert(
      fc.property(fc.array(sample, { maxLength: 200 }), (samples) => {
        const one = new Aggregator();
        const left = new Aggregator();
        const right = new Aggregator();
        for (const s of samples) {
          one.add(s.stat, s.t, s.v);
          (s.side ? left : right).add(s.stat, s.t, s.v);
        }
        const merged = new Map<string, Bucket>();
        for (const b of [...left.take(), ...right.take()]) {
          const k = `${b.statId}/${b.bucket}`;
          const m = merged.get(k);
          if (m) mergeInto(m, b);
          else merged.set(k, { ...b });
        }
        const whole = new Map(one.take().map((b) => [`${b.statId}/${b.bucket}`, b]));
        expect(merged).toEqual(whole);
      }),
    );
  });

  it('rolls minutes up into hours', () => {
    const a = new Aggregator();
    a.add(1, 0, 1);
    a.add(1, 3_599_000, 5);
    a.add(1, 3_600_000, 2);
    const hours = rollUp(a.take(), 3600).sort((x, y) => x.bucket - y.bucket);
    expect(hours.map((h) => [h.bucket, h.count, h.sum, h.max])).toEqual([
      [0, 2, 6, 5],
      [3600, 1, 2, 2],
    ]);
  });
});
