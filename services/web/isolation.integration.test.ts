import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import { GraphService } from '../../gen/osprey/v1/graphing_pb.js';
import { createAccount } from '../kit/accounts.js';
import { connectDatabase } from '../kit/db/client.js';
import { createMetrics } from '../kit/metrics.js';
import { createBalancedClient, type BalancedTransport } from '../kit/rpc/client.js';
import { createTestDatabase, testBaseConfig, TEST_SERVICE_TOKEN, type TestDatabase } from '../kit/testing/db.js';
import { graphingConfigSchema } from '../graphing/config.js';
import { build as buildGraphing, type GraphingReplica } from '../graphing/server.js';
import { startIngestEdge, type IngestEdge } from '../api/testing.js';
import { buildApp } from './app.js';
import { embedSignature } from './embed-sign.js';
import { SessionClient } from './testing/session-client.js';

// Isolation and injection (issue 7, item 4). Two accounts: Alice, whose data is the target,
// and Mallory, who tries every read and write path of the web app (pages, /api/v1, /x,
// embeds) with her own session, token and signatures, and the StatHat ingest API with her
// own keys. Every attempt at Alice's things gets 401/403/404 (or acts on Mallory's own
// account) and no byte of Alice's data, and Alice's state is unchanged afterwards. The
// route table below must name every route the app serves: a new route without a probe
// fails this test. Alice's stat names carry SQL, HTML and script; they are stored verbatim
// and shown escaped in pages and SVG.
//
// Real pieces throughout: the web app (app.request), a graphing replica, and api + ingest
// over HTTP, on a fresh MariaDB.

const log = pino({ level: 'silent' });
const SECRET = 'isolation-test-secret-0123456789';
let tdb: TestDatabase;
let graphing: GraphingReplica;
let transport: BalancedTransport;
let edge: IngestEdge;
let app: ReturnType<typeof buildApp>;
const request = (path: string, init?: RequestInit) => app.request(path, init);

/** Every one of Alice's names carries "ALICE": no answer to Mallory may contain it. */
const HOSTILE = [
  '<script>alert("x")</script> ALICE1',
  '"><img src=x onerror=alert(1)> ALICE2',
  "'; DROP TABLE stats; -- ALICE3",
  "' OR '1'='1 ALICE4",
  '</text></svg><script>alert(1)</script> ALICE5',
  '{{7*7}} ${alert(1)} &amp; &lt;b&gt; ALICE6',
  '\\x3cscript\\x3e %3Cscript%3E ALICE7',
  'javascript:alert(1)// ALICE8',
  '🦅 ünïcödé — a,b;c=d|e ALICE9',
];
const MARK = 'ALICE';
/** A name without markup, so an echo of it is easy to tell from a leak. */
const PLAIN = 'alice plain ALICE0';

interface Person {
  client: SessionClient;
  accountId: number;
  email: string;
  ezkey: string;
  token: string;
  tokenId: number;
  statsdTokenId: number;
  ukey: string;
}

let alice: Person;
let mallory: Person;
/** Alice's stats by name, and the ids the probes aim at. */
let aliceIds: Record<string, number>;
let alicePrivate: number;
let alicePublic: number;
let aliceTrashed: number;
let aliceStatKey: string;
let malloryPrivate: number;
let malloryPublic: number;

async function person(email: string): Promise<Person> {
  const client = new SessionClient(request);
  await client.page('/signup');
  expect((await client.post('/signup', { email, password: 'correct horse battery' })).status).toBe(303);
  const settings = await client.page('/settings');
  const ezkey = /id="ezkey">([^<]+)</.exec(settings.html)![1];
  const created = await client.post('/settings/tokens', { name: 'probe' });
  const token = /id="new-token">([^<]+)</.exec(await created.text())![1];
  await client.page('/settings');
  expect((await client.post('/settings/statsd-tokens', { name: 'statsd' })).status).toBe(201);
  await client.page('/settings');
  expect((await client.post('/settings/classic/ukey')).status).toBe(303);
  const [[acc]] = await tdb.database.pool.query<RowDataPacket[]>('SELECT a.id, k.ukey FROM accounts a JOIN classic_keys k ON k.account_id = a.id WHERE a.email = ?', [email]);
  const [[tok]] = await tdb.database.pool.query<RowDataPacket[]>('SELECT id FROM access_tokens WHERE account_id = ?', [acc.id]);
  const [[sd]] = await tdb.database.pool.query<RowDataPacket[]>('SELECT id FROM statsd_tokens WHERE account_id = ?', [acc.id]);
  await client.page('/stats');
  return { client, accountId: Number(acc.id), email, ezkey, token, tokenId: Number(tok.id), statsdTokenId: Number(sd.id), ukey: String(acc.ukey) };
}

const ez = (fields: Record<string, string>) => fetch(`${edge.base}/ez`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });

async function statIds(accountId: number): Promise<Record<string, number>> {
  const [rows] = await tdb.database.pool.query<RowDataPacket[]>('SELECT id, name FROM stats WHERE account_id = ?', [accountId]);
  return Object.fromEntries(rows.map((r) => [String(r.name), Number(r.id)]));
}

/** What Alice has, to compare before and after Mallory's attempts. */
async function aliceState(): Promise<unknown> {
  const pool = tdb.database.pool;
  const q = async (sql: string) => (await pool.query<RowDataPacket[]>(sql, [alice.accountId]))[0].map((r) => ({ ...r }));
  return {
    account: await q('SELECT email, ezkey, ezkey_backup FROM accounts WHERE id = ?'),
    stats: await q('SELECT id, name, kind, public, deleted_at FROM stats WHERE account_id = ? ORDER BY id'),
    rollups: await q('SELECT r.stat_id, r.bucket, r.count, r.sum FROM rollups_1m r JOIN stats s ON s.id = r.stat_id WHERE s.account_id = ? ORDER BY r.stat_id, r.bucket'),
    dashboard: await q('SELECT stat_id FROM dashboard_items WHERE account_id = ? ORDER BY stat_id'),
    tokens: await q('SELECT id, revoked_at FROM access_tokens WHERE account_id = ? ORDER BY id'),
    statsdTokens: await q('SELECT id, revoked_at FROM statsd_tokens WHERE account_id = ? ORDER BY id'),
    ukey: await q('SELECT ukey FROM classic_keys WHERE account_id = ?'),
    statKeys: await q('SELECT stat_id, `key` FROM classic_stat_keys WHERE account_id = ? ORDER BY stat_id'),
  };
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  graphing = await buildGraphing({ config: graphingConfigSchema.parse(testBaseConfig(tdb.url)), log, database: connectDatabase(tdb.url), metrics: createMetrics('graphing') });
  const balanced = createBalancedClient(GraphService, { pool: tdb.database.pool, service: 'graphing', serviceToken: TEST_SERVICE_TOKEN, log });
  transport = balanced.transport;
  app = buildApp({ pool: tdb.database.pool, graph: balanced.client, log, secret: SECRET, sessionTtlHours: 24, secureCookies: false, apiPublicUrl: 'http://localhost:8088', now: Date.now });
  edge = await startIngestEdge(tdb);

  alice = await person('alice@example.com');
  mallory = await person('mallory@example.com');
  // Alice's stats come in through the StatHat API, as a client would send them.
  for (const [i, name] of HOSTILE.entries()) expect((await ez({ ezkey: alice.ezkey, stat: name, [i % 2 ? 'value' : 'count']: String(i + 1) })).status).toBe(204);
  expect((await ez({ ezkey: alice.ezkey, stat: PLAIN, count: '1' })).status).toBe(204);
  expect((await ez({ ezkey: alice.ezkey, stat: 'alice trashed ALICE_T', count: '1' })).status).toBe(204);
  for (const name of ['mallory private', 'mallory public']) expect((await ez({ ezkey: mallory.ezkey, stat: name, count: '1' })).status).toBe(204);
  await edge.ingest.flusher.flush();
  aliceIds = await statIds(alice.accountId);
  alicePrivate = aliceIds[HOSTILE[1]];
  alicePublic = aliceIds[HOSTILE[0]];
  aliceTrashed = aliceIds['alice trashed ALICE_T'];
  const m = await statIds(mallory.accountId);
  malloryPrivate = m['mallory private'];
  malloryPublic = m['mallory public'];

  await alice.client.page(`/stats/${alicePublic}`);
  expect((await alice.client.post(`/stats/${alicePublic}/public`, { public: '1' })).status).toBe(303);
  await mallory.client.page(`/stats/${malloryPublic}`);
  expect((await mallory.client.post(`/stats/${malloryPublic}/public`, { public: '1' })).status).toBe(303);
  await alice.client.page('/stats');
  expect((await alice.client.post(`/dashboard/${alicePrivate}/add`)).status).toBe(303);
  expect((await request(`/api/v1/stats/${aliceTrashed}`, { method: 'DELETE', headers: { authorization: `Bearer ${alice.token}` } })).status).toBe(200);
  await alice.client.page('/settings');
  expect((await alice.client.post('/settings/classic/stat-keys')).status).toBe(303);
  const [[k]] = await tdb.database.pool.query<RowDataPacket[]>('SELECT `key` FROM classic_stat_keys WHERE stat_id = ?', [aliceIds[HOSTILE[0]]]);
  aliceStatKey = String(k.key);
  await mallory.client.page('/stats');
}, 120_000);

afterAll(async () => {
  transport?.close();
  await edge?.stop();
  await graphing?.stop();
  await tdb?.drop();
});

// ---- every route, probed as Mallory -----------------------------------------------------

type Expect = number[];
interface Probe {
  /** What Mallory sends. */
  send: () => Response | Promise<Response>;
  /** Statuses that are right: 401/403/404 for Alice's things, 2xx/3xx where Mallory acts on her own account or a public page. */
  status: Expect;
  /** What of the request the answer may repeat (the address typed into a form, a name asked for). */
  echo?: string;
}

const DENIED = [401, 403, 404];

/** The forms an echoed string takes in an answer: as is, HTML-escaped, inside JSON once or twice. Longest first. */
function echoesOf(echo: string): string[] {
  const once = JSON.stringify(echo);
  const twice = JSON.stringify(once);
  return [twice.slice(1, -1), once, once.slice(1, -1), escapeHtml(echo), echo].sort((a, b) => b.length - a.length);
}
const bearer = () => ({ authorization: `Bearer ${mallory.token}` });
const m = () => mallory.client;

/** One probe or more per route the app serves (`METHOD path` as Hono lists it). */
function probes(): Record<string, Probe[]> {
  const page = (path: string, status: Expect) => ({ send: () => m().get(path), status });
  const form = (path: string, status: Expect, fields: Record<string, string> = {}) => ({ send: () => m().post(path, fields), status });
  const api = (method: string, path: string, status: Expect, body?: unknown) => ({
    send: () => request(path, { method, headers: { ...bearer(), ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined }),
    status,
  });
  const x = (method: string, path: string, status: Expect) => ({ send: () => request(`/x/${mallory.token}${path}`, { method }), status });
  const signedForMallory = embedSignature(SECRET, [malloryPrivate]);
  return {
    'GET /': [page('/', [200, 302, 303])],
    'GET /signup': [page('/signup', [200, 302, 303])],
    // Signing up again as Alice is refused; the answer says only that the address is taken.
    'POST /signup': [{ ...form('/signup', [409], { email: alice.email, password: 'correct horse battery' }), echo: alice.email }],
    'GET /login': [page('/login', [200, 302, 303])],
    'POST /login': [{ ...form('/login', [401], { email: alice.email, password: 'not alice password' }), echo: alice.email }],
    'POST /logout': [{ send: async () => new SessionClient(request).post('/logout', {}, null), status: [403] }],
    // A search that matches one of Alice's names, were the account not checked.
    'GET /stats': [page('/stats', [200]), { ...page('/stats?q=alice%20plain', [200]), echo: 'alice plain' }],
    'GET /stats/trash': [page('/stats/trash', [200])],
    'GET /stats/:id': [page(`/stats/${alicePrivate}`, DENIED), page(`/stats/${alicePublic}`, DENIED), page(`/stats/${aliceTrashed}`, DENIED)],
    'POST /stats/:id/delete': [form(`/stats/${alicePrivate}/delete`, DENIED)],
    'POST /stats/:id/restore': [form(`/stats/${aliceTrashed}/restore`, DENIED)],
    'POST /stats/:id/public': [form(`/stats/${alicePrivate}/public`, DENIED, { public: '1' }), form(`/stats/${alicePublic}/public`, DENIED, { public: '0' })],
    'GET /analyze': [page(`/analyze?s=${alicePrivate}`, DENIED), page(`/analyze?s=${malloryPrivate}&s=${alicePublic}`, DENIED)],
    'GET /dashboard': [page('/dashboard', [200])],
    'POST /dashboard/:id/add': [form(`/dashboard/${alicePrivate}/add`, DENIED)],
    'POST /dashboard/:id/remove': [form(`/dashboard/${alicePrivate}/remove`, DENIED)],
    'GET /settings': [page('/settings', [200])],
    // These act on the session's own account; Alice's keys must not move (checked after).
    'POST /settings/ezkey/rotate': [form('/settings/ezkey/rotate', [303])],
    'POST /settings/classic/ukey': [form('/settings/classic/ukey', [303])],
    'POST /settings/classic/stat-keys': [form('/settings/classic/stat-keys', [303])],
    'POST /settings/tokens': [form('/settings/tokens', [201], { name: 'mallory' })],
    'POST /settings/tokens/:id/revoke': [form(`/settings/tokens/${alice.tokenId}/revoke`, DENIED)],
    'POST /settings/statsd-tokens': [form('/settings/statsd-tokens', [201], { name: 'x' })],
    'POST /settings/statsd-tokens/:id/revoke': [form(`/settings/statsd-tokens/${alice.statsdTokenId}/revoke`, DENIED)],
    'GET /api/v1/stats': [api('GET', '/api/v1/stats', [200]), { ...api('GET', '/api/v1/stats?q=alice%20plain', [200]), echo: 'alice plain' }, api('GET', '/api/v1/stats?deleted=1', [200])],
    'GET /api/v1/stats/:id': [api('GET', `/api/v1/stats/${alicePrivate}`, DENIED), { send: () => m().get(`/api/v1/stats/${alicePrivate}`), status: DENIED }],
    'DELETE /api/v1/stats/:id': [api('DELETE', `/api/v1/stats/${alicePrivate}`, DENIED)],
    'POST /api/v1/stats/:id/restore': [api('POST', `/api/v1/stats/${aliceTrashed}/restore`, DENIED)],
    'GET /api/v1/stats/:id/series': [api('GET', `/api/v1/stats/${alicePrivate}/series?tf=1h`, DENIED), api('GET', `/api/v1/stats/${alicePublic}/series`, DENIED)],
    'GET /api/v1/stats/:id/summary': [api('GET', `/api/v1/stats/${alicePrivate}/summary`, DENIED)],
    'GET /api/v1/series': [api('GET', `/api/v1/series?ids=${alicePrivate}`, DENIED), api('GET', `/api/v1/series?ids=${malloryPrivate},${alicePublic}`, DENIED)],
    'GET /api/v1/tokens': [api('GET', '/api/v1/tokens', [200])],
    'POST /api/v1/tokens': [api('POST', '/api/v1/tokens', [201], { name: 'mallory api' })],
    'DELETE /api/v1/tokens/:id': [api('DELETE', `/api/v1/tokens/${alice.tokenId}`, DENIED)],
    'GET /api/v1/openapi.json': [api('GET', '/api/v1/openapi.json', [200])],
    'GET /api/v1/docs': [api('GET', '/api/v1/docs', [200])],
    'GET /x/:token/statlist': [x('GET', '/statlist', [200])],
    'GET /x/:token/stat': [PLAIN, HOSTILE[0], HOSTILE[1]].map((name) => ({ ...x('GET', `/stat?name=${encodeURIComponent(name)}`, DENIED), echo: name })),
    'GET /x/:token/data/*': [x('GET', `/data/${alicePrivate}?t=1d1h`, DENIED), x('GET', `/data/${malloryPrivate}/${alicePublic}`, DENIED)],
    'DELETE /x/:token/stats/:id': [x('DELETE', `/stats/${alicePrivate}`, DENIED)],
    'GET /embed/graph/*': [
      // Alice's private stat: unsigned, with Mallory's valid signature for her own stat, forged, and mixed with Mallory's.
      { send: () => request(`/embed/graph/${alicePrivate}.svg`), status: DENIED },
      { send: () => request(`/embed/graph/${alicePrivate}.svg?sig=${signedForMallory}`), status: DENIED },
      { send: () => request(`/embed/graph/${alicePrivate}.png?sig=${'0'.repeat(64)}`), status: DENIED },
      { send: () => request(`/embed/graph/${malloryPrivate}/${alicePrivate}.svg?sig=${embedSignature(SECRET, [malloryPrivate])}`), status: DENIED },
      { send: () => request(`/embed/graph/${malloryPublic}/${alicePublic}.svg`), status: DENIED },
      { send: () => request(`/embed/graph/${aliceTrashed}.html`), status: DENIED },
    ],
    'GET /embed.js': [{ send: () => request('/embed.js'), status: [200] }],
    'GET /assets/:name': [{ send: () => request('/assets/app.js'), status: [200] }, { send: () => request('/assets/..%2F..%2Fpackage.json'), status: DENIED }],
    'GET /healthz': [{ send: () => request('/healthz'), status: [200] }],
  };
}

describe('isolation: every web route, as another account (integration)', () => {
  it('gives Mallory 401/403/404 or her own data on every route, never a byte of Alice’s, and leaves Alice’s state as it was', async () => {
    const table = probes();
    const served = new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`));
    // Every route has a probe, and every probe a route: a new route must be added here.
    expect([...served].sort()).toEqual(Object.keys(table).sort());

    const before = await aliceState();
    const aliceSecrets = [MARK, alice.ezkey, alice.ukey, alice.token, aliceStatKey, alice.email];
    const failures: string[] = [];
    for (const [route, list] of Object.entries(table)) {
      for (const probe of list) {
        const res = await probe.send();
        const body = Buffer.from(await res.arrayBuffer()).toString('utf8');
        // An answer may repeat what Mallory sent (a name she asked for); the rest is scanned.
        const scanned = probe.echo ? echoesOf(probe.echo).reduce((b, e) => b.split(e).join(''), body) : body;
        if (!probe.status.includes(res.status)) failures.push(`${route}: ${res.status}, want ${probe.status.join('/')}: ${body.slice(0, 200)}`);
        for (const secret of aliceSecrets) {
          if (scanned.includes(secret)) failures.push(`${route}: the answer holds ${JSON.stringify(secret)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(await aliceState()).toEqual(before);
    // And Alice's own credentials still work.
    expect((await request(`/api/v1/stats/${alicePrivate}`, { headers: { authorization: `Bearer ${alice.token}` } })).status).toBe(200);
    expect((await alice.client.get(`/stats/${alicePrivate}`)).status).toBe(200);
  });

  it('refuses /api/v1 and /x without a token, with a made-up one, or with a revoked one', async () => {
    const revoked = (await m().json<{ token: string; id: number }>('/api/v1/tokens', { method: 'POST', headers: { ...bearer(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'to revoke' }) })).body;
    expect((await request(`/api/v1/tokens/${revoked.id}`, { method: 'DELETE', headers: bearer() })).status).toBe(200);
    for (const auth of [undefined, 'Bearer nope', 'Bearer ', `Bearer ${revoked.token}`, `Basic ${Buffer.from(`${alice.email}:x`).toString('base64')}`, `Bearer ${alice.ezkey}`]) {
      const res = await request('/api/v1/stats', { headers: auth ? { authorization: auth } : {} });
      expect([auth, res.status]).toEqual([auth, 401]);
      expect(await res.text()).not.toContain(MARK);
    }
    for (const token of ['nope', revoked.token, alice.ezkey, 'x'.repeat(200), "' OR '1'='1"]) {
      const res = await request(`/x/${encodeURIComponent(token)}/statlist`);
      expect([token, res.status]).toEqual([token, 401]);
    }
  });
});

describe('isolation: the StatHat ingest API with another account’s keys (integration)', () => {
  it('puts what Mallory posts with her keys into her own account only, and refuses her with Alice’s stat key', async () => {
    const before = await aliceState();
    // Mallory's keys as they are now (Settings may have rotated them).
    const [[keys]] = await tdb.database.pool.query<RowDataPacket[]>('SELECT a.ezkey, k.ukey FROM accounts a JOIN classic_keys k ON k.account_id = a.id WHERE a.id = ?', [mallory.accountId]);
    const mine = { ezkey: String(keys.ezkey), ukey: String(keys.ukey) };
    // Mallory's ezkey with Alice's stat names: new stats of Mallory's, Alice's untouched.
    expect((await ez({ ezkey: mine.ezkey, stat: HOSTILE[0], count: '100' })).status).toBe(204);
    const json = await fetch(`${edge.base}/ez`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ezkey: mine.ezkey, data: [{ stat: HOSTILE[2], count: 5 }] }) });
    expect(json.status).toBe(204);
    // Keys that are not Mallory's: refused, nothing stored.
    for (const ezkey of ['nope', `${mine.ezkey}x`, `x${mine.ezkey}`, alice.token, alice.ukey, "' OR '1'='1"]) {
      const res = await ez({ ezkey, stat: HOSTILE[0], count: '100' });
      expect([ezkey, res.status]).toEqual([ezkey, 401]);
    }
    const classic = async (ukey: string, key: string) => (await fetch(`${edge.base}/c`, { method: 'POST', body: new URLSearchParams({ ukey, key, count: '100' }) })).status;
    expect(await classic(mine.ukey, aliceStatKey)).toBe(404);
    expect(await classic(alice.ezkey, aliceStatKey)).toBe(401);
    expect(await classic(mine.ezkey, aliceStatKey)).toBe(401);
    await edge.ingest.flusher.flush();
    expect(await aliceState()).toEqual(before);
    expect(Object.keys(await statIds(mallory.accountId))).toEqual(expect.arrayContaining([HOSTILE[0], HOSTILE[2]]));
  });
});

describe('isolation: the email address as an ezkey (integration)', () => {
  it('lets anyone who knows the address post into the account only while EZ_EMAIL_AS_KEY is on (StatHat’s rule, the default)', async () => {
    const carol = await createAccount(tdb.database.pool, 'carol@example.com');
    const strict = await startIngestEdge(tdb, { EZ_EMAIL_AS_KEY: false });
    try {
      const post = (base: string, ezkey: string) => fetch(`${base}/ez`, { method: 'POST', body: new URLSearchParams({ ezkey, stat: 'via email', count: '1' }) });
      expect((await post(strict.base, carol.email)).status).toBe(401);
      expect((await post(strict.base, carol.email.toUpperCase())).status).toBe(401);
      // The ezkey itself still works there.
      expect((await post(strict.base, carol.ezkey)).status).toBe(204);
      expect((await post(edge.base, carol.email)).status).toBe(204);
      await strict.ingest.flusher.flush();
      await edge.ingest.flusher.flush();
      const [rows] = await tdb.database.pool.query<RowDataPacket[]>("SELECT SUM(r.count) AS n FROM rollups_1m r JOIN stats s ON s.id = r.stat_id WHERE s.account_id = ? AND s.name = 'via email'", [carol.id]);
      expect(Number(rows[0].n)).toBe(2);
    } finally {
      await strict.stop();
    }
  });
});

// ---- injection -------------------------------------------------------------------------

/** How hono's JSX writes text and attribute values. */
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const UNSAFE = /[<>&"']/;

function expectShownEscaped(html: string, name: string, where: string): void {
  if (UNSAFE.test(name)) expect(html.includes(name), `${where} holds the raw name ${name}`).toBe(false);
  expect(html.includes(escapeHtml(name)), `${where} shows ${name} escaped`).toBe(true);
}

const SVG_ELEMENTS = new Set(['svg', 'g', 'path', 'rect', 'text', 'tspan', 'defs', 'clipPath', 'title', 'desc', 'style', 'line', 'circle', 'ellipse', 'polyline', 'polygon', 'linearGradient', 'radialGradient', 'stop', 'mask', 'pattern', 'use']);

/**
 * What in an SVG could run or load something: any tag that is not a plain drawing element
 * (script, foreignObject, a, image...), an event handler attribute, a javascript: URL,
 * or anything between < and > that is not a well-formed tag (text that broke out).
 */
function svgProblems(svg: string): string[] {
  const problems: string[] = [];
  // CDATA holds ECharts' own CSS; a name must never land there.
  for (const c of svg.matchAll(/<!\[CDATA\[([\s\S]*?)\]\]>/g)) if (c[1].includes(MARK)) problems.push('a name inside CDATA');
  const body = svg.replace(/^<\?xml[^>]*\?>\s*/, '').replace(/<!--[\s\S]*?-->/g, '').replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '');
  for (const m of body.matchAll(/<(\/?)([^\s>/]*)([^>]*)>/g)) {
    const [tag, , el, rest] = m;
    if (!SVG_ELEMENTS.has(el)) problems.push(`element ${JSON.stringify(el)} in ${tag.slice(0, 80)}`);
    const attrs = /^(?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*\s*=\s*(?:"[^"]*"|'[^']*'))*\s*\/?$/;
    if (!attrs.test(rest)) problems.push(`malformed tag ${tag.slice(0, 80)}`);
    for (const a of rest.matchAll(/\s([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*=\s*("[^"]*"|'[^']*')/g)) {
      if (/^on/i.test(a[1])) problems.push(`handler ${a[1]} in ${tag.slice(0, 80)}`);
      if (/javascript:/i.test(a[2]) && /href$/i.test(a[1])) problems.push(`javascript: URL in ${tag.slice(0, 80)}`);
    }
  }
  return problems;
}

describe('injection: hostile stat names (integration)', () => {
  it('stores every name exactly as sent', async () => {
    const [rows] = await tdb.database.pool.query<RowDataPacket[]>('SELECT name FROM stats WHERE account_id = ? ORDER BY id', [alice.accountId]);
    expect(rows.map((r) => String(r.name))).toEqual([...HOSTILE, PLAIN, 'alice trashed ALICE_T']);
    // The SQL in the names ran nowhere: every table is still there.
    const [tables] = await tdb.database.pool.query<RowDataPacket[]>('SHOW TABLES');
    expect(tables.length).toBeGreaterThan(10);
  });

  it('gives the names back verbatim in JSON (/api/v1, /x)', async () => {
    const v1 = (await (await request('/api/v1/stats?limit=100', { headers: { authorization: `Bearer ${alice.token}` } })).json()) as { stats: { name: string }[] };
    expect(v1.stats.map((s) => s.name).sort()).toEqual([...HOSTILE, PLAIN].sort());
    const x = (await (await request(`/x/${alice.token}/statlist`)).json()) as { name: string }[];
    expect(x.map((s) => s.name).sort()).toEqual([...HOSTILE, PLAIN].sort());
    for (const name of HOSTILE) {
      const res = await request(`/x/${alice.token}/stat?name=${encodeURIComponent(name)}`);
      expect([name, res.status, ((await res.json()) as { name: string }).name]).toEqual([name, 200, name]);
    }
  });

  it('shows every name escaped on every page that lists or shows it', async () => {
    const a = alice.client;
    const list = (await a.page('/stats')).html;
    const settings = (await a.page('/settings')).html;
    const analyze = (await a.page(`/analyze?s=${aliceIds[HOSTILE[0]]}&s=${aliceIds[HOSTILE[1]]}&s=${aliceIds[HOSTILE[4]]}`)).html;
    for (const name of HOSTILE) {
      expectShownEscaped(list, name, '/stats');
      expectShownEscaped(settings, name, '/settings');
      expectShownEscaped((await a.page(`/stats/${aliceIds[name]}`)).html, name, `/stats/${aliceIds[name]}`);
      expectShownEscaped((await a.page(`/stats?q=${encodeURIComponent(name.slice(0, 12))}`)).html, name, '/stats?q=');
    }
    for (const name of [HOSTILE[0], HOSTILE[1], HOSTILE[4]]) expectShownEscaped(analyze, name, '/analyze');
    expectShownEscaped((await a.page('/dashboard')).html, HOSTILE[1], '/dashboard');
    expect((await a.page('/stats/trash')).html).toContain('alice trashed ALICE_T');
    // And no page carries a script of its own making: only the app's files.
    for (const html of [list, settings, analyze]) {
      for (const tag of html.matchAll(/<script\b[^>]*>/g)) expect(tag[0]).toMatch(/^<script src="\/assets\/[a-z0-9.-]+\.js">$/);
    }
  });

  it('draws every name, and a hostile title, escaped into the SVG of an embed', async () => {
    await alice.client.page('/stats');
    for (const name of HOSTILE) {
      const id = aliceIds[name];
      const sig = embedSignature(SECRET, [id]);
      const title = '<script>alert(2)</script>"\'&';
      const res = await request(`/embed/graph/${id}.svg?sig=${sig}&tf=day&title=${encodeURIComponent(title)}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('image/svg+xml');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
      const svg = await res.text();
      expect([name, svgProblems(svg)]).toEqual([name, []]);
      expect(svg.includes(title)).toBe(false);
      // The name is in the SVG, escaped as XML text (ECharts writes &, <, >, " and ' as entities).
      expect(svg.includes('ALICE'), `svg for ${name} shows the name`).toBe(true);
      // The HTML snippet form escapes the name in its alt attribute.
      const snippet = await (await request(`/embed/graph/${id}.html?sig=${sig}`)).text();
      expect(snippet.includes(name) && UNSAFE.test(name)).toBe(false);
    }
  });
});
