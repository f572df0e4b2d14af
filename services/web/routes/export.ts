import { Hono } from 'hono';
import { OspreyError } from '../../kit/errors.js';
import { DEFAULT_STATHAT_T } from '../constants.js';
import type { WebAppDeps } from '../deps.js';
import type { WebEnv } from '../env.js';
import { querySeries } from '../graph.js';
import { resolveRange } from '../ranges.js';
import { findStatByName, getStats, listStats, statId, trashStat, type StatRow } from '../store/stats.js';
import { accountOfAccessToken } from '../store/tokens.js';

// StatHat's export API, in its documented shapes. Ids are strings, as StatHat's were, so
// clients that build /data/:id URLs from them keep working.

export const STATLIST_PAGE = 1000;
export const MAX_DATA_STATS = 10;

const statJson = (s: StatRow) => ({ id: String(s.id), name: s.name, public: s.public, counter: s.kind === 'counter' });

export function exportRoutes(deps: WebAppDeps) {
  const { pool } = deps;
  return new Hono<WebEnv>()
    .use('/:token/*', async (c, next) => {
      const accountId = await accountOfAccessToken(pool, c.req.param('token') ?? '');
      if (accountId === undefined) throw new OspreyError('unauthenticated', 'unknown or revoked access token');
      c.set('accountId', accountId);
      await next();
    })
    .get('/:token/statlist', async (c) => {
      const offset = Number(c.req.query('offset') ?? 0);
      if (!Number.isInteger(offset) || offset < 0) throw new OspreyError('invalid', 'offset must be a whole number');
      const { stats } = await listStats(pool, c.get('accountId'), { offset, limit: STATLIST_PAGE });
      return c.json(stats.map(statJson));
    })
    .get('/:token/stat', async (c) => {
      const name = c.req.query('name');
      if (!name) throw new OspreyError('invalid', 'name is required');
      return c.json(statJson(await findStatByName(pool, c.get('accountId'), name)));
    })
    .get('/:token/data/*', async (c) => {
      const rest = c.req.path.split('/data/')[1] ?? '';
      const ids = rest.split('/').filter(Boolean).map((s) => statId(decodeURIComponent(s)));
      if (ids.length === 0) throw new OspreyError('invalid', 'give at least one stat id: /x/:token/data/:id[/:id...]');
      if (ids.length > MAX_DATA_STATS) throw new OspreyError('invalid', `at most ${MAX_DATA_STATS} stats per call`);
      const startRaw = c.req.query('start');
      if (startRaw !== undefined && !/^\d{1,10}$/.test(startRaw)) throw new OspreyError('invalid', 'start must be a unix time in seconds');
      const range = resolveRange({ t: c.req.query('t') ?? DEFAULT_STATHAT_T, from: startRaw === undefined ? undefined : Number(startRaw) }, deps.now());
      const stats = await getStats(pool, c.get('accountId'), ids);
      const answer = await querySeries(deps.graph, c.get('accountId'), stats, range);
      return c.json(
        answer.stats.map((s) => ({
          name: s.name,
          timeframe: range.timeframe!.label,
          // A time with no data for a value or gauge is left out rather than shown as 0.
          points: s.times.flatMap((time, i) => (s.values[i] === null ? [] : [{ time, value: s.values[i] }])),
        })),
      );
    })
    .delete('/:token/stats/:id', async (c) => {
      await trashStat(pool, c.get('accountId'), statId(c.req.param('id')));
      return c.json({ status: 200, msg: 'stat deleted' });
    });
}
