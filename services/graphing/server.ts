import { Counter, Gauge, Histogram } from 'prom-client';
import { GraphService } from '../../gen/osprey/v1/graphing_pb.js';
import { startReplica, type BaseDeps, type Replica } from '../kit/replica.js';
import type { GraphingConfig } from './config.js';
import type { QueryDeps } from './query.js';
import { RenderLimiter } from './render-limiter.js';
import type { Resolution } from './resolution.js';
import { tablesWithSketch } from './rollups.js';
import { graphingRoutes } from './router.js';
import { kitSketchReader, type SketchReader } from './sketches.js';

export interface GraphingDeps extends BaseDeps {
  config: GraphingConfig;
  /** Milliseconds since the epoch. */
  now?: () => number;
  /** Reads ingest's rollup sketches (percentiles, set counts); kitSketchReader unless a test gives another. */
  sketches?: SketchReader;
}

export interface GraphingReplica extends Replica {
  renders: RenderLimiter;
  /** Calls answered by this replica, by method (for tests and /metrics). */
  calls(method: 'query' | 'render'): Promise<number>;
}

/** Builds and starts one graphing replica; main.ts runs it, tests build it on port 0. */
export async function build(deps: GraphingDeps): Promise<GraphingReplica> {
  const { config, metrics } = deps;
  const renders = new RenderLimiter(config.RENDER_CONCURRENCY, config.RENDER_QUEUE_MAX);
  const seconds = new Histogram({
    name: 'osprey_graph_request_seconds',
    help: 'GraphService calls answered, by method',
    labelNames: ['method'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [metrics],
  });
  const total = new Counter({ name: 'osprey_graph_requests_total', help: 'GraphService calls, by method', labelNames: ['method'], registers: [metrics] });
  new Gauge({
    name: 'osprey_graph_renders',
    help: 'Renders running and waiting on this replica',
    labelNames: ['state'],
    registers: [metrics],
    collect() {
      this.set({ state: 'running' }, renders.active);
      this.set({ state: 'queued' }, renders.queued);
    },
  });
  // Filled in before the replica registers, so no call arrives before it is known.
  const query: QueryDeps = { pool: deps.database.pool, sketches: deps.sketches ?? kitSketchReader, sketchTables: new Set<Resolution>() };
  const replica = await startReplica('graphing', deps, {
    serviceNames: [GraphService.typeName],
    // PNGs are compressed already, and series go over loopback or a LAN: gzip would only
    // add a thread-pool hop to every call (measured with npm run bench:query).
    compressResponses: false,
    routes: graphingRoutes({
      query,
      now: deps.now ?? Date.now,
      retention: { '1m': config.ROLLUP_1M_RETENTION_DAYS * 86_400, '1h': config.ROLLUP_1H_RETENTION_DAYS * 86_400 },
      maxQueryStats: config.QUERY_MAX_STATS,
      renders,
      observe: (method, s) => {
        seconds.observe({ method }, s);
        total.inc({ method });
      },
    }),
    start: async () => {
      query.sketchTables = await tablesWithSketch(deps.database.pool);
    },
    close: () => deps.database.close(),
  });
  return Object.assign(replica, {
    renders,
    async calls(method: 'query' | 'render') {
      const m = await total.get();
      return m.values.find((v) => v.labels.method === method)?.value ?? 0;
    },
  });
}
