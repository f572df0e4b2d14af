/** One bucket of one stat: the columns of a rollup row, all commutative to merge. */
export interface Bucket {
  statId: number;
  bucket: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  sumsq: number;
  lastValue: number;
  lastTime: number;
}

export function mergeInto(into: Bucket, from: Bucket): void {
  into.count += from.count;
  into.sum += from.sum;
  if (from.min < into.min) into.min = from.min;
  if (from.max > into.max) into.max = from.max;
  into.sumsq += from.sumsq;
  if (from.lastTime > into.lastTime || (from.lastTime === into.lastTime && from.lastValue > into.lastValue)) {
    into.lastTime = from.lastTime;
    into.lastValue = from.lastValue;
  }
}

/**
 * In-memory rollups per (stat, minute). Samples are added on the request path; the
 * flusher takes everything at once with take(), which swaps in a fresh map so adding
 * never waits for a flush.
 */
export class Aggregator {
  private buckets = new Map<number, Bucket>();
  private samples = 0;

  get size(): number {
    return this.buckets.size;
  }

  get pendingSamples(): number {
    return this.samples;
  }

  /**
   * A sample of `value`, seen at `timeMs`. For counters `value` is the increment and
   * `weight` the number of events it stands for (1/sample rate); for values `weight` is
   * how many samples this one counts as.
   */
  add(statId: number, timeMs: number, value: number, weight = 1): void {
    const bucket = Math.floor(timeMs / 60_000) * 60;
    const key = statId * 1e10 + bucket; // exact in a double: ids < 2^32, buckets < 2^33
    const b = this.buckets.get(key);
    this.samples++;
    if (b) {
      b.count += weight;
      b.sum += value * weight;
      if (value < b.min) b.min = value;
      if (value > b.max) b.max = value;
      b.sumsq += value * value * weight;
      if (timeMs > b.lastTime || (timeMs === b.lastTime && value > b.lastValue)) {
        b.lastTime = timeMs;
        b.lastValue = value;
      }
      return;
    }
    this.buckets.set(key, {
      statId,
      bucket,
      count: weight,
      sum: value * weight,
      min: value,
      max: value,
      sumsq: value * value * weight,
      lastValue: value,
      lastTime: timeMs,
    });
  }

  /** Everything added since the last take(). */
  take(): Bucket[] {
    const out = [...this.buckets.values()];
    this.buckets = new Map();
    this.samples = 0;
    return out;
  }
}

/** Rolls minute buckets up into buckets of `seconds` (3600, 86400). */
export function rollUp(minutes: Bucket[], seconds: number): Bucket[] {
  const out = new Map<number, Bucket>();
  for (const m of minutes) {
    const bucket = Math.floor(m.bucket / seconds) * seconds;
    const key = m.statId * 1e10 + bucket;
    const b = out.get(key);
    if (b) mergeInto(b, m);
    else out.set(key, { ...m, bucket });
  }
  return [...out.values()];
}
