import fs from 'node:fs/promises';
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../services/kit/accounts.js';
import { createToken } from '../../services/kit/tokens.js';
import { createTestDatabase, TEST_SERVICE_TOKEN, type TestDatabase } from '../../services/kit/testing/db.js';
import type { AgentStatus } from '../agent/agent.js';
import { buildRelease, releaseTimestamp, type BuiltRelease } from '../release.js';
import { parseRoles, SERVICE_NAMES } from '../services.js';
import { ezTraffic, graphTraffic, type LoadGenerator } from './load.js';
import { HealthMonitor } from './monitor.js';
import { REPO_ROOT, restampRelease, startSimHost, waitFor, type SimHost } from './sim.js';

const exec = promisify(execFile);

/**
 * The simulated fleet: four hosts on 127.0.0.11-14, each with its own directory, fake
 * IMDSv2 endpoint and agent (process backend), one MariaDB. Every service runs on two
 * hosts (ingest on three until h4's tags change, then graphing on three), one process per
 * service and host: the machine this runs on in CI has two cores, and a second replica on
 * the same host would prove nothing the second host does not.
 *   h1 api, ingest, graphing             h2 web, ingest, graphing, alerting
 *   h3 api, web, alerting, reporting     h4 ingest, reporting -> (tags change) graphing, reporting
 * api and web are clustered (one process per host, its workers share the public port);
 * `api=1`/`web=1` keep them at one worker each.
 */
const PORT_OFFSET = 20_000;
const CONTROL_PORT = 27_070;
const HOSTS: Array<{ name: string; address: string; tags: Record<string, string> }> = [
  { name: 'h1', address: '127.0.0.11', tags: { 'osprey:roles': 'api,ingest,graphing', 'osprey:replicas': 'api=1' } },
  { name: 'h2', address: '127.0.0.12', tags: { 'osprey:roles': 'web,ingest,graphing,alerting', 'osprey:replicas': 'web=1' } },
  { name: 'h3', address: '127.0.0.13', tags: { 'osprey:roles': 'api,web,alerting,reporting', 'osprey:replicas': 'api=1,web=1' } },
  { name: 'h4', address: '127.0.0.14', tags: { 'osprey:roles': 'ingest,reporting' } },
];
const H4_AFTER: Record<string, string> = { 'osprey:roles': 'graphing,reporting' };

/** service → hosts whose tags name it. */
function placement(tags: Array<Record<string, string>>): Record<string, string[]> {
  const on: Record<string, string[]> = Object.fromEntries(SERVICE_NAMES.map((s) => [s, []]));
  tags.forEach((t, i) => {
    for (const service of parseRoles(t).services.keys()) on[service].push(HOSTS[i].name);
  });
  return on;
}
const hostsWith = (service: string) => HOSTS.filter((h) => parseRoles(h.tags).services.has(service));

let root: string;
let tdb: TestDatabase;
let hosts: SimHost[] = [];
let inventory: string;
let A: BuiltRelease;
let B: BuiltRelease;
let C: BuiltRelease;
let ez: LoadGenerator | undefined;
let graph: LoadGenerator | undefined;
let monitor: HealthMonitor | undefined;
const timings: Record<string, number> = {};
/** When each step ran (unix ms), to check the health monitor watched every one. */
const windows: Record<string, { from: number; to: number }> = {};

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await fn();
  } finally {
    windows[label] = { from: t, to: Date.now() };
    timings[label] = (Date.now() - t) / 1000;
  }
}

/** `npm run deploy -- ...` as an operator runs it. */
async function deploy(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await exec(process.execPath, ['--import', 'tsx', 'scripts/deploy.ts', '--inventory', inventory, ...args], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const statuses = () => Promise.all(hosts.map((h) => h.status()));
const byName = (name: string) => hosts.find((h) => h.name === name)!;
const releaseOf = (s: AgentStatus) => [s.release, ...new Set(s.units.map((u) => u.release))];
function allHealthyOn(s: AgentStatus, release: string): boolean {
  return s.release === release && s.units.length > 0 && s.units.every((u) => u.healthy && u.release === release && u.state === 'running');
}
const unitsOf = (s: AgentStatus) => s.units.map((u) => u.name).sort();

async function storedPoints(): Promise<number> {
  const [rows] = await tdb.database.pool.query<RowDataPacket[]>(
    "SELECT COALESCE(SUM(r.sum), 0) AS total FROM rollups_1m r JOIN stats s ON s.id = r.stat_id WHERE s.name = 'fleet load'",
  );
  return Number(rows[0].total);
}

/** The series answer of the load's stat, as /api/v1/stats/:id/series gives it. */
interface SeriesAnswer {
  stats: Array<{ id: number; name: string; summary: { total: number } | null }>;
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'osprey-fleet-'));
  const t0 = Date.now();
  // Three releases of this commit (one compile: B and C are A's files under their own
  // timestamps, as rebuilding would give); C's ingest cannot start (its health check never passes).
  await timed('build 3 releases', async () => {
    A = await buildRelease({ root: REPO_ROOT, outDir: path.join(root, 'build'), timestamp: releaseTimestamp(new Date(t0)), tarball: false, link: true });
    B = await restampRelease(A, releaseTimestamp(new Date(t0 + 1000)));
    C = await restampRelease(A, releaseTimestamp(new Date(t0 + 2000)), async (dir) => {
      const main = path.join(dir, 'dist/services/ingest/main.js');
      await fs.rm(main);
      await fs.writeFile(main, "process.stderr.write('release C: broken on purpose\\n');\nprocess.exit(1);\n");
    });
  });
  tdb = await createTestDatabase();
  const env = {
    DATABASE_URL: tdb.url,
    SERVICE_TOKEN: TEST_SERVICE_TOKEN,
    LOG_LEVEL: 'warn',
    HEARTBEAT_MS: '500',
    FLUSH_INTERVAL_MS: '500',
    SHUTDOWN_TIMEOUT_MS: '10000',
    // alerting and reporting: no rules or subscriptions here, but keep any mail out of the releases.
    MAIL_OUTBOX_DIR: path.join(root, 'outbox'),
  };
  hosts = await Promise.all(
    HOSTS.map((h) =>
      startSimHost({
        ...h,
        root,
        env,
        portOffset: PORT_OFFSET,
        controlPort: CONTROL_PORT,
        agentEnv: {
          OSPREY_CONVERGE_INTERVAL_MS: '2000',
          OSPREY_HEALTH_TIMEOUT_MS: '30000',
          OSPREY_SETTLE_MS: '1500',
          // Out of the LB's pool before SIGTERM: its 100 ms polls, each a health check of
          // the host's replicas, lag most on a busy machine.
          OSPREY_DRAIN_MS: '1500',
          OSPREY_STOP_TIMEOUT_MS: '20000',
          LOG_LEVEL: 'info',
        },
      }),
    ),
  );
  inventory = path.join(root, 'inventory.json');
  // No tags in the inventory: the deploy script asks each agent what its tags say.
  await fs.writeFile(inventory, JSON.stringify({ hosts: hosts.map((h) => h.host) }, null, 2));
}, 240_000);

afterAll(async () => {
  await ez?.stop();
  await graph?.stop();
  await monitor?.stop();
  await Promise.all(hosts.map((h) => h.stop().catch(() => {})));
  await tdb?.drop();
  if (process.env.KEEP_FLEET) process.stderr.write(`fleet kept in ${root}\n`);
  else await fs.rm(root, { recursive: true, force: true });
  process.stderr.write(`fleet timings (s): ${JSON.stringify(timings)}\n`);
}, 120_000);

describe('a simulated fleet of four hosts', () => {
  it('places every service on two hosts, before and after the tag change', () => {
    for (const tags of [HOSTS.map((h) => h.tags), [...HOSTS.slice(0, 3).map((h) => h.tags), H4_AFTER]]) {
      for (const [service, on] of Object.entries(placement(tags))) expect(on.length, `${service} on ${on.join(', ')}`).toBeGreaterThanOrEqual(2);
    }
  });

  it('deploys, rolls, moves a role, survives a kill and rolls a bad canary back, without failing a request or losing a point', async () => {
    // 1. The plan, then release A everywhere.
    const dry = await deploy('--release', A.dir, '--dry-run');
    expect(dry.code, dry.out).toBe(0);
    expect(dry.out).toContain(`h1 127.0.0.11 roles api=1,ingest,graphing: (none) -> ${A.timestamp}, restarts api-0, ingest-0, graphing-0`);
    expect(dry.out).toContain(`h4 127.0.0.14 roles ingest,reporting: (none) -> ${A.timestamp}, restarts ingest-0, reporting-0`);
    const a = await timed('deploy A to all', () => deploy('--release', A.dir));
    expect(a.code, a.out).toBe(0);
    for (const s of await statuses()) expect(allHealthyOn(s, A.timestamp), JSON.stringify(s)).toBe(true);

    // Traffic and an independent health probe from here to the end: /ez points to the api
    // hosts, graph reads (web -> graphing) to the web hosts, each behind its LB health URL.
    const account = await createAccount(tdb.database.pool, 'fleet@example.com');
    ez = ezTraffic({
      targets: hostsWith('api').map((h) => ({ name: h.name, url: `http://${h.address}:${8088 + PORT_OFFSET}`, lb: `${byName(h.name).control}/lb/api` })),
      ezkey: account.ezkey,
      stat: 'fleet load',
      concurrency: 4,
      pauseMs: 20,
    });
    // One process per host and no extra slots to probe (see HOSTS).
    monitor = new HealthMonitor(
      hosts.map((h) => h.address),
      PORT_OFFSET,
      1,
    );
    ez.start();
    monitor.start();
    await waitFor('traffic', async () => ez!.stats.ok > 50);
    const statId = await waitFor('the load stat to exist', async () => {
      const [rows] = await tdb.database.pool.query<RowDataPacket[]>("SELECT id FROM stats WHERE account_id = ? AND name = 'fleet load'", [account.id]);
      return rows[0] ? Number(rows[0].id) : undefined;
    });
    const token = await createToken(tdb.database.pool, 'access_tokens', account.id, 'fleet graphs');
    const seriesPath = `/api/v1/stats/${statId}/series?tf=1h`;
    graph = graphTraffic({
      targets: hostsWith('web').map((h) => ({ name: h.name, url: `http://${h.address}:${8080 + PORT_OFFSET}`, lb: `${byName(h.name).control}/lb/web` })),
      path: seriesPath,
      token: token.token,
      concurrency: 2,
      pauseMs: 50,
      check: (body) => ((body as SeriesAnswer).stats?.[0]?.id === statId ? undefined : `not the series of stat ${statId}: ${JSON.stringify(body).slice(0, 200)}`),
    });
    graph.start();
    await waitFor('graph reads', async () => graph!.stats.ok > 10);

    // 2. Release B to the graphing hosts only (h1, h2: every replica there moves to B).
    const b1 = await timed('deploy B --role graphing', () => deploy('--release', B.dir, '--role', 'graphing'));
    expect(b1.code, b1.out).toBe(0);
    expect(b1.out).toContain('not targeted: h3, h4');
    let st = await statuses();
    expect(st.map((s) => s.release)).toEqual([B.timestamp, B.timestamp, A.timestamp, A.timestamp]);
    expect(allHealthyOn(st[0], B.timestamp) && allHealthyOn(st[1], B.timestamp), JSON.stringify(st.slice(0, 2))).toBe(true);
    expect(allHealthyOn(st[2], A.timestamp) && allHealthyOn(st[3], A.timestamp), JSON.stringify(st.slice(2))).toBe(true);

    // 3. Then to all, one canary first: the canary is a host that changes (h3).
    const b2 = await timed('deploy B --canary 1', () => deploy('--release', B.dir, '--canary', '1'));
    expect(b2.code, b2.out).toBe(0);
    expect(b2.out).toMatch(/h3 127\.0\.0\.13 .*\[canary\]/);
    expect(b2.out.indexOf('h3: activating')).toBeLessThan(b2.out.indexOf('h4: activating'));
    expect(b2.out).not.toContain('h1: activating');
    for (const s of await statuses()) expect(allHealthyOn(s, B.timestamp), JSON.stringify(s)).toBe(true);

    // 4. h4's tags change from ingest to graphing: its agent (on its timer) starts graphing,
    // then stops ingest (which flushes what it holds on the way out).
    await timed('tag change', async () => {
      byName('h4').setTags(H4_AFTER);
      await waitFor(
        'h4 to run graphing and reporting only',
        async () => {
          const s = await byName('h4').status();
          return JSON.stringify(unitsOf(s)) === JSON.stringify(['graphing-0', 'reporting-0']) && allHealthyOn(s, B.timestamp);
        },
        60_000,
      );
    });

    // 5. SIGKILL h3's api process: the agent starts it again. (Killed between two of its
    // requests and out of the pool until it is gone: see LoadGenerator.killWhenIdle for why.)
    await timed('SIGKILL api on h3', async () => {
      const before = (await byName('h3').status()).units.find((u) => u.service === 'api')!;
      expect(before.pid).toBeGreaterThan(0);
      await ez!.killWhenIdle('h3', before.pid!);
      await waitFor('h3 api to come back', async () => {
        const u = (await byName('h3').status()).units.find((x) => x.service === 'api')!;
        return u.pid !== before.pid && u.restarts === before.restarts + 1 && u.healthy;
      });
    });

    // 6. Release C's ingest never gets healthy: the canary rolls itself back, the rest stay on B.
    const c = await timed('deploy C --canary 1 (bad)', () => deploy('--release', C.dir, '--canary', '1'));
    expect(c.code, c.out).toBe(4);
    expect(c.out).toContain(`h1: failed and rolled back to ${B.timestamp}`);
    st = await statuses();
    for (const s of st) expect(allHealthyOn(s, B.timestamp), JSON.stringify(s)).toBe(true);
    expect(Object.keys(st[0].failed)).toEqual([C.timestamp]);
    expect(st.slice(1).every((s) => !releaseOf(s).includes(C.timestamp))).toBe(true);

    // 7. Every acknowledged point is in the 1-minute rollups, graphs show them all, nothing
    // failed, and no service was ever without a healthy replica.
    const more = { ez: ez.stats.ok, graph: graph.stats.ok };
    await waitFor('a little more traffic', async () => ez!.stats.ok > more.ez && graph!.stats.ok > more.graph);
    const ezStats = await ez.stop();
    ez = undefined;
    const graphStats = await graph.stop();
    graph = undefined;
    const monitor0 = monitor;
    monitor = undefined;
    const samples = await monitor0.stop();
    const minimum = monitor0.minimum();
    const short = monitor0.below(1);
    const stored = await waitFor('the last points to be flushed', async () => {
      const total = await storedPoints();
      return total >= ezStats.ok ? total : undefined;
    }, 20_000).catch(storedPoints);
    // The same total read back through a web host and graphing, as a person would see it.
    const drawn = await waitFor('the series to show every point', async () => {
      const res = await fetch(`http://${hostsWith('web')[0].address}:${8080 + PORT_OFFSET}${seriesPath}`, { headers: { authorization: `Bearer ${token.token}` } });
      const total = res.ok ? ((await res.json()) as SeriesAnswer).stats[0]?.summary?.total : undefined;
      return total === stored ? total : undefined;
    }, 20_000).catch(() => -1);
    process.stderr.write(
      `fleet load: ez ${ezStats.ok} points acknowledged, ${ezStats.failures.length} failed, ${ezStats.refused} refused connections moved to another host, per host ${JSON.stringify(ezStats.byTarget)}; ` +
        `graph ${graphStats.ok} reads, ${graphStats.failures.length} failed, ${graphStats.refused} refused and ${graphStats.resetRetried} reset and moved, per host ${JSON.stringify(graphStats.byTarget)}; ` +
        `stored ${stored}, drawn ${drawn}; min healthy replicas ${JSON.stringify(minimum)} over ${samples.length} samples\n`,
    );
    expect(ezStats.failures).toEqual([]);
    expect(graphStats.failures).toEqual([]);
    expect(stored).toBe(ezStats.ok);
    expect(drawn).toBe(stored);
    for (const h of hostsWith('api')) expect(ezStats.byTarget[h.name], `points through ${h.name}`).toBeGreaterThan(0);
    for (const h of hostsWith('web')) expect(graphStats.byTarget[h.name], `graphs through ${h.name}`).toBeGreaterThan(0);
    expect(short.slice(0, 5), 'samples with a service down').toEqual([]);
    for (const service of SERVICE_NAMES) expect(minimum[service], service).toBeGreaterThanOrEqual(1);
    // The monitor watched every step, and it does see a replica go: during the SIGKILL, api
    // was down to h1's alone.
    for (const [label, w] of Object.entries(windows)) {
      if (w.from >= windows['deploy B --role graphing'].from) expect(monitor0.between(w.from, w.to).length, `samples during ${label}`).toBeGreaterThan(0);
    }
    expect(Math.min(...monitor0.between(windows['SIGKILL api on h3'].from, windows['SIGKILL api on h3'].to).map((x) => x.healthy.api))).toBe(1);
  }, 600_000);
});
