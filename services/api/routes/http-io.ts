import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../kit/log.js';
import { httpErrorOf } from '../errors.js';

// What the plain node:http routes (/ez, /c, /v) share: parameters from the query string
// and a form body, a body read with a size limit, and StatHat's answer shapes. Nothing here
// allocates per request beyond what the request itself needs (see docs/perf.md).

export type Params = { get(name: string): string | null };
export const NO_PARAMS: Params = { get: () => null };
export const OK_BODY = JSON.stringify({ status: 200, msg: 'ok' });

/** The query string of `url` as parameters (NO_PARAMS when there is none). */
export function queryOf(url: string): Params {
  const q = url.indexOf('?');
  return q >= 0 ? new URLSearchParams(url.slice(q + 1)) : NO_PARAMS;
}

/** A form body's fields, then the query string's: form fields win over the same names in the query. */
export function formParams(body: string, query: Params): Params {
  if (query === NO_PARAMS) return new URLSearchParams(body);
  const form = new URLSearchParams(body);
  return { get: (name) => form.get(name) ?? query.get(name) };
}

export function sendJson(res: ServerResponse, status: number, body: string, headers?: Record<string, string>): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers }).end(body);
}

/** Success as StatHat answers it: 204, or 200 {"status":200,"msg":"ok"} with vb=1. */
export function sendOk(res: ServerResponse, verbose: boolean): void {
  if (verbose) sendJson(res, 200, OK_BODY);
  else res.writeHead(204).end();
}

export function sendError(res: ServerResponse, status: number, msg: string, headers?: Record<string, string>): void {
  sendJson(res, status, JSON.stringify({ status, msg }), headers);
}

/** Any error as a StatHat error answer (the mapping itself is in ../errors.ts). */
export function failWith(log: Logger) {
  return (res: ServerResponse, err: unknown): void => {
    const e = httpErrorOf(err, log);
    if (!res.headersSent) sendError(res, e.status, e.msg, e.headers);
  };
}

/**
 * Reads a request body of at most `maxBytes` and hands it over as bytes. A larger body
 * is answered 413 with StatHat's error shape as soon as it is known to be too large (from
 * Content-Length before any byte is read, else when the limit is crossed): nothing beyond
 * the limit is buffered, and the connection is closed after the answer, so a client cannot
 * keep one open by streaming an endless body.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, maxBytes: number, onBody: (body: Buffer) => void): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    refuseBody(req, res, maxBytes);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let refused = false;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= maxBytes) chunks.push(chunk);
    else if (!refused) {
      refused = true;
      chunks.length = 0;
      refuseBody(req, res, maxBytes);
    }
  });
  req.on('error', () => {});
  req.on('end', () => {
    if (refused) return;
    onBody(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
  });
}

function refuseBody(req: IncomingMessage, res: ServerResponse, maxBytes: number): void {
  sendError(res, 413, `body is larger than ${maxBytes} bytes`, { connection: 'close' });
  // Stop buffering; what the client still sends is read and dropped until the socket closes.
  req.removeAllListeners('data');
  req.resume();
}
