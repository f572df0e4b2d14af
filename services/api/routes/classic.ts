import type { IncomingMessage, ServerResponse } from 'node:http';
import { MetricKind } from '../../../gen/osprey/v1/ingest_pb.js';
import { KIND, KIND_NAME } from '../../kit/db/schema.js';
import { OspreyError } from '../../kit/errors.js';
import type { Logger } from '../../kit/log.js';
import type { ClassicKeyCache } from '../classic-keys.js';
import { parseNumber, parseUnixTime } from '../ez-params.js';
import type { IngestBatcher } from '../ingest-batcher.js';
import type { AccountRateLimiter } from '../rate-limit.js';
import { checkRate, methodNotAllowed, point } from './ez.js';
import { failWith, formParams, queryOf, readBody, sendOk, type Params } from './http-io.js';

export interface ClassicDeps {
  classicKeys: ClassicKeyCache;
  batcher: IngestBatcher;
  limiter: AccountRateLimiter;
  maxBodyBytes: number;
  log: Logger;
}

/** One classic call, validated. */
export interface ClassicPoint {
  ukey: string;
  key: string;
  number: number;
  /** Unix seconds, 0 for now. */
  t: number;
  verbose: boolean;
}

/**
 * The parameters of StatHat's classic `/c` (a count) and `/v` (a value): `ukey`, `key`,
 * `count` or `value`, optional `t` and `vb`. `/c` also takes its number as `value`, which
 * some old clients sent; `/v` takes only `value`.
 */
export function parseClassicParams(p: Params, kind: 'count' | 'value'): ClassicPoint {
  const ukey = p.get('ukey') ?? '';
  if (!ukey) throw new OspreyError('invalid', 'ukey is required');
  const key = p.get('key') ?? '';
  if (!key) throw new OspreyError('invalid', 'key is required');
  let field: 'count' | 'value' = kind;
  let raw = p.get(kind);
  if (kind === 'count' && raw === null) {
    raw = p.get('value');
    field = 'value';
  } else if (kind === 'count' && p.get('value') !== null) {
    throw new OspreyError('invalid', 'give count or value, not both');
  }
  if (raw === null) throw new OspreyError('invalid', `${kind} is required`);
  return { ukey, key, number: parseNumber(field, raw), t: parseUnixTime(p.get('t')), verbose: p.get('vb') === '1' };
}

/**
 * StatHat's classic API: `POST|GET /c` and `/v` naming the stat by the account's user key
 * and the stat's key (both shown in Settings). The stat must exist already, with the kind
 * the route stands for. Plain node:http like /ez, for the same reason (docs/perf.md).
 */
export function classicHandler(deps: ClassicDeps, route: '/c' | '/v') {
  const { classicKeys, batcher, limiter, log, maxBodyBytes } = deps;
  const fail = failWith(log);
  const kind = route === '/c' ? 'count' : 'value';
  const wantKind = route === '/c' ? KIND.counter : KIND.value;
  const metricKind = route === '/c' ? MetricKind.COUNTER : MetricKind.VALUE;

  async function record(res: ServerResponse, params: Params): Promise<void> {
    const c = parseClassicParams(params, kind);
    const found = classicKeys.lookup(c.ukey, c.key);
    const stat = found instanceof Promise ? await found : found;
    if (stat === 'unknown_ukey') throw new OspreyError('unauthenticated', 'unknown ukey');
    if (stat === 'unknown_key') throw new OspreyError('not_found', 'no stat has this key');
    if (stat.kind !== wantKind) throw new OspreyError('invalid', `stat "${stat.name}" is a ${KIND_NAME[stat.kind]}, not a ${KIND_NAME[wantKind]}: send it to ${stat.kind === KIND.counter ? '/c' : stat.kind === KIND.value ? '/v' : 'statsd'}`);
    checkRate(limiter, stat.accountId, 1);
    const [refused] = await batcher.submit([point(stat.accountId, stat.name, metricKind, c.number, c.t)]);
    if (refused !== undefined) throw new OspreyError('invalid', refused);
    sendOk(res, c.verbose);
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    const query = queryOf(req.url ?? '');
    if (req.method === 'GET' || req.method === 'HEAD') {
      record(res, query).catch((err) => fail(res, err));
      return;
    }
    if (req.method !== 'POST') {
      methodNotAllowed(req, res, route);
      return;
    }
    readBody(req, res, maxBodyBytes, (body) => {
      record(res, formParams(body.toString(), query)).catch((err) => fail(res, err));
    });
  };
}
