import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import { GraphService } from '../../gen/osprey/v1/graphing_pb.js';
import { findAccountByEzkey } from '../kit/accounts.js';
import { connectDatabase } from '../kit/db/client.js';
import { createMetrics } from '../kit/metrics.js';
import { createBalancedClient, type BalancedTransport } from '../kit/rpc/client.js';
import { createTestDatabase, testBaseConfig, TEST_SERVICE_TOKEN, type TestDatabase } from '../kit/testing/db.js';
import { build as buildGraphing, type GraphingReplica } from '../graphing/server.js';
import { TIMEFRAME_GRAMMAR } from '../graphing/timeframe.js';
import { buildApp } from './app.js';
import { sha256Hex } from './auth/secrets.js';
import { embedSignature } from './embed-sign.js';
import { SessionClient } from './testing/session-client.js';

// The web app through app.request(), against a real graphing replica on a real MariaDB.
// Rollups are written straight into MySQL so every number is known.

const log = pino({ level: 'silent' });
const SECRET = 'web-test-secret-0123456789';
const MIN = 60;
let tdb: TestDatabase;
let graphing: GraphingReplica;
let transport: BalancedTransport;
let app: ReturnType<typeof buildApp>;
const request = (path: string, init?: RequestInit) => app.request(path, init);

beforeAll(async () => {
  tdb = await createTestDatabase();
  graphing = await buildGraphing({
    config: { ...testBaseConfig(tdb.url), ROLLUP_1M_RETENTION_DAYS: 30, ROLLUP_1H_RETENTION_DAYS: 730, RENDER_CONCURRENCY: 2, RENDER_QUEUE_MAX: 64, QUERY_MAX_STATS: 20 },
    log,
    database: connectDatabase(tdb.url),
    metrics: createMetrics('graphing'),
  });
  const balanced = createBalancedClient(GraphService, { pool: tdb.database.pool, service: 'graphing', serviceToken: TEST_SERVICE_TOKEN, log });
  transport = balanced.transport;
  app = buildApp({ pool: tdb.database.pool, graph: balanced.client, log, secret: SECRET, sessionTtlHours: 24, secureCookies: false, apiPublicUrl: 'http://localhost:8088', now: Date.now });
});

afterAll(async () => {
  transport?.close();
  await graphing?.stop();
  await tdb?.drop();
});

async function signUp(email: string): Promise<SessionClient & { accountId: number }> {
  const client = new SessionClient(request);
  await client.page('/signup');
  const res = await client.post('/signup', { email, password: 'correct horse battery' });
  expect(res.status).toBe(303);
  await client.page('/stats');
  const [rows] = await tdb.database.pool.query<RowDataPacket[]>('SELECT account_id FROM users WHERE email = ?', [email]);
  return Object.assign(client, { accountId: Number(rows[0].account_id) });
}

async function createStat(accountId: number, name: string, kind: 1 | 2 | 3 | 4, opts: { public?: boolean } = {}): Promise<number> {
  const [res] = await tdb.database.pool.query<ResultSetHeader>('INSERT INTO stats (account_id, name, kind, public) VALUES (?, ?, ?, ?)', [accountId, name, kind, opts.public ?? false]);
  return res.insertId;
}

/** One sample of `value` in each of the last `minutes` whole minutes. */
async function fillMinutes(statId: number, minutes: number, value: (i: number) => number): Promise<number[]> {
  const now = Math.floor(Date.now() / 1000 / MIN) * MIN;
  const rows = Array.from({ length: minutes }, (_, i) => {
    const bucket = now - (minutes - i) * MIN;
    const v = value(i);
    return [statId, bucket, 1, v, v, v, v * v, v, bucket * 1000];
  });
  await tdb.database.pool.query('INSERT INTO rollups_1m (stat_id, bucket, count, sum, min, max, sumsq, last_value, last_time) VALUES ?', [rows]);
  return rows.map((r) => r[3]);
}

async function newAccessToken(client: SessionClient): Promise<string> {
  await client.page('/settings');
  const res = await client.post('/settings/tokens', { name: 'export' });
  expect(res.status).toBe(201);
  const html = await res.text();
  return /id="new-token">([^<]+)</.exec(html)![1];
}

describe('sign up, log in, log out', () => {
  it('creates an account and a user, stores the password with scrypt and the session hashed, and shows the ezkey', async () => {
    const c = new SessionClient(request);
    await c.page('/signup');
    const res = await c.post('/signup', { email: 'New@Example.com', password: 'correct horse battery' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/stats?welcome=1');
    const cookie = c.lastSetCookies.find((l) => l.startsWith('osprey_session='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    const sessionId = c.cookies.get('osprey_session')!;
    const [users] = await tdb.database.pool.query<RowDataPacket[]>("SELECT u.password_hash, a.ezkey FROM users u JOIN accounts a ON a.id = u.account_id WHERE u.email = 'new@example.com'");
    expect(String(users[0].password_hash)).toMatch(/^scrypt\$32768\$8\$1\$/);
    const [sessions] = await tdb.database.pool.query<RowDataPacket[]>('SELECT id_hash FROM sessions');
    expect(sessions.map((s) => s.id_hash)).toContain(sha256Hex(sessionId));
    expect(sessions.map((s) => s.id_hash)).not.toContain(sessionId);
    const page = await c.page('/stats?welcome=1');
    expect(page.html).toContain(String(users[0].ezkey));
    expect(page.html).toContain('http://localhost:8088/ez');
  });

  it('refuses a second account for the same email, a short password, and a bad email', async () => {
    const c = new SessionClient(request);
    await c.page('/signup');
    await c.post('/signup', { email: 'twice@example.com', password: 'long enough pw' });
    const again = new SessionClient(request);
    await again.page('/signup');
    expect((await again.post('/signup', { email: 'twice@example.com', password: 'long enough pw' })).status).toBe(409);
    expect((await again.post('/signup', { email: 'short@example.com', password: 'short' })).status).toBe(400);
    expect((await again.post('/signup', { email: 'not-an-email', password: 'long enough pw' })).status).toBe(400);
  });

  it('logs in with the right password only, and logs out', async () => {
    const c = new SessionClient(request);
    await c.page('/signup');
    await c.post('/signup', { email: 'login@example.com', password: 'the right password' });
    const other = new SessionClient(request);
    await other.page('/login');
    const wrong = await other.post('/login', { email: 'login@example.com', password: 'the wrong password' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('wrong email or password');
    const ok = await other.post('/login', { email: 'LOGIN@example.com', password: 'the right password', next: '/settings' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/settings');
    expect((await other.page('/settings')).status).toBe(200);
    await other.post('/logout');
    const after = await other.get('/settings');
    expect(after.status).toBe(302);
    expect(after.headers.get('location')).toBe('/login?next=%2Fsettings');
  });

  it('never redirects to another site after logging in', async () => {
    const c = new SessionClient(request);
    await c.page('/signup');
    await c.post('/signup', { email: 'next@example.com', password: 'the right password' });
    const other = new SessionClient(request);
    await other.page('/login');
    const res = await other.post('/login', { email: 'next@example.com', password: 'the right password', next: '//evil.example/' });
    expect(res.headers.get('location')).toBe('/stats');
  });
});

describe('CSRF', () => {
  it('refuses forms without the token or with another session\'s token', async () => {
    const anon = new SessionClient(request);
    await anon.page('/signup');
    expect((await anon.post('/signup', { email: 'csrf@example.com', password: 'long enough pw' }, null)).status).toBe(403);
    expect((await anon.post('/signup', { email: 'csrf@example.com', password: 'long enough pw' }, 'x'.repeat(32))).status).toBe(403);

    const a = await signUp('csrf-a@example.com');
    const b = await signUp('csrf-b@example.com');
    expect((await a.post('/settings/tokens', { name: 'x' }, null)).status).toBe(403);
    expect((await a.post('/settings/tokens', { name: 'x' }, b.csrf)).status).toBe(403);
    expect((await a.post('/settings/ezkey/rotate', {}, null)).status).toBe(403);
    expect((await a.post('/settings/tokens', { name: 'x' })).status).toBe(201);
  });

  it('asks the API for x-csrf-token when a session cookie (not a bearer token) changes something', async () => {
    const a = await signUp('csrf-api@example.com');
    const id = await createStat(a.accountId, 'csrf api stat', 1);
    expect((await a.json(`/api/v1/stats/${id}`, { method: 'DELETE' })).status).toBe(403);
    expect((await a.json(`/api/v1/stats/${id}`, { method: 'DELETE', headers: { 'x-csrf-token': a.csrf } })).status).toBe(200);
  });
});

describe('stats list and stat page', () => {
  it('lists, searches and filters by kind, escaping names', async () => {
    const a = await signUp('list@example.com');
    await createStat(a.accountId, 'page views', 1);
    await createStat(a.accountId, 'load time', 2);
    await createStat(a.accountId, '<script>alert(1)</script>', 1);
    const all = await a.page('/stats');
    expect(all.html).toContain('page views');
    expect(all.html).toContain('load time');
    expect(all.html).not.toContain('<script>alert(1)</script>');
    expect(all.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const search = await a.page('/stats?q=view');
    expect(search.html).toContain('page views');
    expect(search.html).not.toContain('load time');
    const values = await a.page('/stats?kind=value');
    expect(values.html).toContain('load time');
    expect(values.html).not.toContain('page views');
    expect((await a.page('/stats?q=%25')).html).toContain('No stats match');
    expect((await a.get('/stats?kind=bogus')).status).toBe(400);
  });

  it('shows a stat page with the chart container, and another account\'s stat is 404 everywhere', async () => {
    const a = await signUp('owner@example.com');
    const b = await signUp('stranger@example.com');
    const id = await createStat(a.accountId, '<b>owned</b>', 2);
    const page = await a.page(`/stats/${id}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain(`data-ids="${id}"`);
    expect(page.html).toContain('data-percentiles="1"');
    expect(page.html).toContain('/assets/echarts.min.js');
    expect(page.html).not.toContain('<b>owned</b>');
    const tokenB = await newAccessToken(b);
    expect((await b.get(`/stats/${id}`)).status).toBe(404);
    expect((await b.json(`/api/v1/stats/${id}`)).status).toBe(404);
    expect((await b.json(`/api/v1/stats/${id}/series`)).status).toBe(404);
    expect((await b.json(`/api/v1/series?ids=${id}`)).status).toBe(404);
    expect((await request(`/x/${tokenB}/data/${id}?t=1d1h`)).status).toBe(404);
    expect((await request(`/x/${tokenB}/stats/${id}`, { method: 'DELETE' })).status).toBe(404);
    expect((await b.page('/settings')).status).toBe(200);
    expect((await b.post(`/stats/${id}/delete`)).status).toBe(404);
    expect((await b.post(`/dashboard/${id}/add`)).status).toBe(404);
    expect((await b.get(`/analyze?s=${id}`)).status).toBe(404);
    expect((await a.get(`/stats/${id}`)).status).toBe(200);
  });

  it('serves ECharts and the page script from the app itself', async () => {
    const res = await request('/assets/echarts.min.js');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('javascript');
    expect((await res.text()).length).toBeGreaterThan(500_000);
    expect((await request('/assets/app.js')).status).toBe(200);
    expect((await request('/assets/nope.js')).status).toBe(404);
  });
});

describe('/api/v1', () => {
  it('serves series with the comparison and a summary for a session or a bearer token', async () => {
    const a = await signUp('series@example.com');
    const id = await createStat(a.accountId, 'requests', 1);
    const values = await fillMinutes(id, 30, (i) => i + 1);
    const { status, body } = await a.json<{ stats: { values: (number | null)[]; comparison: unknown; summary: { total: number; max: number } }[]; resolution: string }>(
      `/api/v1/series?ids=${id}&tf=1h&compare=1`,
    );
    expect(status).toBe(200);
    expect(body.resolution).toBe('1m');
    expect(body.stats[0].summary.total).toBe(values.reduce((x, y) => x + y, 0));
    expect(body.stats[0].summary.max).toBe(30);
    expect(body.stats[0].values.filter((v) => v !== null && v > 0)).toHaveLength(30);
    expect(Array.isArray(body.stats[0].comparison)).toBe(true);

    const latency = await createStat(a.accountId, 'latency ms', 2);
    await fillMinutes(latency, 10, (i) => i);
    const v = await a.json<{ stats: { values: (number | null)[]; summary: { mean: number; count: number } }[] }>(`/api/v1/stats/${latency}/series?tf=1h&percentiles=1`);
    expect(v.status).toBe(200);
    expect(v.body.stats[0].summary).toMatchObject({ mean: 4.5, count: 10 });
    // A value with no data is a gap (null), not a zero.
    expect(v.body.stats[0].values.filter((x) => x !== null)).toHaveLength(10);

    const token = await newAccessToken(a);
    const bearer = { authorization: `Bearer ${token}` };
    const viaToken = await request(`/api/v1/stats/${id}/summary?tf=1h`, { headers: bearer });
    expect(viaToken.status).toBe(200);
    expect(((await viaToken.json()) as { summary: { total: number } }).summary.total).toBe(465);
    const list = await request('/api/v1/stats?q=req', { headers: bearer });
    expect(((await list.json()) as { stats: { name: string }[] }).stats.map((s) => s.name)).toEqual(['requests']);
    expect((await request('/api/v1/stats', { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await request('/api/v1/stats')).status).toBe(401);
    const bad = await request(`/api/v1/stats/${id}/series?t=1x`, { headers: bearer });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toContain(TIMEFRAME_GRAMMAR);
    expect((await request(`/api/v1/stats/${id}/series?tf=2d`, { headers: bearer })).status).toBe(400);
  });

  it('creates, lists and revokes tokens, trashes and restores stats', async () => {
    const a = await signUp('tokens-api@example.com');
    const first = await newAccessToken(a);
    const auth = { authorization: `Bearer ${first}`, 'content-type': 'application/json' };
    const created = await request('/api/v1/tokens', { method: 'POST', headers: auth, body: JSON.stringify({ name: 'ci' }) });
    expect(created.status).toBe(201);
    const t = (await created.json()) as { id: number; token: string; prefix: string };
    expect(t.token.startsWith(t.prefix)).toBe(true);
    const list = (await (await request('/api/v1/tokens', { headers: auth })).json()) as { tokens: { id: number; revokedAt: string | null }[] };
    expect(list.tokens).toHaveLength(2);
    expect(JSON.stringify(list)).not.toContain(t.token);
    expect((await request(`/api/v1/tokens/${t.id}`, { method: 'DELETE', headers: auth })).status).toBe(200);
    expect((await request('/api/v1/stats', { headers: { authorization: `Bearer ${t.token}` } })).status).toBe(401);

    const id = await createStat(a.accountId, 'trash me', 1);
    const del = await request(`/api/v1/stats/${id}`, { method: 'DELETE', headers: auth });
    expect(((await del.json()) as { deletedAt: string | null }).deletedAt).not.toBeNull();
    expect((await request(`/api/v1/stats/${id}`, { headers: auth })).status).toBe(404);
    const trash = (await (await request('/api/v1/stats?deleted=1', { headers: auth })).json()) as { stats: { id: number }[] };
    expect(trash.stats.map((s) => s.id)).toEqual([id]);
    expect((await request(`/api/v1/stats/${id}/restore`, { method: 'POST', headers: auth })).status).toBe(200);
    expect((await request(`/api/v1/stats/${id}`, { headers: auth })).status).toBe(200);
  });

  it('serves an OpenAPI document generated from the routes, and a docs page', async () => {
    const res = await request('/api/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> } };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(['/series', '/stats', '/stats/{id}', '/stats/{id}/restore', '/stats/{id}/series', '/stats/{id}/summary', '/tokens', '/tokens/{id}']);
    expect(Object.keys(doc.paths['/stats/{id}']).sort()).toEqual(['delete', 'get']);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Stat', 'Series', 'SeriesAnswer', 'Summary', 'Token', 'Error']));
    const docs = await request('/api/v1/docs');
    const html = await docs.text();
    expect(docs.status).toBe(200);
    expect(html).toContain('GET /api/v1/stats/{id}/series');
    expect(html).toContain('DELETE /api/v1/tokens/{id}');
  });
});

describe('StatHat export /x/:token', () => {
  it('answers statlist, stat, data and delete in StatHat\'s shapes', async () => {
    const a = await signUp('export@example.com');
    const counter = await createStat(a.accountId, 'exports', 1, { public: true });
    const value = await createStat(a.accountId, 'latency', 2);
    await fillMinutes(counter, 120, () => 2);
    await fillMinutes(value, 120, (i) => (i % 2 === 0 ? 5 : 9));
    const token = await newAccessToken(a);

    const list = await request(`/x/${token}/statlist`);
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual([
      { id: String(counter), name: 'exports', public: true, counter: true },
      { id: String(value), name: 'latency', public: false, counter: false },
    ]);
    expect(await (await request(`/x/${token}/statlist?offset=1`)).json()).toEqual([{ id: String(value), name: 'latency', public: false, counter: false }]);
    expect(await (await request(`/x/${token}/stat?name=latency`)).json()).toEqual({ id: String(value), name: 'latency', public: false, counter: false });
    expect((await request(`/x/${token}/stat?name=nope`)).status).toBe(404);

    const data = await request(`/x/${token}/data/${counter}/${value}?t=1d1h`);
    expect(data.status).toBe(200);
    const series = (await data.json()) as { name: string; timeframe: string; points: { time: number; value: number }[] }[];
    expect(series.map((s) => [s.name, s.timeframe])).toEqual([
      ['exports', '1 day @ 1 hour'],
      ['latency', '1 day @ 1 hour'],
    ]);
    for (const s of series) for (const p of s.points) expect(Object.keys(p).sort()).toEqual(['time', 'value']);
    expect(series[0].points.length).toBeGreaterThanOrEqual(24);
    expect(series[0].points.reduce((t, p) => t + p.value, 0)).toBe(240);
    expect(series[1].points.length).toBeGreaterThanOrEqual(2);
    for (const p of series[1].points) expect(p.value).toBeGreaterThanOrEqual(5), expect(p.value).toBeLessThanOrEqual(9);
    expect(series[1].points.length).toBeLessThan(24); // hours without data are left out, not zeros
    const times = series[0].points.map((p) => p.time);
    expect(times.every((t, i) => i === 0 || t - times[i - 1] === 3600)).toBe(true);

    const start = Math.floor(Date.now() / 1000) - 3 * 3600;
    const fromStart = (await (await request(`/x/${token}/data/${counter}?t=2h1h&start=${start}`)).json()) as { points: { time: number }[] }[];
    expect(fromStart[0].points.length).toBeGreaterThanOrEqual(2);
    expect(fromStart[0].points[0].time).toBeGreaterThanOrEqual(start - 3600);

    for (const bad of ['1w', 'abc', '1h1d', '0d1h', '1y1m']) {
      const res = await request(`/x/${token}/data/${counter}?t=${bad}`);
      expect(res.status).toBe(400);
      const body = (await res.json()) as { status: number; msg: string };
      expect(body.status).toBe(400);
      expect(body.msg).toContain(TIMEFRAME_GRAMMAR);
    }

    const del = await request(`/x/${token}/stats/${value}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ status: 200, msg: 'stat deleted' });
    expect(((await (await request(`/x/${token}/statlist`)).json()) as unknown[]).length).toBe(1);
    expect((await request(`/x/nope/statlist`)).status).toBe(401);
  });
});

describe('settings', () => {
  it('rotates the ezkey, keeping the old one as the backup that still works', async () => {
    const a = await signUp('rotate@example.com');
    const before = /id="ezkey">([^<]+)</.exec((await a.page('/settings')).html)![1];
    expect((await a.post('/settings/ezkey/rotate')).status).toBe(303);
    const html = (await a.page('/settings')).html;
    const after = /id="ezkey">([^<]+)</.exec(html)![1];
    expect(after).not.toBe(before);
    expect(/id="ezkey-backup">([^<]+)</.exec(html)![1]).toBe(before);
    expect((await findAccountByEzkey(tdb.database.pool, before))?.id).toBe(a.accountId);
    expect((await findAccountByEzkey(tdb.database.pool, after))?.id).toBe(a.accountId);
  });

  it('shows a new access token once, stores only its hash, and revokes it', async () => {
    const a = await signUp('token-page@example.com');
    const token = await newAccessToken(a);
    const [rows] = await tdb.database.pool.query<RowDataPacket[]>('SELECT id, token_hash, prefix FROM access_tokens WHERE account_id = ?', [a.accountId]);
    expect(rows[0].token_hash).toBe(sha256Hex(token));
    expect(token.startsWith(String(rows[0].prefix))).toBe(true);
    const again = (await a.page('/settings')).html;
    expect(again).not.toContain(token);
    expect(again).toContain(`${rows[0].prefix}…`);
    expect((await request(`/x/${token}/statlist`)).status).toBe(200);
    expect((await a.post(`/settings/tokens/${rows[0].id}/revoke`)).status).toBe(303);
    expect((await request(`/x/${token}/statlist`)).status).toBe(401);
  });

  it('creates and revokes statsd tokens, and makes classic keys', async () => {
    const a = await signUp('statsd@example.com');
    await createStat(a.accountId, 'classic', 1);
    await a.page('/settings');
    const res = await a.post('/settings/statsd-tokens', { name: 'prod' });
    const token = /id="new-token">([^<]+)</.exec(await res.text())![1];
    expect(token).toMatch(/^sd_[A-Za-z0-9_-]+$/);
    const [rows] = await tdb.database.pool.query<RowDataPacket[]>('SELECT id, token_hash FROM statsd_tokens WHERE account_id = ?', [a.accountId]);
    expect(rows[0].token_hash).toBe(sha256Hex(token));
    await a.post(`/settings/statsd-tokens/${rows[0].id}/revoke`);
    const [revoked] = await tdb.database.pool.query<RowDataPacket[]>('SELECT revoked_at FROM statsd_tokens WHERE id = ?', [rows[0].id]);
    expect(revoked[0].revoked_at).not.toBeNull();
    await a.post('/settings/classic/ukey');
    await a.post('/settings/classic/stat-keys');
    const html = (await a.page('/settings')).html;
    expect(/id="ukey">([A-Za-z0-9_-]{16})</.test(html)).toBe(true);
    const [keys] = await tdb.database.pool.query<RowDataPacket[]>('SELECT `key` FROM classic_stat_keys WHERE account_id = ?', [a.accountId]);
    expect(keys).toHaveLength(1);
  });
});

describe('trash', () => {
  it('deletes into the trash, restores, and forgets after 48 hours', async () => {
    const a = await signUp('trash@example.com');
    const id = await createStat(a.accountId, 'temporary', 1);
    await a.page(`/stats/${id}`);
    expect((await a.post(`/stats/${id}/delete`)).headers.get('location')).toBe('/stats/trash');
    expect((await a.page('/stats')).html).not.toContain('temporary');
    expect((await a.page('/stats/trash')).html).toContain('temporary');
    expect((await a.get(`/stats/${id}`)).status).toBe(404);
    expect((await a.post(`/stats/${id}/restore`)).status).toBe(303);
    expect((await a.page('/stats')).html).toContain('temporary');
    await a.post(`/stats/${id}/delete`);
    await tdb.database.pool.query('UPDATE stats SET deleted_at = NOW(3) - INTERVAL 49 HOUR WHERE id = ?', [id]);
    expect((await a.page('/stats/trash')).html).not.toContain('temporary');
    expect((await a.post(`/stats/${id}/restore`)).status).toBe(404);
  });
});

describe('embeds', () => {
  it('draws public stats as SVG, PNG and an HTML snippet; a private one is 404 unless signed', async () => {
    const a = await signUp('embed@example.com');
    const pub = await createStat(a.accountId, 'public <stat>', 1, { public: true });
    const priv = await createStat(a.accountId, 'private stat', 1);
    await fillMinutes(pub, 60, () => 1);
    const svg = await request(`/embed/graph/${pub}.svg?w=300&h=120&tf=day_compare&title=Hello`);
    expect(svg.status).toBe(200);
    expect(svg.headers.get('content-type')).toContain('image/svg+xml');
    const text = await svg.text();
    expect(text).toContain('<svg');
    expect(text).toContain('width="300"');
    const png = await request(`/embed/graph/${pub}?format=png`);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await png.arrayBuffer()).subarray(1, 4).toString()).toBe('PNG');
    const html = await (await request(`/embed/graph/${pub}.html?tf=week`)).text();
    expect(html).toMatch(/^<img src="http:\/\/localhost\/embed\/graph\/\d+\.svg\?tf=week" width="400" height="150" alt="public &#60;stat&#62;">/);

    expect((await request(`/embed/graph/${priv}.svg`)).status).toBe(404);
    expect((await request(`/embed/graph/${pub}/${priv}.svg`)).status).toBe(404);
    expect((await request(`/embed/graph/${priv}.svg?sig=${embedSignature(SECRET, [pub])}`)).status).toBe(404);
    expect((await request(`/embed/graph/${priv}.svg?sig=${embedSignature(SECRET, [priv])}`)).status).toBe(200);
    expect((await request(`/embed/graph/${pub}/${priv}.png?sig=${embedSignature(SECRET, [pub, priv])}`)).status).toBe(200);
    expect((await request('/embed/graph/99999.svg')).status).toBe(404);
    expect((await request('/embed/graph/1/2/3/4.svg')).status).toBe(404);

    const b = await signUp('embed-other@example.com');
    const other = await createStat(b.accountId, 'other public', 1, { public: true });
    expect((await request(`/embed/graph/${pub}/${other}.svg`)).status).toBe(404);

    const js = await request('/embed.js');
    expect(js.status).toBe(200);
    expect(await js.text()).toContain('render');
  });

  it('puts a signed embed on a private stat\'s page', async () => {
    const a = await signUp('embed-page@example.com');
    const id = await createStat(a.accountId, 'mine', 1);
    const html = (await a.page(`/stats/${id}`)).html;
    const src = /id="embed-preview"/.test(html) ? /<img src="([^"]+)" alt="mine"/.exec(html)![1].replaceAll('&amp;', '&') : '';
    expect(src).toContain(`sig=${embedSignature(SECRET, [id])}`);
    expect((await request(src)).status).toBe(200);
  });
});

describe('analyze and dashboard', () => {
  it('compares up to three stats and keeps a dashboard', async () => {
    const a = await signUp('analyze@example.com');
    const ids = [await createStat(a.accountId, 'one', 1), await createStat(a.accountId, 'two', 1), await createStat(a.accountId, 'three', 1), await createStat(a.accountId, 'four', 1)];
    const page = await a.page(`/analyze?s=${ids[0]}&s=${ids[1]}&s=&s=${ids[2]}&s=${ids[3]}`);
    expect(page.status).toBe(200);
    expect(page.html).toContain(`data-ids="${ids.slice(0, 3).join(',')}"`);
    const series = await a.json<{ stats: { name: string }[] }>(`/api/v1/series?ids=${ids.slice(0, 2).join(',')}&tf=1d`);
    expect(series.body.stats.map((s) => s.name)).toEqual(['one', 'two']);
    expect((await a.json(`/api/v1/series?ids=${ids.join(',')}`)).status).toBe(400);

    await a.post(`/dashboard/${ids[1]}/add`);
    await a.post(`/dashboard/${ids[0]}/add`);
    const dash = (await a.page('/dashboard')).html;
    expect(dash.indexOf('>two<')).toBeLessThan(dash.indexOf('>one<'));
    await a.post(`/dashboard/${ids[1]}/remove`);
    expect((await a.page('/dashboard')).html).not.toContain('>two<');
  });
});

it('answers unknown pages with a 404 page and unknown API paths with JSON', async () => {
  const page = await request('/nowhere');
  expect(page.status).toBe(404);
  expect(await page.text()).toContain('no such page');
  expect((await request('/stats')).status).toBe(302);
});
