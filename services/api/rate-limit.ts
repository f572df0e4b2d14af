/**
 * Per-account token buckets, in points: an account may send `pointsPerSec` points a second
 * on average and up to `burst` at once. Kept in memory per api replica: a shared counter in
 * MySQL would cost a round trip per request on the hot path, and an account's traffic is
 * spread over the replicas anyway, so the service as a whole allows up to the limit times
 * the number of api replicas. A request is taken whole or refused whole (never half a batch).
 */
export interface RateLimitOptions {
  /** Sustained points per second per account; 0 turns the limit off. */
  pointsPerSec: number;
  /** Points an idle account may send at once. */
  burst: number;
  /** Milliseconds (Date.now); tests pass a clock they move by hand. */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets kept before full (idle) ones are dropped; an idle account's bucket is full anyway. */
const MAX_BUCKETS = 100_000;

export class AccountRateLimiter {
  private readonly buckets = new Map<number, Bucket>();
  private readonly perMs: number;
  private readonly burst: number;
  private readonly now: () => number;
  /** Requests refused, for metrics. */
  refused = 0;

  constructor(readonly opts: RateLimitOptions) {
    this.perMs = opts.pointsPerSec / 1000;
    this.burst = Math.max(1, opts.burst);
    this.now = opts.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.perMs > 0;
  }

  /**
   * Takes `points` from the account's bucket: 0 when they may be sent now, else the whole
   * seconds to wait before trying again (for Retry-After). A request larger than the burst
   * is let through when the bucket is full and leaves it in debt, so it is never refused
   * forever.
   */
  take(accountId: number, points: number): number {
    if (this.perMs <= 0) return 0;
    const now = this.now();
    let b = this.buckets.get(accountId);
    if (b === undefined) {
      if (this.buckets.size >= MAX_BUCKETS) this.sweep(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(accountId, b);
    } else if (now > b.at) {
      b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
      b.at = now;
    }
    const needed = points < this.burst ? points : this.burst;
    if (b.tokens >= needed) {
      b.tokens -= points;
      return 0;
    }
    this.refused++;
    return Math.max(1, Math.ceil((needed - b.tokens) / this.perMs / 1000));
  }

  private sweep(now: number): void {
    for (const [id, b] of this.buckets) if (b.tokens + (now - b.at) * this.perMs >= this.burst) this.buckets.delete(id);
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.clear();
  }
}
