import { Code } from '@connectrpc/connect';

/** What went wrong, in domain terms; each transport maps it in one place. */
export type ErrorKind =
  | 'invalid' // the caller sent something wrong
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'rate_limited'
  | 'unavailable'; // try again later, nothing was applied

export class OspreyError extends Error {
  override name = 'OspreyError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly details: { retryAfterSec?: number } = {},
  ) {
    super(message);
  }
}

export const connectCodeOf: Record<ErrorKind, Code> = {
  invalid: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  forbidden: Code.PermissionDenied,
  not_found: Code.NotFound,
  conflict: Code.AlreadyExists,
  too_large: Code.ResourceExhausted,
  rate_limited: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

export const httpStatusOf: Record<ErrorKind, 400 | 401 | 403 | 404 | 409 | 413 | 429 | 503> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
};

/** mysql2/net error codes that mean "the database cannot be reached now", not "the query is wrong". */
const DATABASE_DOWN_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'POOL_CLOSED',
]);

/**
 * A database outage as the caller should see it: 503 / Unavailable with a message that says
 * so (and that nothing changed), instead of a 500. Undefined for any other error.
 */
export function databaseUnavailable(err: unknown): OspreyError | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !DATABASE_DOWN_CODES.has(code)) return undefined;
  return new OspreyError('unavailable', 'the database is unavailable; nothing was changed, try again shortly', { retryAfterSec: 5 });
}
