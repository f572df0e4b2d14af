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
    const p = parseSketch(buf, parsedA);
    const s = new QuantileSketch();
    s.sk.zeroCount = p.zero;
    for (let i = 0; i < p.pos.n; i++) s.sk.store.add(p.pos.keys[i], p.pos.counts[i]);
    for (let i = 0; i < p.neg.n; i++) s.sk.negativeStore.add(p.neg.keys[i], p.neg.counts[i]);
    if (p.notEmpty) {
      s.minValue = p.min;
      s.maxValue = p.max;
    }
    s.dirty = true;
    s.normalize();
    if ((s.sk.count > 0) !== p.notEmpty) throw new Error('quantile sketch: empty flag disagrees');
    return s;
  }
}

/** One store of a serialized sketch: n bins, keys ascending, counts never 0. */
interface Bins {
  n: number;
  keys: ArrayLike<number>;
  counts: ArrayLike<number>;
}

interface ParsedSketch {
  notEmpty: boolean;
  min: number;
  max: number;
  zero: number;
  pos: Bins;
  neg: Bins;
}

// The parser and writer below keep their cursor in module state rather than in closures:
// they run for every stored sketch a flush merges into, and closures created per call
// (wrapped by the transpiler's name helper) cost more than the parsing itself. For the same
// reason parsed bins go into scratch arrays reused by every call (a merge made twelve typed
// arrays, each with its own off-heap store; flush.ts folding 35,000 day sketches spent 41% of
// its time in the collector, and 12 s of node CPU against 9.2 s with the scratch arrays):
// what parseSketch and mergeBins return is valid until the next call, and every caller
// copies what it keeps.
let pBuf: Uint8Array = new Uint8Array(0);
let pPos = 0;
/** Doubles are read through these (little-endian, as DataView.getFloat64(_, true)). */
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bins in arrays reused from call to call, grown as needed. */
class ScratchBins implements Bins {
  n = 0;
  keys = new Int32Array(256);
  counts = new Float64Array(256);
  reserve(n: number): void {
    if (this.keys.length >= n) return;
    const size = Math.max(n, this.keys.length * 2);
    this.keys = new Int32Array(size);
    this.counts = new Float64Array(size);
  }
}

class ScratchSketch implements ParsedSketch {
  notEmpty = false;
  min = Infinity;
  max = -Infinity;
  zero = 0;
  readonly pos = new ScratchBins();
  readonly neg = new ScratchBins();
}

/** Two sketches parsed at once (a merge's inputs), and a merge's output bins. */
const parsedA = new ScratchSketch();
const parsedB = new ScratchSketch();
const mergedPos = new ScratchBins();
const mergedNeg = new ScratchBins();

function pTruncated(): Error {
  return new Error('sketch: truncated');
}

/** Unsigned LEB128, at most 8 bytes (as Reader.varint). */
function pVarint(): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 8; i++) {
    if (pPos >= pBuf.length) throw pTruncated();
    const b = pBuf[pPos++];
    v += (b & 0x7f) * mul;
    if (b < 0x80) return v;
    mul *= 0x80;
  }
  throw new Error('sketch: varint too long');
}

function pF64(): number {
  if (pPos + 8 > pBuf.length) throw pTruncated();
  if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) f64Bytes[i] = pBuf[pPos + i];
  else for (let i = 0; i < 8; i++) f64Bytes[7 - i] = pBuf[pPos + i];
  pPos += 8;
  return f64[0];
}

/**
 * Reads and checks a serialized sketch into `into` (the one parser: deserialize and the
 * byte-level merge use it); valid until `into` is parsed into again.
 */
function parseSketch(buf: Uint8Array, into: ScratchSketch): ParsedSketch {
  pBuf = buf;
  pPos = 0;
  const len = buf.length;
  if (len < 2) throw pTruncated();
  const version = buf[pPos++];
  if (version !== FORMAT_VERSION) throw new Error(`quantile sketch: unknown format version ${version}`);
  const flags = buf[pPos++];
  if (flags & ~(FLAG_FLOAT_COUNTS | FLAG_NOT_EMPTY)) throw new Error('quantile sketch: unknown flags');
  const floatCounts = (flags & FLAG_FLOAT_COUNTS) !== 0;
  const notEmpty = (flags & FLAG_NOT_EMPTY) !== 0;
  let min = Infinity;
  let max = -Infinity;
  if (notEmpty) {
    min = pF64();
    max = pF64();
    if (!(min <= max)) throw new Error('quantile sketch: bad min/max');
  }
  const zero = floatCounts ? pF64() : pVarint();
  if (!(zero >= 0 && zero < Infinity)) throw new Error('quantile sketch: bad count');
  parseBins(floatCounts, into.pos);
  parseBins(floatCounts, into.neg);
  if (pPos !== len) throw new Error('quantile sketch: trailing bytes');
  into.notEmpty = notEmpty;
  into.min = min;
  into.max = max;
  into.zero = zero;
  return into;
}

function parseBins(floatCounts: boolean, into: ScratchBins): void {
  into.n = 0;
  const n = pVarint();
  // Each bin takes at least 2 bytes: a count that cannot fit is a corrupt length.
  if (n > pBuf.length - pPos) throw pTruncated();
  into.reserve(n);
  const keys = into.keys;
  const counts = into.counts;
  let key = 0;
  for (let i = 0; i < n; i++) {
    if (i === 0) {
      const z = pVarint();
      key = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    } else {
      const d = pVarint();
      if (d < 1) throw new Error('quantile sketch: keys out of order');
      key += d;
    }
    if (Math.abs(key) > MAX_ABS_KEY) throw new Error('quantile sketch: key out of range');
    const c = floatCounts ? pF64() : pVarint();
    if (!(c >= 0 && c < Infinity)) throw new Error('quantile sketch: bad count');
    if (c === 0) throw new Error('quantile sketch: empty bin');
    keys[i] = key;
    counts[i] = c;
  }
  into.n = n;
}

let wOut: Buffer = Buffer.alloc(0);
let wPos = 0;

function wVarint(v: number): void {
  while (v >= 0x80) {
    wOut[wPos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  wOut[wPos++] = v;
}

function wBins(b: Bins, floatCounts: boolean): void {
  wVarint(b.n);
  const keys = b.keys;
  const counts = b.counts;
  for (let i = 0; i < b.n; i++) {
    const k = keys[i];
    if (i === 0) wVarint(k >= 0 ? 2 * k : -2 * k - 1);
    else wVarint(k - keys[i - 1]);
    if (floatCounts) wPos = wOut.writeDoubleLE(counts[i], wPos);
    else wVarint(counts[i]);
  }
}

function binsAreCounts(b: Bins): boolean {
  for (let i = 0; i < b.n; i++) if (!isCount(b.counts[i])) return false;
  return true;
}

function binsTotal(b: Bins): number {
  let t = 0;
  for (let i = 0; i < b.n; i++) t += b.counts[i];
  return t;
}

/** The canonical serialization of the given state (what QuantileSketch.serialize writes for it). */
function writeSketch(min: number, max: number, zero: number, pos: Bins, neg: Bins): Buffer {
  const floatCounts = !isCount(zero) || !binsAreCounts(pos) || !binsAreCounts(neg);
  const empty = zero + binsTotal(pos) + binsTotal(neg) === 0;
  // Upper bound: header, then per bin a key of at most 3 bytes (|key| <= 100,000) and a count.
  const size = 2 + 16 + 9 + 2 * 3 + (pos.n + neg.n) * (3 + 9);
  if (wOut.length < size) wOut = Buffer.allocUnsafe(Math.max(size, 4096));
  wPos = 0;
  wOut[wPos++] = FORMAT_VERSION;
  wOut[wPos++] = (floatCounts ? FLAG_FLOAT_COUNTS : 0) | (empty ? 0 : FLAG_NOT_EMPTY);
  if (!empty) {
    wOut.writeDoubleLE(min, wPos);
    wOut.writeDoubleLE(max, wPos + 8);
    wPos += 16;
  }
  if (floatCounts) wPos = wOut.writeDoubleLE(zero, wPos);
  else wVarint(zero);
  wBins(pos, floatCounts);
  wBins(neg, floatCounts);
  // A copy of the shared scratch buffer, sized to fit.
  return Buffer.from(wOut.subarray(0, wPos));
}

/** The union of two stores' bins, counts of a key added, into `out` (reused: see parseSketch). */
function mergeBins(a: Bins, b: Bins, out: ScratchBins): Bins {
  out.reserve(a.n + b.n);
  const keys = out.keys;
  const counts = out.counts;
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.n || j < b.n) {
    if (j >= b.n || (i < a.n && a.keys[i] < b.keys[j])) {
      keys[n] = a.keys[i];
      counts[n++] = a.counts[i++];
    } else if (i >= a.n || b.keys[j] < a.keys[i]) {
      keys[n] = b.keys[j];
      counts[n++] = b.counts[j++];
    } else {
      keys[n] = a.keys[i];
      counts[n++] = a.counts[i++] + b.counts[j++];
    }
  }
  out.n = n;
  return out;
}

/**
 * The merge of two serialized sketches, serialized: the same bytes as
 * `deserialize(a).merge(deserialize(b))` then `serialize()`, without building either sketch
 * (a merge-join of their bins, ~50x cheaper: this is what a flush does to every stored
 * sketch it adds to). Throws on a corrupt input, as deserialize does.
 */
export function mergeSerializedQuantiles(a: Uint8Array, b: Uint8Array): Buffer {
  const pa = parseSketch(a, parsedA);
  const pb = parseSketch(b, parsedB);
  if (pa.zero + binsTotal(pa.pos) + binsTotal(pa.neg) > 0 !== pa.notEmpty) throw new Error('quantile sketch: empty flag disagrees');
  if (pb.zero + binsTotal(pb.pos) + binsTotal(pb.neg) > 0 !== pb.notEmpty) throw new Error('quantile sketch: empty flag disagrees');
  return writeSketch(Math.min(pa.min, pb.min), Math.max(pa.max, pb.max), pa.zero + pb.zero, mergeBins(pa.pos, pb.pos, mergedPos), mergeBins(pa.neg, pb.neg, mergedNeg));
}

/** The key mapping every sketch shares (relative accuracy 1%). */
const MAPPING = new DDSketch({ relativeAccuracy: QUANTILE_RELATIVE_ACCURACY }).mapping;
/** Samples an accumulator keeps raw before it folds them into its bins. */
const RAW_SAMPLES = 32;
/** An accumulator's bins: plain arrays that it owns, with room past n (see foldInto). */
interface OwnBins extends Bins {
  keys: number[];
  counts: number[];
}

const NO_BINS: OwnBins = { n: 0, keys: [], counts: [] };

// A fold's scratch (a fold never takes more than RAW_SAMPLES samples): each sample's key and
// store, the samples in key order, and the keys a fold adds to a store with their counts.
const foldKeys = new Int32Array(RAW_SAMPLES);
const foldSide = new Int8Array(RAW_SAMPLES);
const foldOrder = new Int32Array(RAW_SAMPLES);
const newKeys = new Int32Array(RAW_SAMPLES);
const newCounts = new Float64Array(RAW_SAMPLES);

/**
 * Adds the samples of store `which` (foldOrder's order) to `have`. A sample whose bin exists
 * adds its weight to it where it is; new bins are merged in from the end when the arrays
 * have room, else into new ones with a little room (an eighth, and up to 4 more: a sketch
 * gains bins fold after fold at first, and tens of thousands of accumulators are live at
 * once, so not the half again of a growing array, nor room a one-bin timer never uses).
 * The sums are the ones DDSketch makes: a bin's count plus each weight in arrival order.
 * scripts/bench/timers.ts (log-normal values, ~150 bins): 146-156 ns a sample and 0.6 s of
 * collector pauses a round, against 466-668 ns and 4.3-6.7 s when each fold sorted a fresh
 * index array and copied both stores into new arrays.
 */
function foldInto(have: OwnBins, which: number, n: number, weights: number[] | null): OwnBins {
  const keys = foldKeys;
  const side = foldSide;
  const order = foldOrder;
  // Bins that exist take their weights in place; new ones are gathered, in key order.
  let hk = have.keys;
  let hc = have.counts;
  let h = 0;
  let added = 0;
  for (let o = 0; o < n; o++) {
    const i = order[o];
    if (side[i] !== which) continue;
    const k = keys[i];
    const w = weights ? weights[i] : 1;
    while (h < have.n && hk[h] < k) h++;
    if (h < have.n && hk[h] === k) hc[h] += w;
    else if (added > 0 && newKeys[added - 1] === k) newCounts[added - 1] += w;
    else {
      newKeys[added] = k;
      newCounts[added++] = w;
    }
  }
  if (added === 0) return have;
  const total = have.n + added;
  let out = have;
  let a = have.n - 1;
  if (have === NO_BINS || total > hk.length) {
    const room = total + (total >> 3) + Math.min(total, 4);
    const ok: number[] = new Array(room);
    const oc: number[] = new Array(room);
    for (let i = 0; i <= a; i++) {
      ok[i] = hk[i];
      oc[i] = hc[i];
    }
    hk = ok;
    hc = oc;
    out = { n: total, keys: ok, counts: oc };
  }
  // Merge from the end, so every entry moves at most once.
  let b = added - 1;
  for (let o = total - 1; b >= 0; o--) {
    if (a >= 0 && hk[a] > newKeys[b]) {
      hk[o] = hk[a];
      hc[o] = hc[a--];
    } else {
      hk[o] = newKeys[b];
      hc[o] = newCounts[b--];
    }
  }
  out.n = total;
  return out;
}

/**
 * What the aggregator keeps per (value stat, minute): the latest samples raw (up to
 * RAW_SAMPLES), and what came before them as sparse bins. Each time the raw samples fill up
 * they are folded into the bins. Everything is in plain arrays, not typed arrays: tens of
 * thousands of accumulators are live at once, and a typed array costs its own object, its
 * ArrayBuffer's and (past 64 bytes) an off-heap backing store with its bookkeeping, ~250
 * bytes before its first element; a JS array of doubles costs 32 bytes and its elements.
 * Measured in a heap snapshot of bench:ingest over TCP (27,500 accumulators live): 23 MB
 * with typed arrays, the largest single part of the live heap after the buckets.
 * `serialize()` gives the bytes a QuantileSketch fed the same samples in the same order
 * would: each bin sums its weights in arrival order, so bit for bit, whatever the weights.
 */
export class QuantileAccumulator {
  /** Raw samples: the first n entries (the array is reused across folds, so it can be longer). */
  private values: number[] | null = null;
  /** null while every raw weight is 1. */
  private weights: number[] | null = null;
  private n = 0;
  private pos: OwnBins = NO_BINS;
  private neg: OwnBins = NO_BINS;
  private zero = 0;
  private min = Infinity;
  private max = -Infinity;

  /** Adds `value` with `weight` (> 0); throws RangeError as QuantileSketch.add does. */
  add(value: number, weight = 1): void {
    if (!Number.isFinite(value)) throw new RangeError(`value must be finite, got ${value}`);
    if (!(weight > 0 && weight < Infinity)) throw new RangeError(`weight must be positive, got ${weight}`);
    let values = this.values;
    if (values === null) values = this.values = [];
    else if (this.n === RAW_SAMPLES) this.fold();
    const n = this.n;
    if (weight !== 1 && this.weights === null) this.weights = new Array<number>(n).fill(1);
    // In place once the array has grown (after a fold), appended before.
    if (n < values.length) values[n] = value;
    else values.push(value);
    const w = this.weights;
    if (w !== null) {
      if (n < w.length) w[n] = weight;
      else w.push(weight);
    }
    this.n = n + 1;
  }

  /** Folds the raw samples into the bins, as DDSketch.accept would have added them one by one. */
  private fold(): void {
    const values = this.values!;
    const weights = this.weights;
    const n = this.n;
    // Each sample's store and key, as DDSketch.accept decides them.
    const keys = foldKeys;
    const side = foldSide;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
      if (v > MAPPING.minPossible) {
        side[i] = 1;
        keys[i] = MAPPING.key(v);
      } else if (v < -MAPPING.minPossible) {
        side[i] = -1;
        keys[i] = MAPPING.key(-v);
      } else {
        side[i] = 0;
        keys[i] = 0;
        this.zero += weights ? weights[i] : 1;
      }
    }
    // Stable order by key (insertion sort of at most RAW_SAMPLES), so each bin sums its
    // weights in arrival order.
    const order = foldOrder;
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      let j = i;
      while (j > 0 && keys[order[j - 1]] > k) {
        order[j] = order[j - 1];
        j--;
      }
      order[j] = i;
    }
    this.pos = foldInto(this.pos, 1, n, weights);
    this.neg = foldInto(this.neg, -1, n, weights);
    this.n = 0;
    if (weights) weights.fill(1);
  }

  serialize(): Buffer {
    if (this.n > 0) this.fold();
    return writeSketch(this.min, this.max, this.zero, this.pos, this.neg);
  }
}

function isCount(c: number): boolean {
  return Number.isInteger(c) && c >= 0 && c <= Number.MAX_SAFE_INTEGER;
}
