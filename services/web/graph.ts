import type { Client } from '@connectrpc/connect';
import { ChartFormat, GraphService, Resolution, type Series, type StatSeries } from '../../gen/osprey/v1/graphing_pb.js';
import { OspreyError } from '../kit/errors.js';
import type { StatRow } from './store/stats.js';

export type GraphClient = Client<typeof GraphService>;

const RESOLUTION_NAME: Record<number, string> = { [Resolution.RESOLUTION_UNSPECIFIED]: 'auto', [Resolution.RESOLUTION_1M]: '1m', [Resolution.RESOLUTION_1H]: '1h', [Resolution.RESOLUTION_1D]: '1d' };

export interface SummaryJson {
  min: number | null;
  max: number | null;
  mean: number | null;
  total: number;
  stddev: number | null;
  count: number;
  samples: number;
}

/** One stat's series as JSON: NaN (no data) becomes null. */
export interface SeriesJson {
  id: number;
  name: string;
  kind: StatRow['kind'];
  /** Unix seconds. */
  times: number[];
  values: (number | null)[];
  /** The comparison on the same times, when asked for. */
  comparison: (number | null)[] | null;
  p50: (number | null)[] | null;
  p90: (number | null)[] | null;
  p99: (number | null)[] | null;
  summary: SummaryJson | null;
}

export interface SeriesAnswer {
  from: number;
  to: number;
  stepSec: number;
  resolution: string;
  compareOffsetSec: number;
  stats: SeriesJson[];
}

export interface RangeQuery {
  from: number;
  to: number;
  stepSec?: number;
  compareOffsetSec?: number;
  percentiles?: boolean;
  maxPoints?: number;
}

const num = (v: number): number | null => (Number.isFinite(v) ? v : null);
const nums = (a: readonly number[]): (number | null)[] => a.map(num);

/** The caller must have checked the stats are the account's; graphing checks again. */
export async function querySeries(graph: GraphClient, accountId: number, stats: StatRow[], q: RangeQuery): Promise<SeriesAnswer> {
  if (stats.length === 0) throw new OspreyError('invalid', 'no stats asked for');
  const res = await graph.query({
    accountId,
    statIds: stats.map((s) => s.id),
    from: q.from,
    to: q.to,
    stepSec: q.stepSec ?? 0,
    maxPoints: q.maxPoints ?? 0,
    compareOffsetSec: q.compareOffsetSec ?? 0,
    percentiles: q.percentiles ?? false,
  });
  const byId = new Map(stats.map((s) => [s.id, s]));
  return {
    from: q.from,
    to: q.to,
    stepSec: res.stepSec,
    resolution: RESOLUTION_NAME[res.resolution] ?? 'auto',
    compareOffsetSec: q.compareOffsetSec ?? 0,
    stats: res.stats.map((s) => seriesJson(s, byId)),
  };
}

function seriesJson(s: StatSeries, byId: Map<number, StatRow>): SeriesJson {
  const main = s.series as Series;
  const stat = byId.get(main.statId);
  const pct = (a: readonly number[]) => (a.length > 0 ? nums(a) : null);
  const sum = s.summary;
  return {
    id: main.statId,
    name: stat?.name ?? main.name,
    kind: stat?.kind ?? 'counter',
    times: [...main.times],
    values: nums(main.values),
    comparison: s.comparison && s.comparison.values.length > 0 ? nums(s.comparison.values) : null,
    p50: pct(main.p50),
    p90: pct(main.p90),
    p99: pct(main.p99),
    summary: sum
      ? { min: num(sum.min), max: num(sum.max), mean: num(sum.mean), total: sum.total, stddev: num(sum.stddev), count: sum.count, samples: sum.samples }
      : null,
  };
}

export interface RenderQuery {
  from: number;
  to: number;
  compareOffsetSec?: number;
  style?: string;
  width?: number;
  height?: number;
  title?: string;
  format: 'svg' | 'png';
}

export async function renderChart(graph: GraphClient, accountId: number, statIds: number[], q: RenderQuery): Promise<{ contentType: string; data: Uint8Array }> {
  const res = await graph.render({
    accountId,
    statIds,
    from: q.from,
    to: q.to,
    compareOffsetSec: q.compareOffsetSec ?? 0,
    style: q.style ?? 'standard',
    width: q.width ?? 0,
    height: q.height ?? 0,
    title: q.title ?? '',
    format: q.format === 'png' ? ChartFormat.PNG : ChartFormat.SVG,
  });
  return { contentType: res.contentType || (q.format === 'png' ? 'image/png' : 'image/svg+xml'), data: res.data };
}
