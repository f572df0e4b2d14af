import { MetricKind, type Point } from '../../../../gen/osprey/v1/ingest_pb.js';

export const MAX_STAT_NAME = 255;

/** Why a point cannot be taken, or undefined when it can. */
export function validatePoint(p: Point, nowMs: number, maxAgeSec: number, maxFutureSec: number): string | undefined {
  if (p.accountId === 0) return 'account_id is required';
  if (p.stat.length === 0) return 'stat name is empty';
  if (p.stat.length > MAX_STAT_NAME) return `stat name is longer than ${MAX_STAT_NAME} characters`;
  // Sets have members, not numbers, so they come through statsd only; gauges come as
  // absolute values (a delta would need the caller to say so).
  if (p.kind !== MetricKind.COUNTER && p.kind !== MetricKind.VALUE && p.kind !== MetricKind.GAUGE) {
    return `kind must be counter, value or gauge, got ${MetricKind[p.kind] ?? p.kind}`;
  }
  if (!Number.isFinite(p.number)) return `number must be finite, got ${p.number}`;
  if (p.unixTime !== 0) {
    const nowSec = nowMs / 1000;
    if (p.unixTime > nowSec + maxFutureSec) return `t=${p.unixTime} is more than ${maxFutureSec} seconds in the future`;
    if (p.unixTime < nowSec - maxAgeSec) return `t=${p.unixTime} is older than ${Math.round(maxAgeSec / 86400)} days`;
  }
  return undefined;
}
