import { OpenAPIHono, createRoute, z } from '@hono/zod-openapi';
import { getCookie } from 'hono/cookie';
import type { MiddlewareHandler } from 'hono';
import { OspreyError } from '../../kit/errors.js';
import { SESSION_COOKIE, findViewer } from '../auth/sessions.js';
import { sameSecret } from '../auth/secrets.js';
import type { WebAppDeps } from '../deps.js';
import type { WebEnv } from '../env.js';
import { querySeries } from '../graph.js';
import { resolveRange, type RangeParams } from '../ranges.js';
import { getStat, getStats, listStats, restoreStat, statId, trashStat, type StatRow } from '../store/stats.js';
import { accountOfAccessToken, createToken, listTokens, revokeToken } from '../store/tokens.js';
import { comparedIds } from './analyze.js';
import { ApiDocsPage } from '../views/api-docs.js';

// The native REST API. Every route is declared with zod schemas; the OpenAPI document at
// /api/v1/openapi.json is generated from them, so it cannot drift from what is served.
// Callers: bearer access tokens, or the web app's own pages with their session cookie
// (then a state-changing call must carry the session's CSRF token in x-csrf-token).

const ErrorSchema = z.object({ error: z.string().openapi({ example: 'not_found' }), message: z.string() }).openapi('Error');

const StatSchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    kind: z.enum(['counter', 'value', 'gauge', 'set']),
    public: z.boolean(),
    createdAt: z.string().openapi({ format: 'date-time' }),
    deletedAt: z.string().nullable().openapi({ format: 'date-time' }),
  })
  .openapi('Stat');

const nullableNums = z.array(z.number().nullable());
const SummarySchema = z
  .object({ min: z.number().nullable(), max: z.number().nullable(), mean: z.number().nullable(), total: z.number(), stddev: z.number().nullable(), count: z.number().int(), samples: z.number() })
  .openapi('Summary');
const SeriesSchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    kind: z.enum(['counter', 'value', 'gauge', 'set']),
    times: z.array(z.number().int()).openapi({ description: 'unix seconds' }),
    values: nullableNums.openapi({ description: 'null where a value or gauge has no data' }),
    comparison: nullableNums.nullable().openapi({ description: 'the same range compareOffsetSec earlier, on the same times' }),
    p50: nullableNums.nullable(),
    p90: nullableNums.nullable(),
    p99: nullableNums.nullable(),
    summary: SummarySchema.nullable(),
  })
  .openapi('Series');
const SeriesAnswerSchema = z
  .object({ from: z.number().int(), to: z.number().int(), stepSec: z.number().int(), resolution: z.string(), compareOffsetSec: z.number().int(), stats: z.array(SeriesSchema) })
  .openapi('SeriesAnswer');
const TokenSchema = z
  .object({ id: z.number().int(), name: z.string(), prefix: z.string(), createdAt: z.string(), revokedAt: z.string().nullable() })
  .openapi('Token');

const IdParam = z.object({ id: z.string().regex(/^\d+$/).openapi({ param: { name: 'id', in: 'path' }, example: '12' }) });
const bool = z.enum(['0', '1', 'true', 'false']).optional();
const RangeQuerySchema = z.object({
  tf: z.enum(['1h', '1d', '1w', '1M', '3M', '1y']).optional().openapi({ description: 'a page time frame (default 1d)' }),
  t: z.string().optional().openapi({ description: "StatHat's duration+interval, e.g. 1w3h; overrides tf", example: '1d1h' }),
  from: z.coerce.number().int().min(0).optional().openapi({ description: 'unix seconds' }),
  to: z.coerce.number().int().min(0).optional().openapi({ description: 'unix seconds' }),
  compare: z.enum(['0', '1', 'true', 'false', 'day', 'week', 'month']).optional().openapi({ description: '1: the previous period; or day/week/month earlier' }),
  percentiles: bool.openapi({ description: 'p50/p90/p99 for value stats' }),
  max_points: z.coerce.number().int().min(2).max(10_000).optional(),
});

const json = <S extends z.ZodType>(schema: S, description: string) => ({ content: { 'application/json': { schema } }, description });
const errors = {
  400: json(ErrorSchema, 'bad request'),
  401: json(ErrorSchema, 'no valid token'),
  404: json(ErrorSchema, 'not found (or not yours)'),
};
const security = [{ bearer: [] }];

const statOut = (s: StatRow) => ({ ...s, createdAt: s.createdAt.toISOString(), deletedAt: s.deletedAt ? s.deletedAt.toISOString() : null });
const yes = (v: string | undefined) => v === '1' || v === 'true';
const rangeOf = (q: z.infer<typeof RangeQuerySchema>): RangeParams => ({ tf: q.tf, t: q.t, from: q.from, to: q.to, compare: q.compare, percentiles: yes(q.percentiles), maxPoints: q.max_points });

const DOC_INFO = {
  openapi: '3.1.0',
  info: { title: 'Osprey REST API', version: '1', description: 'Read your stats and series; manage tokens. Authenticate with Authorization: Bearer <access token>.' },
  servers: [{ url: '/api/v1' }],
};

export function apiV1Routes(deps: WebAppDeps) {
  const { pool } = deps;
  const app = new OpenAPIHono<WebEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const msg = result.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ');
        throw new OspreyError('invalid', msg);
      }
    },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: 'an access token from Settings' });

  const authenticate: MiddlewareHandler<WebEnv> = async (c, next) => {
    const header = c.req.header('authorization');
    if (header) {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      const accountId = m ? await accountOfAccessToken(pool, m[1]) : undefined;
      if (accountId === undefined) throw new OspreyError('unauthenticated', 'unknown or revoked access token');
      c.set('accountId', accountId);
      return next();
    }
    const viewer = await findViewer(pool, getCookie(c, SESSION_COOKIE));
    if (!viewer) throw new OspreyError('unauthenticated', 'send Authorization: Bearer <access token>');
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && !sameSecret(c.req.header('x-csrf-token') ?? '', viewer.csrf)) {
      throw new OspreyError('forbidden', 'x-csrf-token is missing or wrong');
    }
    c.set('accountId', viewer.accountId);
    return next();
  };
  for (const p of ['/stats', '/stats/*', '/series', '/tokens', '/tokens/*']) app.use(p, authenticate);

  app.openapi(
    createRoute({
      method: 'get',
      path: '/stats',
      summary: 'List or search stats',
      security,
      request: {
        query: z.object({
          q: z.string().max(255).optional().openapi({ description: 'substring of the name' }),
          kind: z.enum(['counter', 'value', 'gauge', 'set']).optional(),
          deleted: bool.openapi({ description: '1: the trash instead' }),
          offset: z.coerce.number().int().min(0).optional(),
          limit: z.coerce.number().int().min(1).max(1000).optional(),
        }),
      },
      responses: { 200: json(z.object({ stats: z.array(StatSchema), total: z.number().int() }), 'stats, by name'), 400: errors[400], 401: errors[401] },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const { stats, total } = await listStats(pool, c.get('accountId'), { q: q.q, kind: q.kind, deleted: yes(q.deleted), offset: q.offset, limit: q.limit ?? 100 });
      return c.json({ stats: stats.map(statOut), total }, 200);
    },
  );

  app.openapi(
    createRoute({ method: 'get', path: '/stats/{id}', summary: 'Get a stat', security, request: { params: IdParam }, responses: { 200: json(StatSchema, 'the stat'), 401: errors[401], 404: errors[404] } }),
    async (c) => c.json(statOut(await getStat(pool, c.get('accountId'), statId(c.req.valid('param').id))), 200),
  );

  app.openapi(
    createRoute({ method: 'delete', path: '/stats/{id}', summary: 'Move a stat to the trash (restorable for 48 hours)', security, request: { params: IdParam }, responses: { 200: json(StatSchema, 'the stat, now in the trash'), 401: errors[401], 404: errors[404] } }),
    async (c) => {
      const id = statId(c.req.valid('param').id);
      await trashStat(pool, c.get('accountId'), id);
      return c.json(statOut(await getStat(pool, c.get('accountId'), id, { includeTrash: true })), 200);
    },
  );

  app.openapi(
    createRoute({ method: 'post', path: '/stats/{id}/restore', summary: 'Restore a stat from the trash', security, request: { params: IdParam }, responses: { 200: json(StatSchema, 'the restored stat'), 401: errors[401], 404: errors[404] } }),
    async (c) => {
      const id = statId(c.req.valid('param').id);
      await restoreStat(pool, c.get('accountId'), id);
      return c.json(statOut(await getStat(pool, c.get('accountId'), id)), 200);
    },
  );

  app.openapi(
    createRoute({ method: 'get', path: '/stats/{id}/series', summary: "A stat's series, with its comparison, percentiles and summary", security, request: { params: IdParam, query: RangeQuerySchema }, responses: { 200: json(SeriesAnswerSchema, 'the series'), 400: errors[400], 401: errors[401], 404: errors[404] } }),
    async (c) => {
      const stat = await getStat(pool, c.get('accountId'), statId(c.req.valid('param').id));
      const range = resolveRange(rangeOf(c.req.valid('query')), deps.now());
      return c.json(await querySeries(deps.graph, c.get('accountId'), [stat], range), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/stats/{id}/summary',
      summary: "A stat's summary over a range (min, max, mean, total, std dev, points)",
      security,
      request: { params: IdParam, query: RangeQuerySchema },
      responses: { 200: json(z.object({ id: z.number().int(), name: z.string(), from: z.number().int(), to: z.number().int(), summary: SummarySchema.nullable() }), 'the summary'), 400: errors[400], 401: errors[401], 404: errors[404] },
    }),
    async (c) => {
      const stat = await getStat(pool, c.get('accountId'), statId(c.req.valid('param').id));
      const range = resolveRange(rangeOf(c.req.valid('query')), deps.now());
      const answer = await querySeries(deps.graph, c.get('accountId'), [stat], { ...range, compareOffsetSec: 0 });
      return c.json({ id: stat.id, name: stat.name, from: answer.from, to: answer.to, summary: answer.stats[0]?.summary ?? null }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/series',
      summary: 'Up to 3 stats on the same times (the analyze page)',
      security,
      request: { query: RangeQuerySchema.extend({ ids: z.string().regex(/^\d+(,\d+){0,2}$/).openapi({ description: 'comma-separated stat ids, at most 3', example: '1,2' }) }) },
      responses: { 200: json(SeriesAnswerSchema, 'the series'), 400: errors[400], 401: errors[401], 404: errors[404] },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const stats = await getStats(pool, c.get('accountId'), comparedIds([q.ids]));
      return c.json(await querySeries(deps.graph, c.get('accountId'), stats, resolveRange(rangeOf(q), deps.now())), 200);
    },
  );

  const tokenOut = (t: { id: number; name: string; prefix: string; createdAt: Date; revokedAt: Date | null }) => ({ id: t.id, name: t.name, prefix: t.prefix, createdAt: t.createdAt.toISOString(), revokedAt: t.revokedAt?.toISOString() ?? null });

  app.openapi(
    createRoute({ method: 'get', path: '/tokens', summary: 'List access tokens (never the tokens themselves)', security, responses: { 200: json(z.object({ tokens: z.array(TokenSchema) }), 'tokens'), 401: errors[401] } }),
    async (c) => c.json({ tokens: (await listTokens(pool, 'access_tokens', c.get('accountId'))).map(tokenOut) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/tokens',
      summary: 'Create an access token; the answer is the only time the token is shown',
      security,
      request: { body: { content: { 'application/json': { schema: z.object({ name: z.string().min(1).max(100) }) } }, required: true } },
      responses: { 201: json(TokenSchema.extend({ token: z.string() }), 'the new token'), 400: errors[400], 401: errors[401] },
    }),
    async (c) => {
      const t = await createToken(pool, 'access_tokens', c.get('accountId'), c.req.valid('json').name);
      return c.json({ ...tokenOut(t), token: t.token }, 201);
    },
  );

  app.openapi(
    createRoute({ method: 'delete', path: '/tokens/{id}', summary: 'Revoke an access token', security, request: { params: IdParam }, responses: { 200: json(z.object({ revoked: z.number().int() }), 'revoked'), 401: errors[401], 404: errors[404] } }),
    async (c) => {
      const id = Number(c.req.valid('param').id);
      await revokeToken(pool, 'access_tokens', c.get('accountId'), id);
      return c.json({ revoked: id }, 200);
    },
  );

  app.doc31('/openapi.json', DOC_INFO);
  app.get('/docs', (c) => c.html(<ApiDocsPage doc={app.getOpenAPI31Document(DOC_INFO) as never} />));
  return app;
}

export { RangeQuerySchema };
