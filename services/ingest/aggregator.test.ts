import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KIND, rollupColumnsOf } from '../kit/db/schema.js';
import { DistinctSketch } from '../kit/sketch/distinct.js';
import { mergeSerializedQuantiles, QuantileSketch } from '../kit/sketch/quantile.js';
import { Aggregator, bucketCopy, resolveGauges, type Bucket } from './aggregator.js';

const numeric = (b: Bucket) => rollupColumnsOf(b);
const byKey = (x: Bucket, y: Bucket) => x.statId - y.statId || x.bucket - y.bucket;

describe('Aggregator with a BucketCache', () => {
  it('adds to the bucket a cache notes while that is the bucket of its window and minute, and to the right one otherwise', () => {
    const cached = new Aggregator();
    const plain = new Aggregator();
    const cache = { bucketSlot: -1, bucketGen: -1 };
    const feed = (t: number, v: number) => {
      cached.add(1, t, v, 1, cache);
      plain.add(1, t, v);
    };
    feed(60_000, 1);
    const first = cache.bucketSlot;
    feed(60_001, 2);
    expect(cache.bucketSlot).toBe(first);
    feed(120_000, 3); // another minute: another bucket
    expect(cache.bucketSlot).not.toBe(first);
    feed(60_002, 4); // back to the first minute's bucket (a late point)
    expect(cache.bucketSlot).toBe(first);
    expect(cached.take().map(numeric)).toEqual(plain.take().map(numeric));
    feed(60_003, 5); // a new window: the note is stale (its slot is reused), a fresh bucket
    const out = cached.take();
    expect(out).toHaveLength(1);
    expect(out.map(numeric)).toEqual(plain.take().map(numeric));
    // One cache passed for other stats (not how intake uses it) is replaced, never misused.
    cached.addGauge(2, 60_000, 7, false, cache);
    cached.addSet(3, 60_000, 'a', cache);
    cached.add(1, 60_000, 9, 1, cache);
    expect(cached.take().sort(byKey).map((b) => [b.statId, b.count])).toEqual([
      [1, 1],
      [2, 1],
      [3, 1],
    ]);
  });
});

describe('Aggregator.add (counters and values)', () => {
  it('keeps one bucket per stat and minute with count, sum, min, max, sumsq and the last value', () => {
    const a = new Aggregator();
    a.add(1, 60_000 + 5, 3);
    a.add(1, 60_000 + 59_999, -2);
    a.add(1, 120_000, 10);
    a.add(2, 60_000, 7, 4);
    const out = a.take().sort(byKey).map(numeric);
    expect(out).toEqual([
      { statId: 1, bucket: 60, count: 2, sum: 1, min: -2, max: 3, sumsq: 13, lastValue: -2, lastTime: 119_999 },
      { statId: 1, bucket: 120, count: 1, sum: 10, min: 10, max: 10, sumsq: 100, lastValue: 10, lastTime: 120_000 },
      { statId: 2, bucket: 60, count: 4, sum: 28, min: 7, max: 7, sumsq: 196, lastValue: 7, lastTime: 60_000 },
    ]);
    expect(a.size).toBe(0);
    expect(a.pendingSamples).toBe(0);
  });

  it('feeds a quantile sketch unless the stat is known to be a counter', () => {
    const a = new Aggregator();
    a.noteKind(1, KIND.counter);
    a.noteKind(2, KIND.value);
    for (const id of [1, 2, 3]) for (const v of [5, 50, 500]) a.add(id, 0, v, 2);
    const [counter, value, unknown] = a.take().sort(byKey);
    expect(counter.quantiles).toBeNull();
    const expected = new QuantileSketch();
    for (const v of [5, 50, 500]) expected.add(v, 2);
    expect(value.quantiles!.serialize()).toEqual(expected.serialize());
    // unknown kind: sketched (the flusher drops it if the stat turns out to be a counter)
    expect(unknown.kind).toBe(0);
    expect(unknown.quantiles!.serialize()).toEqual(expected.serialize());
  });

  it('refuses a value or weight that no column could hold', () => {
    const a = new Aggregator();
    expect(() => a.add(1, 0, NaN)).toThrow(RangeError);
    expect(() => a.add(1, 0, 1, 0)).toThrow(RangeError);
    expect(() => a.addGauge(1, 0, Infinity, false)).toThrow(RangeError);
    expect(a.size).toBe(0);
  });

  it('gives the same buckets and sketches however a stream is split between two aggregators', () => {
    const sample = fc.record({
      stat: fc.integer({ min: 1, max: 3 }),
      t: fc.integer({ min: 0, max: 600_000 }),
      v: fc.integer({ min: -1000, max: 1000 }),
      w: fc.constantFrom(1, 2, 10),
      side: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(sample, { maxLength: 200 }), (samples) => {
        const one = new Aggregator();
        const left = new Aggregator();
        const right = new Aggregator();
        for (const s of samples) {
          one.add(s.stat, s.t, s.v, s.w);
          (s.side ? left : right).add(s.stat, s.t, s.v, s.w);
        }
        const merged = new Map<number, { row: ReturnType<typeof numeric>; sketch: Buffer }>();
        for (const b of [...left.take(), ...right.take()]) {
          const k = b.statId * 1e10 + b.bucket;
          const m = merged.get(k);
          const sketch = b.quantiles!.serialize();
          if (!m) {
            merged.set(k, { row: numeric(b), sketch });
            continue;
          }
          const r = m.row;
          r.count += b.count;
          r.sum += b.sum;
          r.sumsq += b.sumsq;
          r.min = Math.min(r.min, b.min);
          r.max = Math.max(r.max, b.max);
          if (b.lastTime > r.lastTime || (b.lastTime === r.lastTime && b.lastValue > r.lastValue)) {
            r.lastTime = b.lastTime;
            r.lastValue = b.lastValue;
          }
          m.sketch = mergeSerializedQuantiles(m.sketch, sketch);
        }
        const whole = new Map(one.take().map((b) => [b.statId * 1e10 + b.bucket, { row: numeric(b), sketch: b.quantiles!.serialize() }]));
        expect(merged).toEqual(whole);
      }),
    );
  });
});

describe('Aggregator columns', () => {
  it('agrees with a per-(stat, minute) reference past growth, across many minutes of one stat, and in later windows on fresh and shrunk columns', () => {
    const a = new Aggregator();
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let window = 0; window < 4; window++) {
      const ref = new Map<string, { count: number; sum: number; min: number; max: number }>();
      // 3,000 stats (past the first 1,024 slots), stat 1 over 200 minutes (a long chain),
      // points in random order; the second window is small, so the columns shrink after it.
      for (let i = 0; i < (window === 1 ? 50 : 20_000); i++) {
        const stat = i % 10 === 0 ? 1 : 2 + rnd(3_000);
        const minute = stat === 1 ? rnd(200) : rnd(3);
        const v = rnd(1000) - 500;
        a.add(stat, minute * 60_000 + rnd(60_000), v);
        const k = `${stat}/${minute * 60}`;
        const r = ref.get(k) ?? { count: 0, sum: 0, min: Infinity, max: -Infinity };
        r.count++;
        r.sum += v;
        r.min = Math.min(r.min, v);
        r.max = Math.max(r.max, v);
        ref.set(k, r);
      }
      expect(a.size).toBe(ref.size);
      const got = new Map(a.take().map((b) => [`${b.statId}/${b.bucket}`, { count: b.count, sum: b.sum, min: b.min, max: b.max }]));
      expect(got).toEqual(ref);
      expect(a.size).toBe(0);
    }
  });

  it('hands over buckets whose numbers stay theirs: later samples in the next window\'s columns leave them alone, and writes stay in them', () => {
    const a = new Aggregator();
    a.add(1, 60_000, 5);
    a.add(2, 60_000, 1);
    const [one, two] = a.take();
    a.add(3, 120_000, 7); // slot 0 of the next window, the slot stat 1 had
    a.add(3, 120_000, 9);
    expect(rollupColumnsOf(one)).toEqual({ statId: 1, bucket: 60, count: 1, sum: 5, min: 5, max: 5, sumsq: 25, lastValue: 5, lastTime: 60_000 });
    one.count += 2;
    one.bucket = 0;
    expect([one.count, one.bucket, two.count, two.bucket]).toEqual([3, 0, 1, 60]);
    // A plain copy carries the numbers (spread would not: they are accessors) and is its own.
    const copy = bucketCopy(one);
    copy.sum = 100;
    expect({ ...copy }).toMatchObject({ statId: 1, count: 3, sum: 100, kind: 0 });
    expect(one.sum).toBe(5);
    const [three] = a.take();
    expect(rollupColumnsOf(three)).toMatchObject({ statId: 3, bucket: 120, count: 2, sum: 16 });
  });
});

describe('Aggregator.addGauge', () => {
  it('keeps the last value by time, the later arrival winning a tie, and the values taken', () => {
    const a = new Aggregator();
    a.addGauge(1, 1_000, 5, false);
    a.addGauge(1, 3_000, 9, false);
    a.addGauge(1, 2_000, 7, false); // older: its bucket keeps 9 as the last value
    a.addGauge(1, 3_000, 4, false); // same millisecond, later arrival
    const [b] = a.take();
    expect(numeric(b)).toEqual({ statId: 1, bucket: 0, count: 4, sum: 25, min: 4, max: 9, sumsq: 25 + 81 + 49 + 16, lastValue: 4, lastTime: 3_000 });
    expect(b.relative).toBeNull();
    expect(b.quantiles).toBeNull();
  });

  it('applies deltas to the current value in arrival order, as Etsy statsd does', () => {
    const a = new Aggregator();
    a.addGauge(1, 1_000, 10, false);
    a.addGauge(1, 1_000, 1, true);
    a.addGauge(1, 1_000, -3, true); // the same packet: 10, +1, -3 is 8, not the largest value
    a.addGauge(1, 61_000, 2, true); // the next minute continues from 8
    const [m0, m1] = a.take().sort(byKey);
    expect([m0.lastValue, m0.count, m0.min, m0.max, m0.sum]).toEqual([8, 3, 8, 11, 29]);
    expect([m1.lastValue, m1.count]).toEqual([10, 1]);
    expect(m0.relative).toBeNull();
    expect(m1.relative).toBeNull();
  });

  it('keeps deltas before any value of the window relative to the stored value, resolved by the flush', () => {
    const a = new Aggregator();
    a.addGauge(1, 1_000, 2, true);
    a.addGauge(1, 2_000, -5, true);
    a.addGauge(1, 3_000, 100, false); // from here on the value is known
    a.addGauge(1, 4_000, 1, true);
    const buckets = a.take();
    const [b] = buckets;
    expect(b.relative).toEqual({ n: 2, sum: 2 + -3, sumsq: 4 + 9, min: -3, max: 2, last: -3, lastTime: 2_000, lastSeq: 2 });
    expect([b.count, b.sum, b.lastValue, b.lastTime]).toEqual([2, 201, 101, 4_000]);
    // With 40 stored: the gauge took 42, 37, 100, 101.
    const [r] = resolveGauges(buckets, 40, 500);
    expect(numeric(r)).toEqual({ statId: 1, bucket: 0, count: 4, sum: 42 + 37 + 100 + 101, min: 37, max: 101, sumsq: 42 ** 2 + 37 ** 2 + 100 ** 2 + 101 ** 2, lastValue: 101, lastTime: 4_000 });
    expect(r.relative).toBeNull();
    // nothing stored yet: the deltas start from 0
    const [z] = resolveGauges(buckets, 0, -Infinity);
    expect([z.min, z.count, z.lastValue]).toEqual([-3, 4, 101]);
  });

  it('starts each window over: a delta after take() is relative again', () => {
    const a = new Aggregator();
    a.addGauge(1, 1_000, 10, false);
    a.take();
    a.addGauge(1, 2_000, 1, true);
    const [b] = a.take();
    expect(b.count).toBe(0);
    expect(b.relative?.last).toBe(1);
  });

  it('a backfilled value older than the current one lands in its bucket without moving the current value', () => {
    const a = new Aggregator();
    a.addGauge(1, 120_000, 10, false);
    a.addGauge(1, 5_000, 99, false);
    a.addGauge(1, 121_000, 1, true);
    const [old, now] = a.take().sort(byKey);
    expect([old.bucket, old.lastValue]).toEqual([0, 99]);
    expect([now.bucket, now.lastValue]).toEqual([120, 11]);
  });

  it('moves a window stamped before the stored value after it, so its deltas stay on top', () => {
    const a = new Aggregator();
    a.addGauge(1, 59_000, 1, true); // minute 0
    a.addGauge(1, 61_000, 1, true); // minute 1
    // Another replica's value 10 was stamped at 62,500 and committed first.
    const out = resolveGauges(a.take(), 10, 62_500).sort(byKey);
    expect(out.map(numeric)).toEqual([{ statId: 1, bucket: 60, count: 2, sum: 11 + 12, min: 11, max: 12, sumsq: 121 + 144, lastValue: 12, lastTime: 62_501 }]);
  });
});

describe('Aggregator.addSet', () => {
  it('counts distinct members per bucket, exactly while small, and the points', () => {
    const a = new Aggregator();
    for (const m of ['a', 'b', 'a', 'c', 'b']) a.addSet(1, 1_000, m);
    a.addSet(1, 61_000, 'a');
    const [m0, m1] = a.take().sort(byKey);
    expect(m0.distinct!.count).toBe(3);
    expect(m0.distinct!.isExact).toBe(true);
    expect(m0.count).toBe(5);
    expect([m0.sum, m0.min, m0.max, m0.lastTime]).toEqual([0, 0, 0, 1_000]);
    expect(m1.distinct!.count).toBe(1);
    const whole = new DistinctSketch();
    for (const m of ['c', 'b', 'a']) whole.add(m);
    expect(m0.distinct!.serialize()).toEqual(whole.serialize());
  });
});
