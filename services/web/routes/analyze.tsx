import { Hono } from 'hono';
import { viewerOf } from '../auth/sessions.js';
import type { WebAppDeps } from '../deps.js';
import type { WebEnv } from '../env.js';
import { getStats, listStats, statId } from '../store/stats.js';
import { AnalyzePage } from '../views/stats.js';
import { pageTimeframe } from './stats.js';

export const MAX_COMPARED = 3;

/** `s` repeated (or comma separated), empty values ignored, duplicates dropped, at most 3. */
export function comparedIds(values: string[]): number[] {
  const ids = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean).map(statId);
  return [...new Set(ids)].slice(0, MAX_COMPARED);
}

export function analyzePages(deps: WebAppDeps) {
  return new Hono<WebEnv>().get('/', async (c) => {
    const viewer = viewerOf(c);
    const chosen = await getStats(deps.pool, viewer.accountId, comparedIds(c.req.queries('s') ?? []));
    const { stats: all } = await listStats(deps.pool, viewer.accountId);
    return c.html(<AnalyzePage viewer={viewer} csrf={c.get('csrf')} all={all} chosen={chosen} tf={pageTimeframe(c.req.query('tf'))} />);
  });
}
