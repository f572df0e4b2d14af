import type { Context } from 'hono';
import { ConnectError } from '@connectrpc/connect';
import { OspreyError, databaseUnavailable, httpStatusOf } from '../kit/errors.js';
import { NOT_APPLIED_HEADER } from '../kit/rpc/server.js';
import type { Logger } from '../kit/log.js';
import { randomUUID } from 'node:crypto';

/** An error as StatHat clients see it: HTTP status, {"status": N, "msg": "..."} and headers. */
export interface HttpError {
  status: number;
  msg: string;
  headers?: Record<string, string>;
}

/** The one place errors become HTTP answers (for the Hono routes and the /ez hot path). */
export function httpErrorOf(err: unknown, log: Logger): HttpError {
  if (err instanceof OspreyError) {
    const headers = err.details.retryAfterSec ? { 'retry-after': String(err.details.retryAfterSec) } : undefined;
    return { status: httpStatusOf[err.kind], msg: err.message, headers };
  }
  if (err instanceof ConnectError) {
    log.warn({ err }, 'ingest call failed');
    // Say whether a retry can double count: a refused call was not applied, a broken one may have been.
    const notApplied = err.metadata.get(NOT_APPLIED_HEADER) === '1';
    return {
      status: 503,
      msg: notApplied ? 'ingest is unavailable; nothing was recorded, try again' : 'ingest is unavailable; the points may or may not have been recorded',
      headers: { 'retry-after': '1' },
    };
  }
  const down = databaseUnavailable(err);
  if (down) {
    log.debug({ err }, 'database unavailable');
    return { status: 503, msg: down.message, headers: { 'retry-after': String(down.details.retryAfterSec ?? 5) } };
  }
  const requestId = randomUUID();
  log.error({ err, requestId }, 'request failed');
  return { status: 500, msg: `internal error (request id ${requestId})` };
}

/** StatHat's error shape: {"status": N, "msg": "..."} with the same N as the HTTP status. */
export function errorResponse(c: Context, status: number, msg: string, headers?: Record<string, string>): Response {
  return c.json({ status, msg }, status as 400, headers);
}

export function onApiError(log: Logger) {
  return (err: Error, c: Context): Response => {
    const e = httpErrorOf(err, log);
    return errorResponse(c, e.status, e.msg, e.headers);
  };
}
