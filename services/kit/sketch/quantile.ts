/**
 * Mergeable quantile sketch for `value` rollups: DDSketch (@datadog/sketches-js) with 1%
 * relative accuracy, over positive values, negative values and zeros.
 *
 * What we take from the library and what we do not, and why:
 * - We use its logarithmic key mapping and its dense stores for `add` and rank lookups.
 * - We do NOT use its `merge`: it merges only the positive store (negative values are lost),
 *   and its store merge mishandles a source whose highest key is 0 (`secondKey || key`).
 *   Merging here re-adds the other sketch's non-empty bins one by one.
 * - We do NOT use `toProto`/`fromProto`: the protobuf writes every dense bin as an 8-byte
 *   double (padding included) and drops min and max. The format below writes only non-empty
 *   bins, as varints when every count is an integer (the common case).
 * - Counts are recomputed from the bins in key order before any read, so the answer depends
 *   only on the bins, never on the order in which samples or merges arrived.
 *
 * Exactness: merge is commutative bit for bit (per-bin a+b = b+a). It is associative bit for
 * bit when the weights are integers or other exactly-summing doubles (statsd rates 1, 0.5,
 * 0.25, 0.1, 0.01 give weights 1, 2, 4, 10, 100); odd rates like 0.3 give fractional weights
 * whose sums may differ in the last bit between merge orders.
 *
 * Serialized format, version 1 (all multi-byte numbers little endian):
 *   u8      version = 1
 *   u8      flags: bit 0 = counts are float64 (else unsigned LEB128 varints),
 *                  bit 1 = not empty (min and max follow)
 *   [f64 min, f64 max]                  when not empty
 *   count   zero count
 *   store   positive values, then
 *   store   negative values (keyed by |value|)
 *   store := varint n, then n times: key, count
 *            key: the first as a zigzag varint, each next one as varint(key - previous key)
 *            count: varint or f64 per the flag; never 0
 * An empty sketch is 5 bytes; a typical timer distribution ~2-3 bytes per occupied bin.
 */
import { DDSketch } from '@datadog/sketches-js';
import { Reader, Writer } from './bytes.js';

export const QUANTILE_RELATIVE_ACCURACY = 0.01;
const FORMAT_VERSION = 1;
const FLAG_FLOAT_COUNTS = 1;
const FLAG_NOT_EMPTY = 2;
/** Keys beyond this cannot come from a finite double at 1% accuracy (|key| < ~36,000). */
const MAX_ABS_KEY = 100_000;

type Store = DDSketch['store'];

function storeBins(store: Store, visit: (key: number, count: number) => void): void {
  const bins = store.bins;
  for (let i = 0; i < bins.length; i++) {
    const c = bins[i];
    if (c !== 0) visit(i + store.offset, c);
  }
}

function storeTotal(store: Store): number {
  let t = 0;
  const bins = store.bins;
  for (let i = 0; i < bins.length; i++) t += bins[i];
  return t;
}

export class QuantileSketch {
  private readonly sk = new DDSketch({ relativeAccuracy: QUANTILE_RELATIVE_ACCURACY });
  private minValue = Infinity;
  private maxValue = -Infinity;
  private dirty = false;

  /** Adds `value` with `weight` (> 0; 1/rate for a sampled timer). */
  add(value: number, weight = 1): void {
    if (!Number.isFinite(value)) throw new RangeError(`value must be finite, got ${value}`);
    if (!(weight > 0 && weight < Infinity)) throw new RangeError(`weight must be positive, got ${weight}`);
    this.sk.accept(value, weight);
    if (value < this.minValue) this.minValue = value;
    if (value > this.maxValue) this.maxValue = value;
    this.dirty = true;
  }

  /** Adds everything in `other` to this sketch (`other` is unchanged). */
  merge(other: QuantileSketch): void {
    if (other === this) {
      const copy = QuantileSketch.deserialize(this.serialize());
      return this.merge(copy);
    }
    const o = other.sk;
    storeBins(o.store, (k, c) => this.sk.store.add(k, c));
    storeBins(o.negativeStore, (k, c) => this.sk.negativeStore.add(k, c));
    this.sk.zeroCount += o.zeroCount;
    if (other.minValue < this.minValue) this.minValue = other.minValue;
    if (other.maxValue > this.maxValue) this.maxValue = other.maxValue;
    this.dirty = true;
  }

  /** Total weight added. */
  get count(): number {
    this.normalize();
    return this.sk.count;
  }

  /** Exact smallest value added (Infinity when empty). */
  get min(): number {
    return this.minValue;
  }

  /** Exact largest value added (-Infinity when empty). */
  get max(): number {
    return this.maxValue;
  }

  /**
   * The value at quantile `q` in [0, 1], within 1% of the exact one (the value of rank
   * floor(q * (count - 1)) in sorted order, counting weights). NaN when empty or q is out of
   * range. q = 0 and q = 1 give the exact min and max.
   */
  quantile(q: number): number {
    if (!(q >= 0 && q <= 1)) return NaN;
    this.normalize();
    if (this.sk.count === 0) return NaN;
    if (q === 0) return this.minValue;
    if (q === 1) return this.maxValue;
    const v = this.sk.getValueAtQuantile(q);
    return v < this.minValue ? this.minValue : v > this.maxValue ? this.maxValue : v;
  }

  /** Counts from the bins in key order: the same bins always give the same counts. */
  private normalize(): void {
    if (!this.dirty) return;
    const sk = this.sk;
    sk.store.count = storeTotal(sk.store);
    sk.negativeStore.count = storeTotal(sk.negativeStore);
    sk.count = sk.negativeStore.count + sk.zeroCount + sk.store.count;
    this.dirty = false;
  }

  serialize(): Buffer {
    const sk = this.sk;
    this.normalize();
    const empty = sk.count === 0;
    let floatCounts = !isCount(sk.zeroCount);
    let bins = 0;
    const check = (_k: number, c: number) => {
      bins++;
      if (!isCount(c)) floatCounts = true;
    };
    storeBins(sk.store, check);
    storeBins(sk.negativeStore, check);
    const w = new Writer(2 + (empty ? 0 : 16) + 9 + 20 + bins * 19);
    w.u8(FORMAT_VERSION);
    w.u8((floatCounts ? FLAG_FLOAT_COUNTS : 0) | (empty ? 0 : FLAG_NOT_EMPTY));
    if (!empty) {
      w.f64(this.minValue);
      w.f64(this.maxValue);
    }
    const count = (c: number) => (floatCounts ? w.f64(c) : w.varint(c));
    count(sk.zeroCount);
    for (const store of [sk.store, sk.negativeStore]) {
      let n = 0;
      storeBins(store, () => n++);
      w.varint(n);
      let prev: number | null = null;
      storeBins(store, (k, c) => {
        if (prev === null) w.varint(k >= 0 ? 2 * k : -2 * k - 1);
        else w.varint(k - prev);
        prev = k;
        count(c);
      });
    }
    return w.done();
  }

  static deserialize(buf: Uint8Array): QuantileSketch {
    const r = new Reader(buf);
    const version = r.u8();
    if (version !== FORMAT_VERSION) throw new Error(`quantile sketch: unknown format version ${version}`);
    const flags = r.u8();
    if (flags & ~(FLAG_FLOAT_COUNTS | FLAG_NOT_EMPTY)) throw new Error('quantile sketch: unknown flags');
    const s = new QuantileSketch();
    const floatCounts = (flags & FLAG_FLOAT_COUNTS) !== 0;
    const count = () => {
      const c = floatCounts ? r.f64() : r.varint();
      if (!(c >= 0 && c < Infinity)) throw new Error('quantile sketch: bad count');
      return c;
    };
    if (flags & FLAG_NOT_EMPTY) {
      s.minValue = r.f64();
      s.maxValue = r.f64();
      if (!(s.minValue <= s.maxValue)) throw new Error('quantile sketch: bad min/max');
    }
    s.sk.zeroCount = count();
    for (const store of [s.sk.store, s.sk.negativeStore]) {
      const n = r.varint();
      let key = 0;
      for (let i = 0; i < n; i++) {
        if (i === 0) {
          const z = r.varint();
          key = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
        } else {
          const d = r.varint();
          if (d < 1) throw new Error('quantile sketch: keys out of order');
          key += d;
        }
        if (Math.abs(key) > MAX_ABS_KEY) throw new Error('quantile sketch: key out of range');
        const c = count();
        if (c === 0) throw new Error('quantile sketch: empty bin');
        store.add(key, c);
      }
    }
    if (!r.atEnd()) throw new Error('quantile sketch: trailing bytes');
    s.dirty = true;
    s.normalize();
    if ((s.sk.count > 0) !== ((flags & FLAG_NOT_EMPTY) !== 0)) throw new Error('quantile sketch: empty flag disagrees');
    return s;
  }
}

function isCount(c: number): boolean {
  return Number.isInteger(c) && c >= 0 && c <= Number.MAX_SAFE_INTEGER;
}
