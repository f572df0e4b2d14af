import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DISTINCT_EXACT_LIMIT, DistinctSketch, hashMember, mergeSerializedDistinct } from './distinct.js';

function sketchOf(members: Iterable<string>): DistinctSketch {
  const s = new DistinctSketch();
  for (const m of members) s.add(m);
  return s;
}

function merged(...parts: DistinctSketch[]): DistinctSketch {
  const s = new DistinctSketch();
  for (const p of parts) s.merge(p);
  return s;
}

const range = (from: number, to: number, prefix = 'user-') =>
  Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`);

describe('hashMember', () => {
  it('gives 53-bit integers, stable across runs (they are stored)', () => {
    expect(hashMember('')).toBe(3338908027751811);
    expect(hashMember('a')).toBe(7929297801672961);
    expect(hashMember('user-1')).toBe(hashMember('user-1'));
    fc.assert(
      fc.property(fc.string(), (m) => {
        const h = hashMember(m);
        return Number.isInteger(h) && h >= 0 && h < 2 ** 53;
      }),
    );
  });

  it('spreads similar members over the registers', () => {
    const buckets = new Uint32Array(16384);
    for (const m of range(0, 163_840)) buckets[hashMember(m) % 16384]++;
    // chi-square with 16,383 degrees of freedom: mean 16,383, sd 181; allow 5 sd
    let chi2 = 0;
    for (const b of buckets) chi2 += (b - 10) ** 2 / 10;
    expect(Math.abs(chi2 - 16_383)).toBeLessThan(5 * 181);
    // and the high bits, which give the ranks
    const high = new Uint32Array(64);
    for (const m of range(0, 64_000)) high[Math.floor(hashMember(m) / 2 ** 47)]++;
    let chi2h = 0;
    for (const b of high) chi2h += (b - 1000) ** 2 / 1000;
    expect(chi2h).toBeLessThan(63 + 5 * Math.sqrt(2 * 63));
  });
});

describe('DistinctSketch', () => {
  it('counts exactly while small', () => {
    const s = new DistinctSketch();
    expect(s.count).toBe(0);
    for (let round = 0; round < 3; round++) for (const m of range(0, DISTINCT_EXACT_LIMIT)) s.add(m);
    expect(s.isExact).toBe(true);
    expect(s.count).toBe(DISTINCT_EXACT_LIMIT);
    expect(s.serialize().length).toBe(2 + 2 + 7 * DISTINCT_EXACT_LIMIT);
    s.add('one more');
    expect(s.isExact).toBe(false);
    expect(Math.abs(s.count - (DISTINCT_EXACT_LIMIT + 1))).toBeLessThanOrEqual(2);
  });

  it('treats any string as a member, including empty and non-ASCII', () => {
    const s = sketchOf(['', ' ', 'ü', 'ü', '😀', 'a:b', '1', '1.0']);
    expect(s.count).toBe(7);
  });

  it('estimates within 3% at 1k, 10k and 100k distinct members', () => {
    const s = new DistinctSketch();
    let n = 0;
    for (const target of [1_000, 10_000, 100_000]) {
      for (; n < target; n++) {
        s.add(`member-${n}`);
        if (n % 3 === 0) s.add(`member-${n >> 1}`); // repeats change nothing
      }
      expect(Math.abs(s.count - target) / target).toBeLessThan(0.03);
    }
    // a second, differently shaped population
    const t = sketchOf(range(0, 100_000, '192.168.').map((x, i) => `${x}.${i % 251}`));
    expect(Math.abs(t.count - 100_000) / 100_000).toBeLessThan(0.03);
  });

  it('merges commutatively and associatively, across the exact limit', () => {
    const members = fc.array(fc.string({ maxLength: 4 }), { maxLength: 250 });
    fc.assert(
      fc.property(members, members, members, (ma, mb, mc) => {
        const [a, b, c] = [sketchOf(ma), sketchOf(mb), sketchOf(mc)];
        const whole = sketchOf([...ma, ...mb, ...mc]);
        const ab = merged(a, b).serialize();
        expect(ab).toEqual(merged(b, a).serialize());
        const left = merged(merged(a, b), c);
        const right = merged(a, merged(b, c));
        expect(left.serialize()).toEqual(right.serialize());
        expect(merged(c, a, b).serialize()).toEqual(left.serialize());
        expect(left.serialize()).toEqual(whole.serialize());
        expect(left.count).toBe(whole.count);
        if (whole.isExact) expect(whole.count).toBe(new Set([...ma, ...mb, ...mc]).size);
        // merging deserialized sketches equals merging the originals
        const viaBytes = merged(
          DistinctSketch.deserialize(a.serialize()),
          DistinctSketch.deserialize(b.serialize()),
          DistinctSketch.deserialize(c.serialize()),
        );
        expect(viaBytes.serialize()).toEqual(whole.serialize());
      }),
      { numRuns: 200 },
    );
  });

  it('merges exact into HLL and HLL into exact the same way', () => {
    const big = sketchOf(range(0, 5_000));
    const small = sketchOf(range(4_990, 5_010));
    const whole = sketchOf(range(0, 5_010)).serialize();
    expect(merged(big, small).serialize()).toEqual(whole);
    expect(merged(small, big).serialize()).toEqual(whole);
    const s2 = sketchOf(range(4_990, 5_010));
    s2.merge(big);
    expect(s2.serialize()).toEqual(whole);
    expect(big.count).toBe(sketchOf(range(0, 5_000)).count); // inputs unchanged
  });

  it('any split of a stream into two replicas, merged, equals one sketch', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2_000 }), fc.boolean()), { maxLength: 1_500 }),
        (stream) => {
          const one = new DistinctSketch();
          const r1 = new DistinctSketch();
          const r2 = new DistinctSketch();
          for (const [m, side] of stream) {
            one.add(`m${m}`);
            (side ? r1 : r2).add(`m${m}`);
          }
          const m = merged(DistinctSketch.deserialize(r1.serialize()), DistinctSketch.deserialize(r2.serialize()));
          expect(m.serialize()).toEqual(one.serialize());
        },
      ),
      { numRuns: 100 },
    );
  });

  it('round-trips exactly in each of its forms, and picks the shorter HLL form', () => {
    const exact = sketchOf(range(0, 100));
    const sparse = sketchOf(range(0, 1_000));
    const dense = sketchOf(range(0, 50_000));
    const sizes: number[] = [];
    for (const [s, mode] of [
      [exact, 0],
      [sparse, 1],
      [dense, 2],
    ] as const) {
      const b = s.serialize();
      sizes.push(b.length);
      expect(b[1]).toBe(mode);
      const back = DistinctSketch.deserialize(b);
      expect(back.serialize()).toEqual(b);
      expect(back.count).toBe(s.count);
    }
    expect(sizes[0]).toBe(2 + 1 + 700);
    expect(sizes[1]).toBeLessThan(2_500);
    expect(sizes[2]).toBe(3 + 12_288);
  });

  it('rejects corrupt serializations with an Error', () => {
    const good = sketchOf(range(0, 1_000)).serialize();
    expect(() => DistinctSketch.deserialize(Buffer.from([]))).toThrow();
    expect(() => DistinctSketch.deserialize(Buffer.from([2, 0, 0]))).toThrow(/version/);
    expect(() => DistinctSketch.deserialize(Buffer.from([1, 7]))).toThrow(/mode/);
    expect(() => DistinctSketch.deserialize(good.subarray(0, good.length - 1))).toThrow();
    expect(() => DistinctSketch.deserialize(Buffer.concat([good, Buffer.from([0])]))).toThrow();
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2), fc.uint8Array({ maxLength: 64 }), (mode, bytes) => {
        try {
          const s = DistinctSketch.deserialize(Buffer.concat([Buffer.from([1, mode]), bytes]));
          expect(DistinctSketch.deserialize(s.serialize()).count).toBe(s.count);
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('mergeSerializedDistinct', () => {
  const viaSketches = (a: Buffer, b: Buffer) => merged(DistinctSketch.deserialize(a), DistinctSketch.deserialize(b)).serialize();

  it('gives the bytes of deserialize, merge, serialize, in every pair of forms', () => {
    // sizes around the exact limit and the sparse/dense switch
    const size = fc.constantFrom(0, 1, 100, DISTINCT_EXACT_LIMIT - 10, DISTINCT_EXACT_LIMIT, 400, 3_000, 20_000);
    fc.assert(
      fc.property(size, size, fc.integer({ min: 0, max: 30_000 }), (na, nb, offset) => {
        const a = sketchOf(range(0, na)).serialize();
        const b = sketchOf(range(offset, offset + nb)).serialize();
        const m = mergeSerializedDistinct(a, b);
        expect(m).toEqual(viaSketches(a, b));
        expect(mergeSerializedDistinct(b, a)).toEqual(m);
        expect(m).toEqual(sketchOf([...range(0, na), ...range(offset, offset + nb)]).serialize());
      }),
      { numRuns: 60 },
    );
  });

  it('merges small random sets exactly as the sketches do', () => {
    const members = fc.array(fc.string({ maxLength: 3 }), { maxLength: 300 });
    fc.assert(
      fc.property(members, members, (ma, mb) => {
        const a = sketchOf(ma).serialize();
        const b = sketchOf(mb).serialize();
        expect(mergeSerializedDistinct(a, b)).toEqual(viaSketches(a, b));
      }),
      { numRuns: 200 },
    );
  });

  it('rejects a corrupt side with an Error', () => {
    const good = sketchOf(range(0, 10)).serialize();
    expect(() => mergeSerializedDistinct(good, Buffer.from([1, 7]))).toThrow(/mode/);
    expect(() => mergeSerializedDistinct(good.subarray(0, 5), good)).toThrow();
  });
});
