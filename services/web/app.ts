import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';
import { OspreyError } from '../kit/errors.js';
import { checkCsrf, loadViewer, requireLogin } from './auth/sessions.js';
import type { WebAppDeps } from './deps.js';
import type { WebEnv } from './env.js';
import { onWebError } from './errors.js';
import { analyzePages } from './routes/analyze.js';
import { apiV1Routes } from './routes/api-v1.js';
import { assetRoutes, embedScript, loadAssets } from './routes/assets.js';
import { authPages } from './routes/auth.js';
import { dashboardPages } from './routes/dashboard.js';
import { embedRoutes } from './routes/embed.js';
import { exportRoutes } from './routes/export.js';
import { settingsPages } from './routes/settings.js';
import { statsPages } from './routes/stats.js';

/**
 * The web app: wiring only. Pages get the session and CSRF middleware; /api/v1 and /x
 * authenticate with tokens; embeds and assets are public.
 */
export function buildApp(deps: WebAppDeps) {
  const app = new Hono<WebEnv>();
  const assets = loadAssets();
  const session = loadViewer(deps.pool, { ttlHours: deps.sessionTtlHours, secureCookies: deps.secureCookies });

  // Pages: every one loads the viewer and checks the CSRF token of a POST; only sign-up
  // and log-in are open to anonymous visitors.
  const open = ['/', '/signup', '/login', '/logout'];
  const closed = ['/stats', '/stats/*', '/analyze', '/dashboard', '/dashboard/*', '/settings', '/settings/*'];
  for (const p of [...open, ...closed]) app.use(p, secureHeaders({ contentSecurityPolicy: PAGE_CSP }), session, checkCsrf);
  for (const p of closed) app.use(p, requireLogin);

  app.route('/', authPages(deps));
  app.route('/stats', statsPages(deps));
  app.route('/analyze', analyzePages(deps));
  app.route('/dashboard', dashboardPages(deps));
  app.route('/settings', settingsPages(deps));
  app.route('/api/v1', apiV1Routes(deps));
  app.route('/x', exportRoutes(deps));
  app.route('/embed', embedRoutes(deps));
  app.route('/embed.js', embedScript(assets));
  app.route('/assets', assetRoutes(assets));
  app.get('/healthz', (c) => c.text('ok\n'));
  const onError = onWebError(deps.log);
  app.notFound((c) => onError(new OspreyError('not_found', 'no such page'), c));
  app.onError(onError);
  return app;
}

/** Scripts and styles from this origin only: a stat name can never become code. */
const PAGE_CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};
