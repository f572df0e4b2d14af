import { KIND, rollupColumnsOf, type RollupColumns } from '../kit/db/schema.js';
import { DistinctSketch } from '../kit/sketch/distinct.js';
import { QuantileAccumulator } from '../kit/sketch/quantile.js';

/**
 * Gauge values of one bucket that are relative to the stat's value before this flush window:
 * deltas (`+N`/`-N`) that arrived before any absolute value of the stat in the window. Each
 * is `base + p`, p the sum of the window's deltas up to it; the flush learns `base` (the
 * stat's latest stored value) inside its transaction. Everything the bucket needs is affine
 * in the base: count n, sum n*base + Σp, min base + min p, max base + max p,
 * sumsq n*base² + 2*base*Σp + Σp², last base + last p.
 */
export interface RelativeGauge {
  n: number;
  sum: number;
  sumsq: number;
  min: number;
  max: number;
  last: number;
  lastTime: number;
  lastSeq: number;
}

/**
 * One bucket of one stat: the columns of a rollup row, each commutative to merge, and the
 * bucket's sketch while it is still being fed.
 *
 * Per kind: counters and values (add) keep count = Σ weight, sum = Σ value*weight, min, max,
 * sumsq = Σ value²*weight, last value by time (ties: the larger value); values also feed a
 * quantile sketch. Gauges keep the same columns over the values the gauge took (count = how
 * many points), last by time with ties going to the later arrival. Sets keep count = how
 * many points, a distinct sketch of the members, zeros for sum/min/max/sumsq/last value, and
 * the time of the latest point.
 */
export interface Bucket extends RollupColumns {
  /** KIND of the stat; 0 for add() buckets while the aggregator cannot tell a counter from a value. */
  kind: number;
  /** Unix milliseconds of the point behind lastValue; -Infinity while a gauge bucket holds only relative values. */
  lastTime: number;
  /** Arrival number of the point behind lastValue (gauges: breaks ties in time). */
  lastSeq: number;
  quantiles: QuantileAccumulator | null;
  distinct: DistinctSketch | null;
  relative: RelativeGauge | null;
  /**
   * Set by the flush, which writes the bucket itself as its rollup row (a copy per bucket,
   * 11 fields of which 7 boxed doubles, is ~220 bytes: ~22 MB more at the peak of a flush of
   * 100,000 stats): the sketch's format (1
   * quantile, 2 distinct; 0 none) and bytes, once serialized (the sketch is dropped then).
   */
  format: 0 | 1 | 2;
  sketch: Buffer | null;
}

/**
 * A caller's note of a stat's current bucket (statsd keeps one per live stat), so a sample of
 * a stat seen before in this window finds its bucket without a map lookup. `bucketGen` tells
 * which window the note is from; only the aggregator writes either field. A note for another
 * stat or minute is not used, only replaced.
 */
export interface BucketCache {
  /** The bucket's slot in the aggregator's columns; -1 for none. */
  bucketSlot: number;
  bucketGen: number;
}

/** A gauge's current value within one window: known, or an offset from the stored value. */
interface GaugeHead {
  /** An absolute value has arrived in this window: `value` is the gauge. Else `value` is p. */
  anchored: boolean;
  value: number;
  /** Latest time of the points that set the head. */
  time: number;
}

/** The doubles of one bucket, at slot * NUM in `num`. */
const COUNT = 0;
const SUM = 1;
const MIN = 2;
const MAX = 3;
const SUMSQ = 4;
const LAST_VALUE = 5;
const LAST_TIME = 6;
const LAST_SEQ = 7;
const NUM = 8;
const FIRST_CAPACITY = 1024;

/**
 * In-memory rollups per (stat, minute). Samples are added on the request path; the flusher
 * takes everything at once with take(), which hands the window's buckets (and columns) over
 * as Bucket objects and starts the next window in fresh columns, so adding never waits for a
 * flush.
 *
 * A window's buckets live in columns (struct of arrays), not as objects: a slot's doubles in
 * one Float64Array, its stat id, minute and kind in typed arrays, its sketch and relative
 * gauge values in plain arrays. As objects (a heap snapshot at the end of bench:ingest's TCP
 * phase, 100,000 live stats) 147,000 buckets took 18.5 MB and their boxed doubles (each of
 * the 7 double fields is one) ~12 MB more, two windows of them at once during a flush (the
 * one being written, the one filling); here a slot is 97 bytes of columns (counted, not
 * measured). bench:ingest's peak RSS over TCP: 320-346 -> 263-272 MB with both this and the
 * plain-array quantile accumulators. The
 * buckets of one stat in a window (more than one when its points span minutes) are chained
 * through `next`, the one touched last first, from `latest` (stat id → slot).
 *
 * add() serves counters and values alike (its signature is what the listeners call), so a
 * bucket created by add() feeds a quantile sketch unless the stat is known to be a counter:
 * `kinds` holds what is known (the flusher looks up the kinds of new stat ids in `stats`
 * and records them here, and noteKind() lets a caller tell it up front). A counter's bucket
 * made before its kind was known carries a sketch the flusher drops.
 *
 * Gauges (addGauge) follow Etsy statsd: an absolute value sets the gauge, a delta moves the
 * current value, in arrival order. The current value lives here only within one flush
 * window: a delta that arrives before any absolute value of its stat in the window is kept
 * relative to the stat's stored value, which the flush reads (under a lock on the stat) in
 * its own transaction. So deltas from any number of replicas add up exactly once, like
 * INCRBY (see flusher.ts and the README's "Metric kinds and rollups").
 */
export class Aggregator {
  private capacity = FIRST_CAPACITY;
  /** Buckets in this window: slots 0..used-1. */
  private used = 0;
  private num = new Float64Array(FIRST_CAPACITY * NUM);
  private statIds = new Uint32Array(FIRST_CAPACITY);
  /** Unix seconds of each bucket's minute. */
  private minutes = new Float64Array(FIRST_CAPACITY);
  private kindOf = new Uint8Array(FIRST_CAPACITY);
  /** The next bucket of the same stat in this window, or -1. */
  private next = new Int32Array(FIRST_CAPACITY);
  private sketches: (QuantileAccumulator | DistinctSketch | null)[] = [];
  private relatives: (RelativeGauge | null)[] = [];
  /** Each stat's bucket touched last, by stat id: the head of its chain. */
  private latest = new Map<number, number>();
  private heads = new Map<number, GaugeHead>();
  private samples = 0;
  private seq = 0;
  /** Which window this is: take() starts the next, so older BucketCache notes are stale. */
  private gen = 0;
  /** stat id → KIND, for the stats whose kind is known. */
  readonly kinds = new Map<number, number>();

  get size(): number {
    return this.used;
  }

  get pendingSamples(): number {
    return this.samples;
  }

  /** Tells the aggregator a stat's kind (optional: the flusher learns unknown ones). */
  noteKind(statId: number, kind: number): void {
    this.kinds.set(statId, kind);
  }

  private slotFor(statId: number, timeMs: number, kind: number, cache: BucketCache | undefined): number {
    const minute = Math.floor(timeMs / 60_000) * 60;
    if (cache !== undefined) {
      const c = cache.bucketSlot;
      if (cache.bucketGen === this.gen && c >= 0 && this.minutes[c] === minute && this.statIds[c] === statId) return c;
    }
    const slot = this.slotOf(statId, minute, kind);
    if (cache !== undefined) {
      cache.bucketSlot = slot;
      cache.bucketGen = this.gen;
    }
    return slot;
  }

  private slotOf(statId: number, minute: number, kind: number): number {
    const head = this.latest.get(statId);
    if (head !== undefined) {
      if (this.minutes[head] === minute) return head;
      // Another minute of the stat: walk its chain, and move what it finds to the front.
      const next = this.next;
      for (let prev = head, s = next[head]; s >= 0; prev = s, s = next[s]) {
        if (this.minutes[s] === minute) {
          next[prev] = next[s];
          next[s] = head;
          this.latest.set(statId, s);
          return s;
        }
      }
    }
    if (kind === 0) {
      const known = this.kinds.get(statId);
      if (known !== undefined) kind = known;
    }
    if (this.used === this.capacity) this.resize(this.capacity * 2);
    const s = this.used++;
    this.statIds[s] = statId;
    this.minutes[s] = minute;
    this.kindOf[s] = kind;
    this.next[s] = head ?? -1;
    const o = s * NUM;
    const num = this.num;
    num[o + COUNT] = 0;
    num[o + SUM] = 0;
    num[o + MIN] = Infinity;
    num[o + MAX] = -Infinity;
    num[o + SUMSQ] = 0;
    num[o + LAST_VALUE] = 0;
    num[o + LAST_TIME] = -Infinity;
    num[o + LAST_SEQ] = 0;
    this.sketches[s] = kind === KIND.counter || kind === KIND.gauge ? null : kind === KIND.set ? new DistinctSketch() : new QuantileAccumulator();
    this.relatives[s] = null;
    this.latest.set(statId, s);
    return s;
  }

  /** Moves the columns to arrays of `capacity` slots, keeping the slots in use. */
  private resize(capacity: number): void {
    const keep = <T extends Float64Array | Uint32Array | Uint8Array | Int32Array>(fresh: T, old: T, per = 1): T => {
      fresh.set(old.subarray(0, this.used * per));
      return fresh;
    };
    this.num = keep(new Float64Array(capacity * NUM), this.num, NUM);
    this.statIds = keep(new Uint32Array(capacity), this.statIds);
    this.minutes = keep(new Float64Array(capacity), this.minutes);
    this.kindOf = keep(new Uint8Array(capacity), this.kindOf);
    this.next = keep(new Int32Array(capacity), this.next);
    this.capacity = capacity;
  }

  /**
   * A sample of `value`, seen at `timeMs`. For counters `value` is the increment and
   * `weight` the number of events it stands for (1/sample rate); for values `weight` is
   * how many samples this one counts as (1/sample rate of a timer).
   */
  add(statId: number, timeMs: number, value: number, weight = 1, cache?: BucketCache): void {
    if (!Number.isFinite(value)) throw new RangeError(`value must be finite, got ${value}`);
    if (!(weight > 0 && weight < Infinity)) throw new RangeError(`weight must be positive, got ${weight}`);
    const s = this.slotFor(statId, timeMs, 0, cache);
    const num = this.num;
    const o = s * NUM;
    this.samples++;
    num[o + COUNT] += weight;
    num[o + SUM] += value * weight;
    if (value < num[o + MIN]) num[o + MIN] = value;
    if (value > num[o + MAX]) num[o + MAX] = value;
    num[o + SUMSQ] += value * value * weight;
    const lastTime = num[o + LAST_TIME];
    if (timeMs > lastTime || (timeMs === lastTime && value > num[o + LAST_VALUE])) {
      num[o + LAST_TIME] = timeMs;
      num[o + LAST_VALUE] = value;
    }
    const q = this.sketches[s];
    if (q !== null && this.kindOf[s] !== KIND.set) (q as QuantileAccumulator).add(value, weight);
  }

  /**
   * A gauge point: `value` is the new value, or with `isDelta` the change to apply to the
   * current one (statsd `+N`/`-N`), in arrival order.
   */
  addGauge(statId: number, timeMs: number, value: number, isDelta: boolean, cache?: BucketCache): void {
    if (!Number.isFinite(value)) throw new RangeError(`value must be finite, got ${value}`);
    const s = this.slotFor(statId, timeMs, KIND.gauge, cache);
    this.samples++;
    const seq = ++this.seq;
    let head = this.heads.get(statId);
    if (!head) {
      head = { anchored: false, value: 0, time: -Infinity };
      this.heads.set(statId, head);
    }
    let known: boolean;
    let x: number;
    if (!isDelta) {
      known = true;
      x = value;
      // An absolute value becomes the current one unless it is older than what set the
      // head (a backfilled point: it lands in its own bucket and changes nothing after it).
      if (timeMs >= head.time) {
        head.anchored = true;
        head.value = value;
        head.time = timeMs;
      }
    } else {
      head.value += value;
      if (timeMs > head.time) head.time = timeMs;
      known = head.anchored;
      x = head.value;
    }
    if (known) {
      const num = this.num;
      const o = s * NUM;
      num[o + COUNT]++;
      num[o + SUM] += x;
      if (x < num[o + MIN]) num[o + MIN] = x;
      if (x > num[o + MAX]) num[o + MAX] = x;
      num[o + SUMSQ] += x * x;
      if (timeMs >= num[o + LAST_TIME]) {
        num[o + LAST_TIME] = timeMs;
        num[o + LAST_VALUE] = x;
        num[o + LAST_SEQ] = seq;
      }
      return;
    }
    const r = this.relatives[s];
    if (!r) {
      this.relatives[s] = { n: 1, sum: x, sumsq: x * x, min: x, max: x, last: x, lastTime: timeMs, lastSeq: seq };
      return;
    }
    r.n++;
    r.sum += x;
    r.sumsq += x * x;
    if (x < r.min) r.min = x;
    if (x > r.max) r.max = x;
    if (timeMs >= r.lastTime) {
      r.lastTime = timeMs;
      r.last = x;
      r.lastSeq = seq;
    }
  }

  /** A set point: `member` is counted once per bucket however often it comes. */
  addSet(statId: number, timeMs: number, member: string, cache?: BucketCache): void {
    if (!Number.isFinite(timeMs)) throw new RangeError(`time must be finite, got ${timeMs}`);
    const s = this.slotFor(statId, timeMs, KIND.set, cache);
    const num = this.num;
    const o = s * NUM;
    this.samples++;
    num[o + COUNT]++;
    if (timeMs > num[o + LAST_TIME]) num[o + LAST_TIME] = timeMs;
    num[o + MIN] = num[o + MAX] = 0;
    (this.sketches[s] as DistinctSketch).add(member);
  }

  /**
   * Everything added since the last take(), as Bucket objects in the order the buckets were
   * made; gauge heads start over (the flush writes them). The buckets read the window's own
   * columns (TakenBucket), handed over, not copied, and the next window starts in fresh ones:
   * zeroed by the system and in memory only as far as that window fills them, while the
   * taken ones go back with the flush's buckets (with ingest's MALLOC_MMAP_THRESHOLD_, see
   * deploy/services.ts; glibc's arena would otherwise keep them). Copying kept both the copy
   * and the window's columns, as far as its largest window ever reached, in memory.
   */
  take(): Bucket[] {
    const n = this.used;
    const out = new Array<Bucket>(n);
    const sketches = this.sketches;
    const taken: TakenColumns = { num: this.num, statIds: this.statIds, minutes: this.minutes };
    for (let s = 0; s < n; s++) {
      const sk = sketches[s];
      out[s] = new TakenBucket(
        taken,
        s,
        this.kindOf[s],
        sk instanceof QuantileAccumulator ? sk : null,
        sk instanceof DistinctSketch ? sk : null,
        this.relatives[s],
      );
    }
    this.sketches = [];
    this.relatives = [];
    this.used = 0;
    // Fresh columns (used is 0: nothing is kept); a window far larger than the usual one gives its room back.
    this.resize(this.capacity > FIRST_CAPACITY && n < this.capacity / 8 ? this.capacity / 2 : this.capacity);
    this.latest = new Map();
    this.heads = new Map();
    this.samples = 0;
    this.gen++;
    return out;
  }
}

/** A taken window's numbers: each bucket's doubles at slot * NUM, its stat id and minute. */
interface TakenColumns {
  num: Float64Array;
  statIds: Uint32Array;
  minutes: Float64Array;
}

/**
 * A bucket handed over by take(): its numbers stay in the taken window's columns, read and
 * written through accessors, so a flush of 100,000 buckets holds 100,000 small objects and
 * three typed arrays, not an object with nine boxed doubles per bucket (~200 bytes each,
 * promoted to the old generation for as long as the flush runs). Object spread does not copy
 * accessors: copy one with bucketCopy().
 */
class TakenBucket implements Bucket {
  format: 0 | 1 | 2 = 0;
  sketch: Buffer | null = null;
  private readonly o: number;
  constructor(
    private readonly t: TakenColumns,
    private readonly s: number,
    public kind: number,
    public quantiles: QuantileAccumulator | null,
    public distinct: DistinctSketch | null,
    public relative: RelativeGauge | null,
  ) {
    this.o = s * NUM;
  }
  get statId(): number {
    return this.t.statIds[this.s];
  }
  set statId(v: number) {
    this.t.statIds[this.s] = v;
  }
  get bucket(): number {
    return this.t.minutes[this.s];
  }
  set bucket(v: number) {
    this.t.minutes[this.s] = v;
  }
  get count(): number {
    return this.t.num[this.o + COUNT];
  }
  set count(v: number) {
    this.t.num[this.o + COUNT] = v;
  }
  get sum(): number {
    return this.t.num[this.o + SUM];
  }
  set sum(v: number) {
    this.t.num[this.o + SUM] = v;
  }
  get min(): number {
    return this.t.num[this.o + MIN];
  }
  set min(v: number) {
    this.t.num[this.o + MIN] = v;
  }
  get max(): number {
    return this.t.num[this.o + MAX];
  }
  set max(v: number) {
    this.t.num[this.o + MAX] = v;
  }
  get sumsq(): number {
    return this.t.num[this.o + SUMSQ];
  }
  set sumsq(v: number) {
    this.t.num[this.o + SUMSQ] = v;
  }
  get lastValue(): number {
    return this.t.num[this.o + LAST_VALUE];
  }
  set lastValue(v: number) {
    this.t.num[this.o + LAST_VALUE] = v;
  }
  get lastTime(): number {
    return this.t.num[this.o + LAST_TIME];
  }
  set lastTime(v: number) {
    this.t.num[this.o + LAST_TIME] = v;
  }
  get lastSeq(): number {
    return this.t.num[this.o + LAST_SEQ];
  }
  set lastSeq(v: number) {
    this.t.num[this.o + LAST_SEQ] = v;
  }
}

/** A plain copy of a bucket (a TakenBucket's accessors too), its relative values copied as well. */
export function bucketCopy(b: Bucket): Bucket {
  return {
    ...rollupColumnsOf(b),
    kind: b.kind,
    lastSeq: b.lastSeq,
    quantiles: b.quantiles,
    distinct: b.distinct,
    relative: b.relative ? { ...b.relative } : null,
    format: b.format,
    sketch: b.sketch,
  };
}

/** Merges gauge bucket `from` into `into` (same stat): sums add, last by (time, arrival). */
export function mergeGaugeInto(into: Bucket, from: Bucket): void {
  if (from.count > 0) {
    into.count += from.count;
    into.sum += from.sum;
    into.sumsq += from.sumsq;
    if (from.min < into.min) into.min = from.min;
    if (from.max > into.max) into.max = from.max;
    if (from.lastTime > into.lastTime || (from.lastTime === into.lastTime && from.lastSeq > into.lastSeq)) {
      into.lastTime = from.lastTime;
      into.lastValue = from.lastValue;
      into.lastSeq = from.lastSeq;
    }
  }
  const fr = from.relative;
  if (!fr) return;
  const r = into.relative;
  if (!r) {
    into.relative = { ...fr };
    return;
  }
  r.n += fr.n;
  r.sum += fr.sum;
  r.sumsq += fr.sumsq;
  if (fr.min < r.min) r.min = fr.min;
  if (fr.max > r.max) r.max = fr.max;
  if (fr.lastTime > r.lastTime || (fr.lastTime === r.lastTime && fr.lastSeq > r.lastSeq)) {
    r.lastTime = fr.lastTime;
    r.last = fr.last;
    r.lastSeq = fr.lastSeq;
  }
}

/**
 * Gauge buckets of one stat with their relative values made absolute, given the stat's
 * stored value `base` at `baseTime` (unix ms; -Infinity when the stat has none, base 0).
 *
 * The window these buckets come from applied its deltas to that value, so it happened after
 * it: any point of the window stamped at or before baseTime (another replica's clock ahead,
 * or its later points committed first) is moved to baseTime + 1 ms, with its bucket. That
 * keeps the result the latest value, so the next window's deltas build on it and no
 * replica's deltas are lost.
 */
export function resolveGauges(buckets: readonly Bucket[], base: number, baseTime: number): Bucket[] {
  const after = baseTime + 1;
  const byBucket = new Map<number, Bucket>();
  for (const src of buckets) {
    const b = bucketCopy(src);
    if (Number.isFinite(after)) {
      if ((b.bucket + 60) * 1000 <= after) b.bucket = Math.floor(after / 60_000) * 60;
      if (b.bucket * 1000 <= after && after < (b.bucket + 60) * 1000) {
        if (b.count > 0 && b.lastTime < after) b.lastTime = after;
        if (b.relative && b.relative.lastTime < after) b.relative.lastTime = after;
      }
    }
    const have = byBucket.get(b.bucket);
    if (have) mergeGaugeInto(have, b);
    else byBucket.set(b.bucket, b);
  }
  const out: Bucket[] = [];
  for (const b of byBucket.values()) {
    const r = b.relative;
    if (r) {
      b.count += r.n;
      b.sum += r.n * base + r.sum;
      b.sumsq += r.n * base * base + 2 * base * r.sum + r.sumsq;
      if (base + r.min < b.min) b.min = base + r.min;
      if (base + r.max > b.max) b.max = base + r.max;
      if (r.lastTime > b.lastTime || (r.lastTime === b.lastTime && r.lastSeq > b.lastSeq)) {
        b.lastTime = r.lastTime;
        b.lastValue = base + r.last;
        b.lastSeq = r.lastSeq;
      }
      b.relative = null;
    }
    out.push(b);
  }
  return out;
}
