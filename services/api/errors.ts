import type { Context } from 'hono';
import { ConnectError } from '@connectrpc/connect';
import { OspreyError, httpStatusOf } from '../kit/errors.js';
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
    return { status: 503, msg: 'ingest is unavailable, try again', headers: { 'retry-after': '1' } };
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
