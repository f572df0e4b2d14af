import { Code, ConnectError, type ServiceImpl } from '@connectrpc/connect';
import { NOT_APPLIED_HEADER } from '../../../kit/rpc/server.js';
import { IngestService, MetricKind, type PointError, type RecordRequest, type RecordResponse } from '../../../../gen/osprey/v1/ingest_pb.js';
import { OspreyError } from '../../../kit/errors.js';
import type { SampleTarget } from '../../durable.js';
import type { StatResolver } from '../../stat-resolver.js';
import { validatePoint } from './converters.js';

export interface IngestHandlerDeps {
  /** The aggregator, or the write-ahead recorder in front of it. */
  aggregator: SampleTarget;
  /**
   * With a write-ahead log: throws (Unavailable, nothing applied) when the log is over its
   * budget, and resolves once what was just taken is in the log (see WAL_SYNC). The reply waits for it.
   */
  durability?: { checkRoom(): void; accepted(): Promise<void> };
  stats: StatResolver;
  now: () => number;
  maxAgeSec: number;
  maxFutureSec: number;
}

type Resolved = { id: number; kind: number } | OspreyError;

export function ingestHandler(deps: IngestHandlerDeps): ServiceImpl<typeof IngestService> {
  return {
    record(req: RecordRequest): RecordResponse | Promise<RecordResponse> {
      if (deps.durability) {
        try {
          deps.durability.checkRoom();
        } catch (err) {
          // The caller may try another replica: nothing of this call was taken.
          throw new ConnectError(`ingest cannot take points now: ${(err as Error).message}; nothing was applied`, Code.Unavailable, { [NOT_APPLIED_HEADER]: '1' });
        }
        const reply = recordNow(deps, req);
        const log = deps.durability;
        return reply instanceof Promise ? reply.then(async (r) => (await log.accepted(), r)) : log.accepted().then(() => reply);
      }
      return recordNow(deps, req);
    },
  };
}

function recordNow(deps: IngestHandlerDeps, req: RecordRequest): RecordResponse | Promise<RecordResponse> {
  const errors: PointError[] = [];
  const nowMs = deps.now();
  const points = req.points;
  // Per point: its stat once known, undefined while it must be looked up, null if invalid.
  const stats: (Resolved | undefined | null)[] = new Array(points.length);
  // Names not in the resolver's cache, per account, with the kind each point wants.
  let missing: Map<number, Map<string, number>> | undefined;
  for (let index = 0; index < points.length; index++) {
    const p = points[index];
    const problem = validatePoint(p, nowMs, deps.maxAgeSec, deps.maxFutureSec);
    if (problem) {
      errors.push({ $typeName: 'osprey.v1.PointError', index, message: problem });
      stats[index] = null;
      continue;
    }
    const hit = deps.stats.peek(p.accountId, p.stat);
    if (hit) {
      stats[index] = hit;
      continue;
    }
    missing ??= new Map();
    let names = missing.get(p.accountId);
    if (!names) missing.set(p.accountId, (names = new Map()));
    if (!names.has(p.stat)) names.set(p.stat, p.kind);
  }
  // Known stats (the usual case) are aggregated without awaiting anything.
  if (!missing) return aggregate(deps, req, stats, errors, nowMs);
  return (async () => {
    const resolved = new Map<number, Map<string, Resolved>>();
    for (const [accountId, names] of missing) resolved.set(accountId, await deps.stats.resolve(accountId, names));
    for (let index = 0; index < points.length; index++) {
      if (stats[index] === undefined) stats[index] = resolved.get(points[index].accountId)!.get(points[index].stat);
    }
    return aggregate(deps, req, stats, errors, nowMs);
  })();
}

function aggregate(deps: IngestHandlerDeps, req: RecordRequest, stats: (Resolved | undefined | null)[], errors: PointError[], nowMs: number): RecordResponse {
  let accepted = 0;
  const points = req.points;
  for (let index = 0; index < points.length; index++) {
    const stat = stats[index];
    if (stat === null) continue; // invalid: its error is already in the list
    const p = points[index];
    if (stat === undefined) {
      // Never a silent drop: a point is either accepted or answered with an error.
      errors.push({ $typeName: 'osprey.v1.PointError', index, message: `stat "${p.stat}" could not be found or created; nothing was recorded for it` });
      continue;
    }
    if (stat instanceof OspreyError) {
      errors.push({ $typeName: 'osprey.v1.PointError', index, message: stat.message });
      continue;
    }
    if (stat.kind !== p.kind) {
      errors.push({ $typeName: 'osprey.v1.PointError', index, message: `stat "${p.stat}" is a ${MetricKind[stat.kind].toLowerCase()}, not a ${MetricKind[p.kind].toLowerCase()}` });
      continue;
    }
    const timeMs = p.unixTime ? p.unixTime * 1000 : nowMs;
    if (stat.kind === MetricKind.GAUGE) deps.aggregator.addGauge(stat.id, timeMs, p.number, false);
    else deps.aggregator.add(stat.id, timeMs, p.number);
    accepted++;
  }
  return { $typeName: 'osprey.v1.RecordResponse', accepted, errors };
}
