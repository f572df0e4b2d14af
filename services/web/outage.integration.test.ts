import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphService } from '../../gen/osprey/v1/graphing_pb.js';
import { freePort } from '../../scripts/lib/stack.js';
import { spawnMariadb, type MariadbServer } from '../../scripts/lib/local-db.js';
import { connectDatabase, withDatabase, type Database } from '../kit/db/client.js';
import { migrateDatabase } from '../kit/db/migrate.js';
import { createMetrics } from '../kit/metrics.js';
import { createBalancedClient, type BalancedTransport } from '../kit/rpc/client.js';
import { testBaseConfig, TEST_SERVICE_TOKEN } from '../kit/testing/db.js';
import { build as buildGraphing, type GraphingReplica } from '../graphing/server.js';
import { buildApp } from './app.js';
import { SessionClient } from './testing/session-client.js';

// Issue 7: while MySQL is down, web and graphing answer 503 with a message that says so, and
// they recover by themselves when it is back. The test owns its MariaDB (a private server in
// a temporary directory), so stopping it disturbs no other test.

const log = pino({ level: 'silent' });
let dir: string;
let port: number;
let server: MariadbServer;
let url: string;
let database: Database;
let graphing: GraphingReplica;
let transport: BalancedTransport;
let app: ReturnType<typeof buildApp>;

async function startServer(): Promise<void> {
  server = await spawnMariadb({ datadir: path.join(dir, 'data'), rundir: path.join(dir, 'run'), port, logFile: path.join(dir, 'mariadb.log') });
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'osprey-outage-'));
  port = await freePort();
  await startServer();
  url = withDatabase(server.url, 'osprey');
  await migrateDatabase(url);
  database = connectDatabase(url);
  graphing = await buildGraphing({
    config: { ...testBaseConfig(url), HEARTBEAT_MS: 300, ROLLUP_1M_RETENTION_DAYS: 30, ROLLUP_1H_RETENTION_DAYS: 730, RENDER_CONCURRENCY: 2, RENDER_QUEUE_MAX: 64, QUERY_MAX_STATS: 20 },
    log,
    database: connectDatabase(url),
    metrics: createMetrics('graphing'),
  });
  const balanced = createBalancedClient(GraphService, { pool: database.pool, service: 'graphing', serviceToken: TEST_SERVICE_TOKEN, log });
  transport = balanced.transport;
  transport.start();
  app = buildApp({ pool: database.pool, graph: balanced.client, log, secret: 'outage-test-secret-0123456789', sessionTtlHours: 24, secureCookies: false, apiPublicUrl: 'http://localhost:8088', now: Date.now });
}, 120_000);

afterAll(async () => {
  transport?.close();
  await graphing?.stop().catch(() => {});
  await database?.close().catch(() => {});
  await server?.kill().catch(() => {});
  if (dir) await fs.rm(dir, { recursive: true, force: true });
}, 60_000);

describe('a MySQL outage', () => {
  it('gets 503s that say the database is down from web and graphing, then recovers by itself', async () => {
    const client = new SessionClient((p, init) => app.request(p, init));
    await client.page('/signup');
    expect((await client.post('/signup', { email: 'outage@example.com', password: 'correct horse battery' })).status).toBe(303);
    const [users] = await database.pool.query<RowDataPacket[]>('SELECT account_id FROM users');
    const accountId = Number(users[0].account_id);
    const [ins] = await database.pool.query<ResultSetHeader>("INSERT INTO stats (account_id, name, kind) VALUES (?, 'sales', 1)", [accountId]);
    const statId = ins.insertId;
    const bucket = Math.floor(Date.now() / 60_000) * 60 - 120;
    await database.pool.query('INSERT INTO rollups_1m (stat_id, bucket, count, sum, min, max, sumsq, last_value, last_time) VALUES (?, ?, 1, 7, 7, 7, 49, 7, ?)', [statId, bucket, bucket * 1000]);
    // Up: the list and the series (through graphing) answer.
    await until('graphing in the registry', async () => ((await client.get(`/api/v1/stats/${statId}/series?tf=1h`)).status === 200 ? true : undefined));

    await server.stop();

    const list = await client.get('/api/v1/stats');
    expect(list.status).toBe(503);
    expect(await list.json()).toEqual({ error: 'unavailable', message: 'the database is unavailable; nothing was changed, try again shortly' });
    expect(list.headers.get('retry-after')).toBe('5');
    const page = await client.get('/stats');
    expect(page.status).toBe(503);
    expect(await page.text()).toContain('the database is unavailable');
    // The series goes through graphing, whose own query fails: its Unavailable reaches the user as a 503 too.
    const series = await client.get(`/api/v1/stats/${statId}/series?tf=1h`);
    expect(series.status).toBe(503);
    expect(((await series.json()) as { message: string }).message).toMatch(/database is unavailable|graphing/);

    await startServer();

    // Nobody restarts web or graphing: their pools reconnect on their own.
    const back = await until('the stats list to answer again', async () => {
      const r = await client.get('/api/v1/stats');
      return r.status === 200 ? ((await r.json()) as { stats: { name: string }[] }) : undefined;
    });
    expect(back.stats.map((s) => s.name)).toEqual(['sales']);
    const again = await until('the series to answer again', async () => {
      const r = await client.get(`/api/v1/stats/${statId}/series?tf=1h`);
      return r.status === 200 ? ((await r.json()) as unknown) : undefined;
    });
    expect(JSON.stringify(again)).toContain('7');
  }, 120_000);
});
