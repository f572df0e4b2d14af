import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeSerializedQuantiles, QUANTILE_RELATIVE_ACCURACY, QuantileAccumulator, QuantileSketch } from './quantile.js';

const QS = [0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

function sketchOf(values: readonly number[], weights?: readonly number[]): QuantileSketch {
  const s = new QuantileSketch();
  values.forEach((v, i) => s.add(v, weights?.[i] ?? 1));
  return s;
}

function merged(...parts: QuantileSketch[]): QuantileSketch {
  const s = new QuantileSketch();
  for (const p of parts) s.merge(p);
  return s;
}

/** Magnitudes a metric can have: zero, or 1e-9..1e12 of either sign (what we promise 1% on). */
const valueArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0) },
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.double({ min: -9, max: 12, noNaN: true }), fc.boolean())
      .map(([e, neg]) => (neg ? -1 : 1) * 10 ** e),
  },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 5000 }) },
);
/** Weights that sum exactly in any order (1/rate for rates 1, .5, .25, .1, .01). */
const weightArb = fc.constantFrom(1, 2, 4, 10, 100);

function quantilesOf(s: QuantileSketch): number[] {
  return QS.map((q) => s.quantile(q));
}

describe('QuantileSketch', () => {
  it('is empty to start with, and serializes to 5 bytes', () => {
    const s = new QuantileSketch();
    expect(s.count).toBe(0);
    expect(s.quantile(0.5)).toBeNaN();
    const b = s.serialize();
    expect(b.length).toBe(5);
    const back = QuantileSketch.deserialize(b);
    expect(back.count).toBe(0);
    expect(back.serialize()).toEqual(b);
  });

  it('keeps zeros, negatives and exact min and max', () => {
    const s = sketchOf([-5, 0, 0, 3, 1000]);
    expect(s.count).toBe(5);
    expect(s.quantile(0)).toBe(-5);
    expect(s.quantile(1)).toBe(1000);
    expect(s.quantile(0.5)).toBe(0);
    expect(Math.abs(s.quantile(0.25) - -0) <= 0.05).toBe(true);
    expect(s.quantile(-0.1)).toBeNaN();
    expect(s.quantile(1.1)).toBeNaN();
  });

  it('rejects values and weights it cannot hold', () => {
    const s = new QuantileSketch();
    expect(() => s.add(NaN)).toThrow(RangeError);
    expect(() => s.add(Infinity)).toThrow(RangeError);
    expect(() => s.add(1, 0)).toThrow(RangeError);
    expect(() => s.add(1, -1)).toThrow(RangeError);
    expect(() => s.add(1, NaN)).toThrow(RangeError);
    expect(s.count).toBe(0);
  });

  it('answers within 1% relative error of the exact quantile', () => {
    fc.assert(
      fc.property(fc.array(valueArb, { minLength: 1, maxLength: 400 }), (values) => {
        const s = sketchOf(values);
        const sorted = [...values].sort((a, b) => a - b);
        for (const q of QS) {
          const exact = sorted[Math.floor(q * (sorted.length - 1))];
          const got = s.quantile(q);
          expect(Math.abs(got - exact)).toBeLessThanOrEqual(QUANTILE_RELATIVE_ACCURACY * Math.abs(exact) * (1 + 1e-9));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('answers within 1% on a large skewed distribution', () => {
    let seed = 42;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const values = Array.from({ length: 50_000 }, () => Math.exp(rnd() * 12 - 2)); // 0.13 .. 22,000
    const s = sketchOf(values);
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of QS) {
      const exact = sorted[Math.floor(q * (sorted.length - 1))];
      expect(Math.abs(s.quantile(q) - exact) / exact).toBeLessThanOrEqual(0.01);
    }
    expect(s.count).toBe(50_000);
    // compact: a few hundred occupied bins
    expect(s.serialize().length).toBeLessThan(2500);
  });

  it('counts a weight like that many samples', () => {
    const a = sketchOf([5, 7, 9], [10, 1, 4]);
    const b = sketchOf([...Array(10).fill(5), 7, 9, 9, 9, 9]);
    expect(a.count).toBe(15);
    expect(a.serialize()).toEqual(b.serialize());
  });

  it('round-trips exactly through its serialization', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(valueArb, fc.oneof(weightArb, fc.double({ min: 0.001, max: 1000, noNaN: true }))), {
          maxLength: 200,
        }),
        (pairs) => {
          const s = sketchOf(
            pairs.map((p) => p[0]),
            pairs.map((p) => p[1]),
          );
          const b = s.serialize();
          const back = QuantileSketch.deserialize(b);
          expect(back.serialize()).toEqual(b);
          expect(back.count).toBe(s.count);
          expect(back.min).toBe(s.min);
          expect(back.max).toBe(s.max);
          expect(quantilesOf(back)).toEqual(quantilesOf(s));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('merges commutatively and associatively, and merged parts equal one sketch', () => {
    const part = fc.array(fc.tuple(valueArb, weightArb), { maxLength: 80 });
    fc.assert(
      fc.property(part, part, part, (pa, pb, pc) => {
        const mk = (p: [number, number][]) =>
          sketchOf(
            p.map((x) => x[0]),
            p.map((x) => x[1]),
          );
        const [a, b, c] = [mk(pa), mk(pb), mk(pc)];
        const whole = mk([...pa, ...pb, ...pc]).serialize();
        const ab = merged(a, b);
        const ba = merged(b, a);
        expect(ab.serialize()).toEqual(ba.serialize());
        expect(quantilesOf(ab)).toEqual(quantilesOf(ba));
        const left = merged(merged(a, b), c);
        const right = merged(a, merged(b, c));
        const mixed = merged(c, merged(b, a));
        expect(left.serialize()).toEqual(right.serialize());
        expect(mixed.serialize()).toEqual(left.serialize());
        expect(left.serialize()).toEqual(whole);
        // merging deserialized sketches equals merging the originals
        const viaBytes = merged(
          QuantileSketch.deserialize(a.serialize()),
          QuantileSketch.deserialize(b.serialize()),
          QuantileSketch.deserialize(c.serialize()),
        );
        expect(viaBytes.serialize()).toEqual(whole);
        expect(quantilesOf(viaBytes)).toEqual(quantilesOf(left));
        // the inputs are unchanged by being merged
        expect(a.serialize()).toEqual(mk(pa).serialize());
      }),
      { numRuns: 200 },
    );
  });

  it('any split of a stream into two replicas, merged, equals one sketch', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(valueArb, weightArb, fc.boolean()), { maxLength: 300 }), (stream) => {
        const one = new QuantileSketch();
        const r1 = new QuantileSketch();
        const r2 = new QuantileSketch();
        for (const [v, w, side] of stream) {
          one.add(v, w);
          (side ? r1 : r2).add(v, w);
        }
        const m = merged(QuantileSketch.deserialize(r1.serialize()), QuantileSketch.deserialize(r2.serialize()));
        expect(m.serialize()).toEqual(one.serialize());
      }),
      { numRuns: 200 },
    );
  });

  it('keeps negative values through a merge (the library merge drops them)', () => {
    const neg = sketchOf([-1, -2, -3]);
    const pos = sketchOf([1, 2, 3]);
    const m = merged(pos, neg);
    expect(m.count).toBe(6);
    expect(m.quantile(0)).toBe(-3);
    expect(Math.abs(m.quantile(0.2) - -2)).toBeLessThanOrEqual(0.02);
    expect(m.serialize()).toEqual(sketchOf([1, 2, 3, -1, -2, -3]).serialize());
  });

  it('merges a sketch whose top key is 0 (values near 1) into one with lower keys', () => {
    const low = sketchOf([0.01, 0.02]);
    const one = sketchOf([1, 0.995]);
    low.merge(one);
    expect(low.count).toBe(4);
    expect(low.serialize()).toEqual(sketchOf([0.01, 0.02, 1, 0.995]).serialize());
    expect(Math.abs(low.quantile(0.9) - 1)).toBeLessThanOrEqual(0.01);
  });

  it('merges into itself as doubling', () => {
    const s = sketchOf([1, 2, 3]);
    s.merge(s);
    expect(s.serialize()).toEqual(sketchOf([1, 2, 3], [2, 2, 2]).serialize());
  });

  it('rejects corrupt serializations with an Error, never anything worse', () => {
    const good = sketchOf([1, 2, 3, -4, 0]).serialize();
    expect(() => QuantileSketch.deserialize(Buffer.from([]))).toThrow();
    expect(() => QuantileSketch.deserialize(Buffer.from([9, 0, 0, 0, 0]))).toThrow(/version/);
    expect(() => QuantileSketch.deserialize(good.subarray(0, good.length - 1))).toThrow();
    expect(() => QuantileSketch.deserialize(Buffer.concat([good, Buffer.from([0])]))).toThrow();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const s = QuantileSketch.deserialize(Buffer.concat([Buffer.from([1]), bytes]));
          expect(QuantileSketch.deserialize(s.serialize()).serialize()).toEqual(s.serialize());
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

/** Any positive weight, including ones whose sums round (1/rate for rate 0.3). */
const anyWeightArb = fc.oneof(weightArb, fc.double({ min: 0.001, max: 1000, noNaN: true }));

describe('mergeSerializedQuantiles', () => {
  it('gives the bytes of deserialize, merge, serialize, for any weights', () => {
    const part = fc.array(fc.tuple(valueArb, anyWeightArb), { maxLength: 120 });
    fc.assert(
      fc.property(part, part, (pa, pb) => {
        const a = sketchOf(pa.map((x) => x[0]), pa.map((x) => x[1])).serialize();
        const b = sketchOf(pb.map((x) => x[0]), pb.map((x) => x[1])).serialize();
        const viaSketches = merged(QuantileSketch.deserialize(a), QuantileSketch.deserialize(b)).serialize();
        expect(mergeSerializedQuantiles(a, b)).toEqual(viaSketches);
      }),
      { numRuns: 300 },
    );
  });

  it('is commutative, and associative for exactly-summing weights', () => {
    const part = fc.array(fc.tuple(valueArb, weightArb), { maxLength: 60 });
    fc.assert(
      fc.property(part, part, part, (pa, pb, pc) => {
        const [a, b, c] = [pa, pb, pc].map((p) => sketchOf(p.map((x) => x[0]), p.map((x) => x[1])).serialize());
        expect(mergeSerializedQuantiles(a, b)).toEqual(mergeSerializedQuantiles(b, a));
        expect(mergeSerializedQuantiles(mergeSerializedQuantiles(a, b), c)).toEqual(mergeSerializedQuantiles(a, mergeSerializedQuantiles(b, c)));
      }),
      { numRuns: 200 },
    );
  });

  it('gives the same bytes from call to call, whatever the calls before (its arrays are reused and grown), a failed one too', () => {
    // Thousands of bins (past the arrays' first size) on both sides, then small ones, then a corrupt one.
    const wide = (seed: number) => sketchOf(Array.from({ length: 3000 }, (_, i) => (i % 2 ? -1 : 1) * Math.exp(((i * 7919 + seed) % 3000) / 200)));
    const small = (seed: number) => sketchOf([seed, seed + 1, -seed]);
    const sketches = [wide(1), small(2), wide(3), small(4), wide(5)].map((x) => x.serialize());
    const expected = (a: Uint8Array, b: Uint8Array) => merged(QuantileSketch.deserialize(a), QuantileSketch.deserialize(b)).serialize();
    for (const a of sketches) {
      for (const b of sketches) {
        expect(mergeSerializedQuantiles(a, b)).toEqual(expected(a, b));
        expect(() => mergeSerializedQuantiles(a, b.subarray(0, b.length - 3))).toThrow();
      }
    }
  });

  it('rejects a corrupt side with an Error', () => {
    const good = sketchOf([1, 2, -3, 0]).serialize();
    expect(() => mergeSerializedQuantiles(good, good.subarray(0, good.length - 1))).toThrow();
    expect(() => mergeSerializedQuantiles(Buffer.from([1, 2, ...new Array(16).fill(0), 0, 0, 0]), good)).toThrow(/empty flag/);
    expect(() => mergeSerializedQuantiles(good, Buffer.from([9, 0, 0, 0, 0]))).toThrow(/version/);
  });
});

describe('QuantileAccumulator', () => {
  const sameBytesAsSketch = (samples: [number, number][]) => {
    const acc = new QuantileAccumulator();
    const sk = new QuantileSketch();
    for (const [v, w] of samples) {
      acc.add(v, w);
      sk.add(v, w);
    }
    expect(acc.serialize()).toEqual(sk.serialize());
  };

  it('serializes to the bytes of a QuantileSketch fed the same samples, raw and folded into bins any number of times', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(valueArb, anyWeightArb), { maxLength: 400 }), sameBytesAsSketch),
      { numRuns: 300 },
    );
  });

  it('folds thousands of samples into the same bytes as a QuantileSketch, across many folds', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(valueArb, anyWeightArb), { minLength: 33, maxLength: 3000, size: 'max' }), sameBytesAsSketch),
      { numRuns: 100 },
    );
  });

  it('gives the bytes of a QuantileSketch at every point it is serialized between adds, and leaves a new accumulator empty', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(valueArb, anyWeightArb), { minLength: 1, maxLength: 1500 }), fc.integer({ min: 1, max: 90 }), (samples, every) => {
        const acc = new QuantileAccumulator();
        const sk = new QuantileSketch();
        samples.forEach(([v, w], i) => {
          acc.add(v, w);
          sk.add(v, w);
          // A serialize folds what is raw: the bins grow in place or into new arrays, and
          // the adds after it go on from them.
          if (i % every === 0) expect(acc.serialize()).toEqual(sk.serialize());
        });
        expect(acc.serialize()).toEqual(sk.serialize());
        expect(new QuantileAccumulator().serialize()).toEqual(new QuantileSketch().serialize());
      }),
      { numRuns: 150 },
    );
  });

  it('sums the weights of a bin in arrival order, as DDSketch does, when the bin already exists and when it is new', () => {
    // 0.1 + 0.2 + 0.3 differs from 0.1 + (0.2 + 0.3) in floating point.
    const samples: [number, number][] = [];
    for (let i = 0; i < 100; i++) samples.push([5, [0.1, 0.2, 0.3, 0.7, 1.1][i % 5]], [1000 + (i % 7), [0.3, 0.2, 0.1][i % 3]]);
    sameBytesAsSketch(samples);
  });

  it('keeps unit weights without a weight array, then switches on the first other weight', () => {
    const acc = new QuantileAccumulator();
    acc.add(5);
    acc.add(7);
    acc.add(7, 2);
    expect(QuantileSketch.deserialize(acc.serialize()).count).toBe(4);
    expect(acc.serialize()).toEqual(sketchOf([5, 7, 7], [1, 1, 2]).serialize());
  });

  it('refuses what QuantileSketch refuses', () => {
    const acc = new QuantileAccumulator();
    expect(() => acc.add(NaN)).toThrow(RangeError);
    expect(() => acc.add(1, 0)).toThrow(RangeError);
    expect(acc.serialize()).toEqual(new QuantileSketch().serialize());
  });
});
