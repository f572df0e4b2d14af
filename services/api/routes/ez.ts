import type { IncomingMessage, ServerResponse } from 'node:http';
import { MetricKind, type Point } from '../../../gen/osprey/v1/ingest_pb.js';
import { OspreyError } from '../../kit/errors.js';
import type { Logger } from '../../kit/log.js';
import { pointBodyLength, pointEntryLength, writePoint } from '../../kit/rpc/record-codec.js';
import { MAX_BATCH_POINTS, parseEzJson, scanEzJson, type EzItemError, type EzJsonScan } from '../ez-json.js';
import { parseEzParams, scanEzForm, type EzFormScan } from '../ez-params.js';
import type { EzkeyCache } from '../ezkeys.js';
import type { EncodedPoints, IngestBatcher, PointResult } from '../ingest-batcher.js';
import type { AccountRateLimiter } from '../rate-limit.js';
import { NO_PARAMS, failWith, formParams, queryOf, readBody, sendError, sendJson, sendOk, type Params } from './http-io.js';

export interface EzDeps {
  ezkeys: EzkeyCache;
  batcher: IngestBatcher;
  limiter: AccountRateLimiter;
  /** Larger request bodies are answered 413. */
  maxBodyBytes: number;
  log: Logger;
}

/** The default body limit: 1,000 JSON points with long names fit with room to spare. */
export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

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
  const { ezkeys, batcher, limiter, log, maxBodyBytes } = deps;
  const fail = failWith(log);

  const accountOf = async (ezkey: string): Promise<number> => {
    const found = ezkeys.lookup(ezkey);
    const accountId = typeof found === 'number' || found === undefined ? found : await found;
    if (accountId === undefined) throw new OspreyError('unauthenticated', 'unknown ezkey');
    return accountId;
  };

  async function form(res: ServerResponse, params: Params): Promise<void> {
    const ez = parseEzParams(params);
    const accountId = await accountOf(ez.ezkey);
    checkRate(limiter, accountId, ez.stats.length);
    const kind = ez.kind === 'count' ? MetricKind.COUNTER : MetricKind.VALUE;
    const points: Point[] = ez.stats.map((stat) => point(accountId, stat, kind, ez.number, ez.t));
    const results = await batcher.submit(points);
    const refused = results.find((r) => r !== undefined);
    if (refused) throw new OspreyError('invalid', refused);
    sendOk(res, ez.verbose);
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
    // Refused items cost work too: a batch counts at least one point per item.
    checkRate(limiter, accountId, Math.max(points.length, batch.size));
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
    answerBatch(res, errors, batch.size, batch.verbose);
  }

  /**
   * The usual form post (scanEzForm took it), answered without an async function or a
   * Point object: the name goes from the body into the RecordRequest as bytes. False when
   * the ezkey is not known yet (or unknown): the general path then looks it up and answers.
   */
  function formScanned(res: ServerResponse, s: EzFormScan): boolean {
    const accountId = ezkeys.lookup(s.ezkey);
    if (typeof accountId !== 'number') return false;
    try {
      checkRate(limiter, accountId, 1);
    } catch (err) {
      fail(res, err);
      return true;
    }
    const size = pointBodyLength(accountId, s.statLength, s.kind, s.number, s.t);
    const bytes = Buffer.allocUnsafe(pointEntryLength(size));
    writePoint(bytes, 0, size, accountId, s.statBytes, 0, s.statLength, s.kind, s.number, s.t);
    const verbose = s.verbose;
    batcher.submitEncoded({ bytes, count: 1 }).then(
      (results) => (results[0] === undefined ? sendOk(res, verbose) : fail(res, new OspreyError('invalid', results[0]))),
      (err) => fail(res, err),
    );
    return true;
  }

  /**
   * The usual batch (scanEzJson took it): its points go from the body's bytes into the
   * RecordRequest without JSON.parse or an object per point. Same steps, same answers as
   * json(): every item is valid and one point, so item i is point i.
   */
  async function jsonScanned(res: ServerResponse, body: Buffer, scanned: EzJsonScan): Promise<void> {
    const found = ezkeys.lookup(scanned.ezkey);
    let accountId: number;
    let s = scanned;
    if (typeof found === 'number') accountId = found;
    else {
      accountId = await accountOf(scanned.ezkey);
      // The scan's arrays are shared: another request may have scanned meanwhile.
      s = scanEzJson(body)!;
    }
    const n = s.n;
    checkRate(limiter, accountId, n);
    const results = await batcher.submitEncoded(encodeScan(s, body, accountId));
    let errors: EzItemError[] | undefined;
    for (let i = 0; i < n; i++) if (results[i] !== undefined) (errors ??= []).push({ index: i, msg: `data[${i}]: ${results[i]}` });
    answerBatch(res, errors ?? NO_ERRORS, n, false);
  }

  function answerBatch(res: ServerResponse, errors: EzItemError[], size: number, verbose: boolean): void {
    if (errors.length === 0) {
      sendOk(res, verbose);
      return;
    }
    // Some points were taken: a 4xx would invite a retry that counts them twice.
    const status = errors.length === size ? 400 : 200;
    const msg = status === 400 ? (errors.length > 1 ? `${errors[0].msg} (and ${errors.length - 1} more)` : errors[0].msg) : `${errors.length} of ${size} points refused`;
    sendJson(res, status, JSON.stringify(verbose ? { status, msg, errors } : { status, msg }));
  }

  return (req: IncomingMessage, res: ServerResponse): void => {
    const query = queryOf(req.url ?? '');
    if (req.method === 'GET' || req.method === 'HEAD') {
      form(res, query).catch((err) => fail(res, err));
      return;
    }
    if (req.method !== 'POST') {
      methodNotAllowed(req, res, '/ez');
      return;
    }
    readBody(req, res, maxBodyBytes, (body) => {
      const type = req.headers['content-type'];
      let run: Promise<void>;
      if (type !== undefined && isJson(type)) {
        // The fast path only when nothing can come from the query string (ezkey, vb).
        const scanned = query === NO_PARAMS ? scanEzJson(body) : undefined;
        run = scanned ? jsonScanned(res, body, scanned) : json(res, body.toString(), query);
      } else {
        const scanned = query === NO_PARAMS ? scanEzForm(body) : undefined;
        if (scanned !== undefined && formScanned(res, scanned)) return;
        run = form(res, formParams(body.toString(), query));
      }
      run.catch((err) => fail(res, err));
    });
  };
}

const JSON_TYPE = 'application/json';

/** `application/json`, with any parameters and in any case (media types are case-insensitive); allocates nothing. */
export function isJson(contentType: string): boolean {
  // Position 12 tells the usual form type (application/x-www-...) apart at once.
  if (contentType.length < JSON_TYPE.length || (contentType.charCodeAt(12) | 0x20) !== 0x6a /* j */) return false;
  for (let i = 0; i < JSON_TYPE.length; i++) {
    // ASCII letters fold to lower case with | 0x20; '/' is 0x2f either way.
    if ((contentType.charCodeAt(i) | 0x20) !== JSON_TYPE.charCodeAt(i)) return false;
  }
  const next = contentType.charCodeAt(JSON_TYPE.length);
  return Number.isNaN(next) || next === 0x3b /* ; */ || next === 0x20 || next === 0x09;
}

/** Throws 429 with Retry-After when the account is over its rate. */
export function checkRate(limiter: AccountRateLimiter, accountId: number, points: number): void {
  const wait = limiter.take(accountId, points);
  if (wait > 0) throw new OspreyError('rate_limited', `too many points: this account may send ${limiter.opts.pointsPerSec} points per second; retry in ${wait} s`, { retryAfterSec: wait });
}

export function methodNotAllowed(req: IncomingMessage, res: ServerResponse, path: string): void {
  sendError(res, 405, `${req.method} is not allowed on ${path}; use POST or GET`, { allow: 'GET, POST' });
  req.resume();
}

export function point(accountId: number, stat: string, kind: MetricKind, number: number, unixTime: number): Point {
  // A finished message (with $typeName) is serialised as is, without a copy.
  return { $typeName: 'osprey.v1.Point', accountId, stat, kind, number, unixTime };
}

const NO_ERRORS: EzItemError[] = [];

/** A scanned batch's points as RecordRequest entries, names copied from the body. */
function encodeScan(s: EzJsonScan, body: Buffer, accountId: number): EncodedPoints {
  const n = s.n;
  let total = 0;
  for (let i = 0; i < n; i++) total += pointEntryLength((bodyLengths[i] = pointBodyLength(accountId, s.statEnd[i] - s.statStart[i], s.kind[i], s.number[i], s.t[i])));
  const bytes = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < n; i++) pos = writePoint(bytes, pos, bodyLengths[i], accountId, body, s.statStart[i], s.statEnd[i], s.kind[i], s.number[i], s.t[i]);
  return { bytes, count: n };
}
const bodyLengths = new Int32Array(MAX_BATCH_POINTS);
