import { Hono } from 'hono';
import { isPageTimeframe } from '../../graphing/timeframe.js';
import { viewerOf } from '../auth/sessions.js';
import type { WebAppDeps } from '../deps.js';
import { embedPath } from '../embed-sign.js';
import type { WebEnv } from '../env.js';
import { dashboardStatIds } from '../store/dashboard.js';
import { accountKeys } from '../store/keys.js';
import { getStat, listStats, parseKind, restoreStat, setPublic, statId, trashStat } from '../store/stats.js';
import { StatPage, StatsListPage, TrashPage } from '../views/stats.js';

export function pageTimeframe(tf: string | undefined): string {
  return tf && isPageTimeframe(tf) ? tf : '1d';
}

export function statsPages(deps: WebAppDeps) {
  const { pool } = deps;
  return new Hono<WebEnv>()
    .get('/', async (c) => {
      const viewer = viewerOf(c);
      const q = (c.req.query('q') ?? '').trim().slice(0, 255);
      const kind = parseKind(c.req.query('kind') || undefined);
      const [{ stats, total }, keys] = await Promise.all([listStats(pool, viewer.accountId, { q, kind }), accountKeys(pool, viewer.accountId)]);
      return c.html(
        <StatsListPage viewer={viewer} csrf={c.get('csrf')} stats={stats} total={total} q={q} kind={kind} ezkey={keys.ezkey} apiUrl={deps.apiPublicUrl} welcome={c.req.query('welcome') === '1'} />,
      );
    })
    .get('/trash', async (c) => {
      const viewer = viewerOf(c);
      const { stats } = await listStats(pool, viewer.accountId, { deleted: true });
      return c.html(<TrashPage viewer={viewer} csrf={c.get('csrf')} stats={stats} />);
    })
    .get('/:id', async (c) => {
      const viewer = viewerOf(c);
      const stat = await getStat(pool, viewer.accountId, statId(c.req.param('id')));
      const onDashboard = (await dashboardStatIds(pool, viewer.accountId)).includes(stat.id);
      const origin = new URL(c.req.url).origin;
      const img = embedPath(deps.secret, [stat.id], { anyPrivate: !stat.public, tf: 'week', w: 400, h: 150 });
      const snippet = `<img src="${origin}${img.replaceAll('&', '&amp;')}" width="400" height="150" alt="${stat.name.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`)}">`;
      return c.html(<StatPage viewer={viewer} csrf={c.get('csrf')} stat={stat} tf={pageTimeframe(c.req.query('tf'))} onDashboard={onDashboard} embedUrl={img} embedSnippet={snippet} />);
    })
    .post('/:id/delete', async (c) => {
      const id = statId(c.req.param('id'));
      await trashStat(pool, viewerOf(c).accountId, id);
      return c.redirect('/stats/trash', 303);
    })
    .post('/:id/restore', async (c) => {
      const id = statId(c.req.param('id'));
      await restoreStat(pool, viewerOf(c).accountId, id);
      return c.redirect(`/stats/${id}`, 303);
    })
    .post('/:id/public', async (c) => {
      const id = statId(c.req.param('id'));
      const body = await c.req.parseBody();
      await setPublic(pool, viewerOf(c).accountId, id, body.public === '1');
      return c.redirect(`/stats/${id}`, 303);
    });
}
