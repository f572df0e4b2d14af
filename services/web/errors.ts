import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { Code, ConnectError } from '@connectrpc/connect';
import { randomUUID } from 'node:crypto';
import { OspreyError, databaseUnavailable, httpStatusOf, type ErrorKind } from '../kit/errors.js';
import type { Logger } from '../kit/log.js';
import { TimeframeError } from '../graphing/timeframe.js';
import { errorPage } from './views/layout.js';

// The web app throws one error class, the kit's OspreyError; this is the one place any
// error becomes an answer. The shape depends on who asked: StatHat's {"status","msg"} on
// /x, {"error","message"} on /api/v1, plain text for embeds, an HTML page otherwise.

const connectKinds: Partial<Record<Code, ErrorKind>> = {
  [Code.NotFound]: 'not_found',
  [Code.InvalidArgument]: 'invalid',
  [Code.PermissionDenied]: 'not_found',
  [Code.ResourceExhausted]: 'too_large',
  // e.g. graphing's "the database is unavailable; …": say what is down, not only "graphing".
  [Code.Unavailable]: 'unavailable',
};

export function toOspreyError(err: unknown, log: Logger): OspreyError | undefined {
  if (err instanceof OspreyError) return err;
  if (err instanceof TimeframeError) return new OspreyError('invalid', err.message);
  const down = databaseUnavailable(err);
  if (down) {
    log.warn({ err }, 'database unavailable');
    return down;
  }
  if (err instanceof ConnectError) {
    const kind = connectKinds[err.code];
    if (kind) return new OspreyError(kind, err.rawMessage);
    log.warn({ err }, 'graphing call failed');
    return new OspreyError('unavailable', 'the graphing service is unavailable, try again');
  }
  return undefined;
}

export function onWebError(log: Logger) {
  return (err: Error, c: Context): Response | Promise<Response> => {
    if (err instanceof HTTPException) return err.getResponse();
    let known = toOspreyError(err, log);
    if (!known) {
      const requestId = randomUUID();
      log.error({ err, requestId, path: c.req.path }, 'request failed');
      known = new OspreyError('unavailable', `internal error (request id ${requestId})`);
      return respond(c, 500, known);
    }
    return respond(c, httpStatusOf[known.kind], known);
  };
}

function respond(c: Context, status: number, err: OspreyError): Response | Promise<Response> {
  const path = c.req.path;
  const headers: Record<string, string> = {};
  if (err.details.retryAfterSec) headers['retry-after'] = String(err.details.retryAfterSec);
  if (path.startsWith('/x/')) return c.json({ status, msg: err.message }, status as 400, headers);
  if (path.startsWith('/api/')) return c.json({ error: err.kind, message: err.message }, status as 400, headers);
  if (path.startsWith('/embed')) return c.text(err.message, status as 400, headers);
  return c.html(errorPage(status, err.message), status as 400, headers);
}
