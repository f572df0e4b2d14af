// proto <-> domain for GraphService. Gaps and unknown numbers travel as NaN (the proto's
// documented convention); the domain uses null.
import { create } from '@bufbuild/protobuf';
import {
  Resolution as ProtoResolution,
  SeriesSchema,
  StatSeriesSchema,
  SummarySchema,
  type QueryResponse,
  type Series as ProtoSeries,
  type StatSeries,
  type Summary as ProtoSummary,
} from '../../gen/osprey/v1/graphing_pb.js';
import { MetricKind as ProtoKind } from '../../gen/osprey/v1/ingest_pb.js';
import { OspreyError } from '../kit/errors.js';
import { KIND } from '../kit/db/schema.js';
import type { QueryResult, StatResult } from './query.js';
import type { Resolution } from './resolution.js';
import type { Series, Summary } from './series.js';
import type { StatInfo } from './rollups.js';

const RESOLUTION_FROM_PROTO: Record<number, Resolution | 'auto'> = {
  [ProtoResolution.RESOLUTION_UNSPECIFIED]: 'auto',
  [ProtoResolution.RESOLUTION_1M]: '1m',
  [ProtoResolution.RESOLUTION_1H]: '1h',
  [ProtoResolution.RESOLUTION_1D]: '1d',
};

const RESOLUTION_TO_PROTO: Record<Resolution, ProtoResolution> = {
  '1m': ProtoResolution.RESOLUTION_1M,
  '1h': ProtoResolution.RESOLUTION_1H,
  '1d': ProtoResolution.RESOLUTION_1D,
};

export function resolutionFromProto(r: ProtoResolution): Resolution | 'auto' {
  const out = RESOLUTION_FROM_PROTO[r];
  if (!out) throw new OspreyError('invalid', `unknown resolution ${r}`);
  return out;
}

export function resolutionToProto(r: Resolution): ProtoResolution {
  return RESOLUTION_TO_PROTO[r];
}

/** The stored kind numbers are the proto's MetricKind numbers (schema.ts says so). */
export function kindToProto(kind: StatInfo['kind']): ProtoKind {
  return KIND[kind] as number as ProtoKind;
}

function numbers(a: readonly (number | null)[] | undefined): number[] {
  if (!a) return [];
  const out = new Array<number>(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ?? NaN;
  return out;
}

export function seriesToProto(stat: StatInfo, s: Series): ProtoSeries {
  return create(SeriesSchema, {
    statId: stat.id,
    name: stat.name,
    kind: kindToProto(stat.kind),
    times: s.times,
    values: numbers(s.values),
    p50: numbers(s.p50),
    p90: numbers(s.p90),
    p99: numbers(s.p99),
  });
}

export function summaryToProto(s: Summary): ProtoSummary {
  return create(SummarySchema, {
    min: s.min ?? NaN,
    max: s.max ?? NaN,
    mean: s.mean ?? NaN,
    total: s.total ?? NaN,
    stddev: s.stddev ?? NaN,
    count: s.count,
    samples: s.samples,
  });
}

export function statResultToProto(r: StatResult): StatSeries {
  return create(StatSeriesSchema, {
    series: seriesToProto(r.stat, r.series),
    comparison: r.comparison ? seriesToProto(r.stat, r.comparison) : undefined,
    summary: summaryToProto(r.summary),
  });
}

export function queryResultToProto(r: QueryResult): Omit<QueryResponse, '$typeName'> {
  return {
    stats: r.stats.map(statResultToProto),
    resolution: resolutionToProto(r.plan.resolution),
    stepSec: r.plan.stepSec,
  };
}

const OFFSET_NAMES: [number, string][] = [
  [365 * 86_400, 'year'],
  [30 * 86_400, 'month'],
  [7 * 86_400, 'week'],
  [86_400, 'day'],
  [3_600, 'hour'],
  [60, 'minute'],
];

/** "1 week earlier", "3 days earlier": the legend of a comparison line. */
export function offsetLabel(offsetSec: number): string {
  for (const [sec, name] of OFFSET_NAMES) {
    if (offsetSec >= sec && offsetSec % sec === 0) {
      const n = offsetSec / sec;
      return `${n} ${name}${n === 1 ? '' : 's'} earlier`;
    }
  }
  return `${offsetSec} seconds earlier`;
}
