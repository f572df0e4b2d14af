import { Hono } from 'hono';
import { viewerOf } from '../auth/sessions.js';
import type { WebAppDeps } from '../deps.js';
import type { WebEnv } from '../env.js';
import { addToDashboard, dashboardStatIds, removeFromDashboard } from '../store/dashboard.js';
import { getStats, statId } from '../store/stats.js';
import { DashboardPage } from '../views/stats.js';
import { pageTimeframe } from './stats.js';

export function dashboardPages(deps: WebAppDeps) {
  const { pool } = deps;
  return new Hono<WebEnv>()
    .get('/', async (c) => {
      const viewer = viewerOf(c);
      const stats = await getStats(pool, viewer.accountId, await dashboardStatIds(pool, viewer.accountId));
      return c.html(<DashboardPage viewer={viewer} csrf={c.get('csrf')} stats={stats} tf={pageTimeframe(c.req.query('tf'))} />);
    })
    .post('/:id/add', async (c) => {
      await addToDashboard(pool, viewerOf(c).accountId, statId(c.req.param('id')));
      return c.redirect('/dashboard', 303);
    })
    .post('/:id/remove', async (c) => {
      await removeFromDashboard(pool, viewerOf(c).accountId, statId(c.req.param('id')));
      return c.redirect('/dashboard', 303);
    });
}
