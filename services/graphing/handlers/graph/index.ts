import type { ServiceImpl } from '@connectrpc/connect';
import { ChartFormat, GraphService, type QueryRequest, type RenderRequest } from '../../../../gen/osprey/v1/graphing_pb.js';
import { OspreyError } from '../../../kit/errors.js';
import { offsetLabel, queryResultToProto, resolutionFromProto } from '../../converters.js';
import { planQuery, runQuery, type QueryDeps, type Retention } from '../../query.js';
import { ChartSpecError, MAX_CHART_SERIES, chartSide, chartStyle, renderPngAsync, renderSvg, type ChartSpec } from '../../render.js';
import type { RenderLimiter } from '../../render-limiter.js';
import { SeriesRangeError } from '../../series.js';

export interface GraphHandlerDeps {
  query: QueryDeps;
  /** Milliseconds since the epoch. */
  now: () => number;
  retention: Retention;
  /** Stats one Query may ask for. */
  maxQueryStats: number;
  renders: RenderLimiter;
  /** Called with each RPC's name and seconds taken (metrics). */
  observe?: (method: 'query' | 'render', seconds: number) => void;
}

/** Errors of the pure modules are the caller's mistakes: say so as InvalidArgument. */
function asDomainError(err: unknown): unknown {
  if (err instanceof ChartSpecError || err instanceof SeriesRangeError) return new OspreyError('invalid', err.message);
  return err;
}

async function timed<T>(deps: GraphHandlerDeps, method: 'query' | 'render', work: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await work();
  } catch (err) {
    throw asDomainError(err);
  } finally {
    deps.observe?.(method, (performance.now() - start) / 1000);
  }
}

export function graphHandler(deps: GraphHandlerDeps): ServiceImpl<typeof GraphService> {
  const nowSec = () => Math.floor(deps.now() / 1000);
  return {
    query(req: QueryRequest) {
      return timed(deps, 'query', async () => {
        if (req.statIds.length > deps.maxQueryStats) {
          throw new OspreyError('invalid', `at most ${deps.maxQueryStats} stats per query, got ${req.statIds.length}`);
        }
        const plan = planQuery({
          fromSec: req.from,
          toSec: req.to,
          stepSec: req.stepSec,
          resolution: resolutionFromProto(req.resolution),
          nowSec: nowSec(),
          retention: deps.retention,
        });
        const result = await runQuery(deps.query, {
          accountId: req.accountId,
          statIds: req.statIds,
          plan,
          maxPoints: req.maxPoints,
          compareOffsetSec: req.compareOffsetSec,
          percentiles: req.percentiles,
        });
        return queryResultToProto(result);
      });
    },

    render(req: RenderRequest) {
      return timed(deps, 'render', async () => {
        if (req.statIds.length < 1 || req.statIds.length > MAX_CHART_SERIES) {
          throw new OspreyError('invalid', `a chart draws 1 to ${MAX_CHART_SERIES} stats, got ${req.statIds.length}`);
        }
        const format = req.format === ChartFormat.UNSPECIFIED ? ChartFormat.SVG : req.format;
        if (format !== ChartFormat.SVG && format !== ChartFormat.PNG) throw new OspreyError('invalid', `unknown chart format ${req.format}`);
        const width = chartSide(req.width);
        const height = chartSide(req.height);
        const plan = planQuery({ fromSec: req.from, toSec: req.to, nowSec: nowSec(), retention: deps.retention });
        const result = await runQuery(deps.query, {
          accountId: req.accountId,
          statIds: req.statIds,
          plan,
          // Two points per pixel column is all a min/max line shows.
          maxPoints: width * 2,
          compareOffsetSec: req.compareOffsetSec,
          percentiles: false,
        });
        const label = req.compareOffsetSec > 0 ? offsetLabel(req.compareOffsetSec) : '';
        const spec: ChartSpec = {
          series: result.stats.map((s) => ({ name: s.stat.name, times: s.series.times, values: s.series.values })),
          comparisons: result.stats.map((s) =>
            s.comparison ? { name: `${s.stat.name} (${label})`, times: s.comparison.times, values: s.comparison.values } : null,
          ),
          title: req.title || undefined,
          style: chartStyle(req.style),
          width,
          height,
        };
        if (format === ChartFormat.SVG) {
          const svg = await deps.renders.run(() => renderSvg(spec));
          return { contentType: 'image/svg+xml', data: Buffer.from(svg) };
        }
        const png = await deps.renders.run(() => renderPngAsync(spec));
        return { contentType: 'image/png', data: png };
      });
    },
  };
}
