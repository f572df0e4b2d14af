import { describe, expect, it } from 'vitest';
import { AccountRateLimiter } from './rate-limit.js';

function limiter(pointsPerSec: number, burst: number) {
  let now = 1_000_000;
  const l = new AccountRateLimiter({ pointsPerSec, burst, now: () => now });
  return { l, advance: (ms: number) => (now += ms) };
}

describe('AccountRateLimiter', () => {
  it('lets an idle account send its burst at once, then its rate, and says how long to wait', () => {
    const { l, advance } = limiter(10, 20);
    expect(l.take(1, 20)).toBe(0);
    expect(l.take(1, 1)).toBe(1);
    advance(100); // one point back
    expect(l.take(1, 1)).toBe(0);
    expect(l.take(1, 1)).toBe(1);
    advance(1000);
    expect(l.take(1, 10)).toBe(0);
    // 15 points with none left: 1.5 s at 10/s, rounded up.
    expect(l.take(1, 15)).toBe(2);
    expect(l.refused).toBe(3);
  });

  it('keeps accounts apart', () => {
    const { l } = limiter(1, 2);
    expect(l.take(1, 2)).toBe(0);
    expect(l.take(1, 1)).toBeGreaterThan(0);
    expect(l.take(2, 2)).toBe(0);
  });

  it('refuses a request whole: a refused request takes nothing', () => {
    const { l, advance } = limiter(10, 10);
    expect(l.take(1, 8)).toBe(0);
    expect(l.take(1, 5)).toBe(1);
    advance(300); // 2 + 3 = 5 points
    expect(l.take(1, 5)).toBe(0);
  });

  it('never refuses forever a request larger than the burst: it passes on a full bucket and leaves a debt', () => {
    const { l, advance } = limiter(100, 50);
    expect(l.take(1, 120)).toBe(0);
    // 70 points of debt plus 1: 0.71 s.
    expect(l.take(1, 1)).toBe(1);
    advance(1200); // +120 → 50 (capped)
    expect(l.take(1, 120)).toBe(0);
  });

  it('is off at 0 points per second', () => {
    const { l } = limiter(0, 1);
    expect(l.enabled).toBe(false);
    for (let i = 0; i < 1000; i++) expect(l.take(1, 1000)).toBe(0);
  });

  it('does not refill when the clock goes backwards', () => {
    const { l, advance } = limiter(10, 10);
    expect(l.take(1, 10)).toBe(0);
    advance(-5000);
    expect(l.take(1, 1)).toBe(1);
  });
});
