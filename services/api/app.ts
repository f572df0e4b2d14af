import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import type { Logger } from '../kit/log.js';
import type { ClassicKeyCache } from './classic-keys.js';
import { onApiError, errorResponse } from './errors.js';
import { classicHandler } from './routes/classic.js';
import { ezHandler, type EzDeps } from './routes/ez.js';

export interface ApiAppDeps extends EzDeps {
  classicKeys: ClassicKeyCache;
  log: Logger;
}

/** The Hono part of the api: everything except the StatHat ingest routes. */
export function buildApp(deps: ApiAppDeps) {
  const app = new Hono();
  app.get('/healthz', (c) => c.text('ok\n'));
  app.notFound((c) => errorResponse(c, 404, `no such endpoint: ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError(onApiError(deps.log));
  return app;
}

/**
 * The public StatHat ingest edge, every route in one place. `/ez` (EZ API) and `/c`, `/v`
 * (classic API) are plain node:http handlers (the hot path: no Request/Response objects
 * per call); all other routes go through the Hono app.
 */
export function buildApi(deps: ApiAppDeps): RequestListener {
  const app = buildApp(deps);
  const hono = getRequestListener(app.fetch);
  const ez = ezHandler(deps);
  const count = classicHandler(deps, '/c');
  const value = classicHandler(deps, '/v');
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    if (path === '/ez' || path === '/ez/') return ez(req, res);
    if (path === '/c' || path === '/c/') return count(req, res);
    if (path === '/v' || path === '/v/') return value(req, res);
    void hono(req, res);
  };
}
