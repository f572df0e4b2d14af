import { describe, expect, it } from 'vitest';
import { lastCompletePeriod, periodLabel } from './periods.js';
import { formatChange, formatNumber } from './report.js';
import { sparklinePng, sparklineSvg } from './sparkline.js';
import { signUnsubscribeToken, verifyUnsubscribeToken } from './unsubscribe.js';
import { pngSize } from '../kit/testing/png.js';

describe('lastCompletePeriod', () => {
  const wed = Date.UTC(2026, 0, 7, 9, 30); // Wednesday 7 January 2026
  it('is yesterday for daily reports', () => {
    const r = lastCompletePeriod('daily', wed);
    expect([r.startSec, r.endSec, r.prevStartSec].map((s) => new Date(s * 1000).toISOString().slice(0, 10))).toEqual(['2026-01-06', '2026-01-07', '2026-01-05']);
    expect(periodLabel(r)).toBe('Tuesday 6 January 2026');
  });
  it('is the last full ISO week for weekly reports', () => {
    const r = lastCompletePeriod('weekly', wed);
    expect([r.startSec, r.endSec, r.prevStartSec].map((s) => new Date(s * 1000).toISOString().slice(0, 10))).toEqual(['2025-12-29', '2026-01-05', '2025-12-22']);
    expect(lastCompletePeriod('weekly', Date.UTC(2026, 0, 5, 0, 0)).endSec).toBe(Date.UTC(2026, 0, 5) / 1000);
    expect(periodLabel(r)).toBe('week of 29 December 2025');
  });
});

describe('unsubscribe tokens', () => {
  it('verify for the id they were signed for, and not with another secret or when altered', () => {
    const t = signUnsubscribeToken('secret-one-0123456789', 42);
    expect(verifyUnsubscribeToken('secret-one-0123456789', t)).toBe(42);
    expect(verifyUnsubscribeToken('secret-two-0123456789', t)).toBeUndefined();
    expect(verifyUnsubscribeToken('secret-one-0123456789', t.replace(/^42/, '43'))).toBeUndefined();
    expect(verifyUnsubscribeToken('secret-one-0123456789', 'garbage')).toBeUndefined();
  });
});

describe('sparkline', () => {
  it('renders a real PNG of the requested size', () => {
    const png = sparklinePng([1, 3, 2, undefined, 5, 4]);
    expect(pngSize(png)).toEqual({ width: 160, height: 40 });
    expect(png.length).toBeGreaterThan(200);
  });
  it('breaks the line at gaps', () => {
    const svg = sparklineSvg([1, 2, undefined, 3, 4]);
    expect(svg.match(/<polyline/g)?.length).toBe(2);
  });
});

describe('formatting', () => {
  it('keeps numbers short', () => {
    expect([formatNumber(12), formatNumber(12345), formatNumber(2.5), formatNumber(undefined)]).toEqual(['12', '12.3k', '2.5', '–']);
    expect([formatChange(12.345), formatChange(-3), formatChange(undefined)]).toEqual(['+12.3%', '-3.0%', 'new']);
  });
});
