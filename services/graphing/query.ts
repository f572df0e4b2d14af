// A series query: which table and points (planQuery, pure), then the rows, dense series,
// comparison, percentiles, peak-keeping thinning and summary (runQuery).
import type { Pool } from 'mysql2/promise';
import { OspreyError } from '../kit/errors.js';
import { ceilTo, floorTo, pickResolution, type Resolution } from './resolution.js';
import { loadStats, readRollups, type RollupRange, type StatInfo } from './rollups.js';
import {
  buildComparisonSeries,
  buildSeries,
  downsampleTogether,
  summarize,
  type Series,
  type SeriesOptions,
  type Summary,
} from './series.js';
import { sketchHooks, type SketchReader } from './sketches.js';
import { MAX_DURATION_SEC } from './timeframe.js';

/**
 * Rows one stat may read from one table in one query. A year of minutes (525,600) is
 * refused: it is a mistake, and auto never picks it. 100,000 is ten weeks of minutes.
 */
export const MAX_ROWS_PER_STAT = 100_000;

export interface Retention {
  /** How long each table keeps rows, in seconds; a table is skipped by auto when it no longer holds the range. */
  '1m'?: number;
  '1h'?: number;
}

export interface QueryPlanInput {
  fromSec: number;
  toSec: number;
  /** 0 or undefined: one point per bucket of the chosen table. */
  stepSec?: number;
  resolution?: Resolution | 'auto';
  nowSec: number;
  retention?: Retention;
}

export interface QueryPlan {
  resolution: Resolution;
  bucketSec: number;
  stepSec: number;
  /** Bucket-aligned start, inclusive. */
  fromSec: number;
  /** from + points * step, exclusive. */
  toSec: number;
  points: number;
}

export function planQuery(input: QueryPlanInput): QueryPlan {
  const { fromSec, toSec, nowSec, retention = {} } = input;
  const stepSec = input.stepSec || undefined;
  if (!Number.isInteger(fromSec) || !Number.isInteger(toSec) || fromSec < 0 || toSec <= fromSec) {
    throw new OspreyError('invalid', `the range must have from < to (unix seconds), got from=${fromSec} to=${toSec}`);
  }
  if (toSec - fromSec > MAX_DURATION_SEC) throw new OspreyError('invalid', 'the range is longer than 100 years');
  if (stepSec !== undefined && (!Number.isInteger(stepSec) || stepSec < 0)) {
    throw new OspreyError('invalid', `step_sec must be a whole number of seconds, got ${stepSec}`);
  }
  const oldestSec: Partial<Record<Resolution, number>> = {};
  if (retention['1m']) oldestSec['1m'] = nowSec - retention['1m'];
  if (retention['1h']) oldestSec['1h'] = nowSec - retention['1h'];
  const { resolution, bucketSec } = pickResolution({ fromSec, toSec, stepSec, resolution: input.resolution ?? 'auto', oldestSec });
  const step = stepSec === undefined ? bucketSec : Math.max(bucketSec, ceilTo(stepSec, bucketSec));
  const from = floorTo(fromSec, bucketSec);
  const points = Math.ceil((toSec - from) / step);
  const to = from + points * step;
  const rows = (to - from) / bucketSec;
  if (rows > MAX_ROWS_PER_STAT) {
    throw new OspreyError(
      'invalid',
      `the range needs ${rows} ${resolution} buckets per stat, more than ${MAX_ROWS_PER_STAT}: ask for a coarser resolution or a shorter range`,
    );
  }
  return { resolution, bucketSec, stepSec: step, fromSec: from, toSec: to, points };
}

export interface QueryDeps {
  pool: Pool;
  /** Reads sketches; absent until ingest writes them. */
  sketches?: SketchReader;
  /** Tables that have the sketch column. */
  sketchTables: ReadonlySet<Resolution>;
}

export interface QueryInput {
  accountId: number;
  statIds: readonly number[];
  plan: QueryPlan;
  /** 0: no thinning. */
  maxPoints: number;
  /** 0: no comparison. */
  compareOffsetSec: number;
  percentiles: boolean;
}

export interface StatResult {
  stat: StatInfo;
  series: Series;
  comparison?: Series;
  summary: Summary;
}

export interface QueryResult {
  plan: QueryPlan;
  stats: StatResult[];
}

export async function runQuery(deps: QueryDeps, input: QueryInput): Promise<QueryResult> {
  const { plan, compareOffsetSec: offset } = input;
  if (input.accountId <= 0) throw new OspreyError('invalid', 'account_id is required');
  if (input.statIds.length === 0) throw new OspreyError('invalid', 'stat_ids is empty');
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_DURATION_SEC) {
    throw new OspreyError('invalid', `compare_offset_sec must be 0 to 100 years, got ${offset}`);
  }
  const stats = await loadStats(deps.pool, input.accountId, input.statIds);

  const hooks = deps.sketches && deps.sketchTables.has(plan.resolution) ? sketchHooks(deps.sketches) : undefined;
  // The sketch is read only where it answers something: percentiles asked of a value
  // stat, and every set (its value is the distinct count).
  const sketchFor = new Set<number>();
  if (hooks) {
    for (const s of stats) if (s.kind === 'set' || (s.kind === 'value' && input.percentiles)) sketchFor.add(s.id);
  }
  const ranges: RollupRange[] = [{ fromSec: plan.fromSec, toSec: plan.toSec }];
  if (offset > 0) ranges.push({ fromSec: plan.fromSec - offset, toSec: plan.toSec - offset });
  const rowsByStat = await readRollups(
    deps.pool,
    plan.resolution,
    stats.map((s) => s.id),
    ranges.filter((r) => r.toSec > 0).map((r) => ({ fromSec: Math.max(0, r.fromSec), toSec: r.toSec })),
    sketchFor,
  );

  return {
    plan,
    stats: stats.map((stat) => {
      const rows = rowsByStat.get(stat.id) ?? [];
      const opts: SeriesOptions = { kind: stat.kind, fromSec: plan.fromSec, toSec: plan.toSec, stepSec: plan.stepSec };
      if (hooks && stat.kind === 'set') opts.distinct = hooks.distinct;
      if (hooks && stat.kind === 'value' && input.percentiles) opts.quantiles = hooks.quantiles;
      const series = buildSeries(rows, opts);
      const summary = summarize(rows, opts, series);
      const comparison = offset > 0 ? buildComparisonSeries(rows, { ...opts, offsetSec: offset }) : undefined;
      if (input.maxPoints > 0 && series.values.length > input.maxPoints) {
        const [s, c] = downsampleTogether(comparison ? [series, comparison] : [series], input.maxPoints);
        return { stat, series: s, comparison: c, summary };
      }
      return { stat, series, comparison, summary };
    }),
  };
}
