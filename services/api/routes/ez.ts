import type { IncomingMessage, ServerResponse } from 'node:http';
import { MetricKind, type Point } from '../../../gen/osprey/v1/ingest_pb.js';
import { OspreyError } from '../../kit/errors.js';
import type { Logger } from '../../kit/log.js';
import { httpErrorOf } from '../errors.js';
import { parseEzJson, type EzItemError } from '../ez-json.js';
import { parseEzParams } from '../ez-params.js';
import type { EzkeyCache } from '../ezkeys.js';
import type { IngestBatcher, PointResult } from '../ingest-batcher.js';

export interface EzDeps {
  ezkeys: EzkeyCache;
  batcher: IngestBatcher;
  log: Logger;
}

/** Bodies larger than this are answered 413 (1,000 JSON points fit with room to spare). */
export const MAX_EZ_BODY = 1 << 20;

type Params = { get(name: string): string | null };
const NO_PARAMS: Params = { get: () => null };
const OK_BODY = JSON.stringify({ status: 200, msg: 'ok' });

/**
 * StatHat's EZ API: `POST|GET /ez` with ezkey, stat, count|value, optional t (form body
 * or query), or a JSON batch `{"ezkey", "data": [...]}` with Content-Type
 * application/json. Every 2xx is sent only after ingest has accepted the points.
 *
 * This is a plain node:http handler, not a Hono route: it is the one path that takes
 * "a ton of automated requests", and Hono's Request/Response objects plus body reading
 * through web streams cost more CPU than the rest of the request together (see
 * docs/perf.md). app.ts still lists it with every other route.
 */
export function ezHandler(deps: EzDeps) {
  const { ezkeys, batcher, log } = deps;

  const accountOf = async (ezkey: string): Promise<number> => {
    const found = ezkeys.lookup(ezkey);
    const accountId = typeof found === 'number' || found === undefined ? found : await found;
    if (accountId === undefined) throw new OspreyError('unauthenticated', 'unknown ezkey');
    return accountId;
  };

  async function form(res: ServerResponse, params: Params): Promise<void> {
    const ez = parseEzParams(params);
    const accountId = await accountOf(ez.ezkey);
    const kind = ez.kind === 'count' ? MetricKind.COUNTER : MetricKind.VALUE;
    const points: Point[] = ez.stats.map((stat) => point(accountId, stat, kind, ez.number, ez.t));
    const results = await batcher.submit(points);
    const refused = results.find((r) => r !== undefined);
    if (refused) throw new OspreyError('invalid', refused);
    if (ez.verbose) sendJson(res, 200, OK_BODY);
    else res.writeHead(204).end();
  }

  async function json(res: ServerResponse, body: string, query: Params): Promise<void> {
    const batch = parseEzJson(body, query);
    const accountId = await accountOf(batch.ezkey);
    const points: Point[] = [];
    const itemOf: number[] = [];
    for (const item of batch.items) {
      const kind = item.kind === 'count' ? MetricKind.COUNTER : MetricKind.VALUE;
      for (const stat of item.stats) {
        points.push(point(accountId, stat, kind, item.number, item.t));
        itemOf.push(item.index);
      }
    }
    const errors: EzItemError[] = batch.errors;
    const parseErrors = errors.length;
    if (points.length > 0) {
      const results: PointResult[] = await batcher.submit(points);
      let last = -1;
      for (let i = 0; i < results.length; i++) {
        // One error per item, even when its prefix~a,b expanded to several points.
        if (results[i] !== undefined && itemOf[i] !== last) errors.push({ index: (last = itemOf[i]), msg: `data[${itemOf[i]}]: ${results[i]}` });
      }
      if (errors.length > parseErrors && parseErrors > 0) errors.sort((a, b) => a.index - b.index);
    }
    if (errors.length === 0) {
      if (batch.verbose) sendJson(res, 200, OK_BODY);
      else res.writeHead(204).end();
      return;
    }
    // Some points were taken: a 4xx would invite a retry that counts them twice.
    const status = errors.length === batch.size ? 400 : 200;
    const msg = status === 400 ? (errors.length > 1 ? `${errors[0].msg} (and ${errors.length - 1} more)` : errors[0].msg) : `${errors.length} of ${batch.size} points refused`;
    sendJson(res, status, JSON.stringify(batch.verbose ? { status, msg, errors } : { status, msg }));
  }

  const fail = (res: ServerResponse, err: unknown) => {
    const e = httpErrorOf(err, log);
    if (!res.headersSent) sendJson(res, e.status, JSON.stringify({ status: e.status, msg: e.msg }), e.headers);
  };

  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const query: Params = q >= 0 ? new URLSearchParams(url.slice(q + 1)) : NO_PARAMS;
    if (req.method === 'GET' || req.method === 'HEAD') {
      form(res, query).catch((err) => fail(res, err));
      return;
    }
    if (req.method !== 'POST') {
      sendJson(res, 405, JSON.stringify({ status: 405, msg: `${req.method} is not allowed on /ez; use POST or GET` }), { allow: 'GET, POST' });
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_EZ_BODY) chunks.push(chunk);
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (size > MAX_EZ_BODY) {
        sendJson(res, 413, JSON.stringify({ status: 413, msg: `body is larger than ${MAX_EZ_BODY} bytes` }));
        return;
      }
      const body = chunks.length === 1 ? chunks[0].toString() : Buffer.concat(chunks).toString();
      const type = req.headers['content-type'];
      const run =
        type !== undefined && type.startsWith('application/json')
          ? json(res, body, query)
          : form(res, query === NO_PARAMS ? new URLSearchParams(body) : bodyThenQuery(new URLSearchParams(body), query));
      run.catch((err) => fail(res, err));
    });
  };
}

function point(accountId: number, stat: string, kind: MetricKind, number: number, unixTime: number): Point {
  // A finished message (with $typeName) is serialised as is, without a copy.
  return { $typeName: 'osprey.v1.Point', accountId, stat, kind, number, unixTime };
}

/** Form fields win over the same names in the query string. */
function bodyThenQuery(body: URLSearchParams, query: Params): Params {
  return { get: (name) => body.get(name) ?? query.get(name) };
}

function sendJson(res: ServerResponse, status: number, body: string, headers?: Record<string, string>): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers }).end(body);
}
