import fs from 'node:fs/promises';
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAccount } from '../../services/kit/accounts.js';
import { createTestDatabase, TEST_SERVICE_TOKEN, type TestDatabase } from '../../services/kit/testing/db.js';
import type { AgentStatus } from '../agent/agent.js';
import { buildRelease, releaseTimestamp, type BuiltRelease } from '../release.js';
import { LoadGenerator } from './load.js';
import { HealthMonitor } from './monitor.js';
import { REPO_ROOT, startSimHost, waitFor, type SimHost } from './sim.js';

const exec = promisify(execFile);

/**
 * The simulated fleet: four hosts on 127.0.0.11-14, each with its own directory, fake
 * IMDSv2 endpoint and agent (process backend), one MariaDB. Roles (TODO: graphing, web,
 * alerting and reporting join here as they land; the scenario's `--role graphing` step
 * uses ingest meanwhile):
 *   h1 api, ingest=2    h2 api, ingest    h3 api    h4 api -> (tags change) ingest
 */
const PORT_OFFSET = 20_000;
const CONTROL_PORT = 27_070;
const HOSTS = [
  { name: 'h1', address: '127.0.0.11', tags: { 'osprey:roles': 'api,ingest', 'osprey:replicas': 'ingest=2,api=2' } },
  { name: 'h2', address: '127.0.0.12', tags: { 'osprey:roles': 'api,ingest', 'osprey:replicas': 'api=2' } },
  { name: 'h3', address: '127.0.0.13', tags: { 'osprey:roles': 'api', 'osprey:replicas': 'api=2' } },
  { name: 'h4', address: '127.0.0.14', tags: { 'osprey:roles': 'api', 'osprey:replicas': 'api=2' } },
];

let root: string;
let tdb: TestDatabase;
let hosts: SimHost[] = [];
let inventory: string;
let A: BuiltRelease;
let B: BuiltRelease;
let C: BuiltRelease;
let load: LoadGenerator | undefined;
let monitor: HealthMonitor | undefined;
const timings: Record<string, number> = {};

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await fn();
  } finally {
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

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'osprey-fleet-'));
  const t0 = Date.now();
  // Three releases of this commit; C's ingest cannot start (its health check never passes).
  await timed('build 3 releases', async () => {
    A = await buildRelease({ root: REPO_ROOT, outDir: path.join(root, 'build'), timestamp: releaseTimestamp(new Date(t0)), tarball: false, link: true });
    B = await buildRelease({ root: REPO_ROOT, outDir: path.join(root, 'build'), timestamp: releaseTimestamp(new Date(t0 + 1000)), tarball: false, link: true });
    C = await buildRelease({
      root: REPO_ROOT,
      outDir: path.join(root, 'build'),
      timestamp: releaseTimestamp(new Date(t0 + 2000)),
      tarball: false,
      link: true,
      patch: (dir) => fs.writeFile(path.join(dir, 'dist/services/ingest/main.js'), "process.stderr.write('release C: broken on purpose\\n');\nprocess.exit(1);\n"),
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
          OSPREY_DRAIN_MS: '700',
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
  await load?.stop();
  await monitor?.stop();
  await Promise.all(hosts.map((h) => h.stop().catch(() => {})));
  await tdb?.drop();
  if (process.env.KEEP_FLEET) process.stderr.write(`fleet kept in ${root}\n`);
  else await fs.rm(root, { recursive: true, force: true });
  process.stderr.write(`fleet timings (s): ${JSON.stringify(timings)}\n`);
}, 120_000);

describe('a simulated fleet of four hosts', () => {
  it('deploys, rolls, moves a role, survives a kill and rolls a bad canary back, without failing a request or losing a point', async () => {
    // 1. The plan, then release A everywhere.
    const dry = await deploy('--release', A.dir, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(`h1 127.0.0.11 roles api=2,ingest=2: (none) -> ${A.timestamp}, restarts api-0, ingest-0, ingest-1`);
    expect(hosts.every((h) => h.status)).toBe(true);
    const a = await timed('deploy A to all', () => deploy('--release', A.dir));
    expect(a.code, a.out).toBe(0);
    for (const s of await statuses()) expect(allHealthyOn(s, A.timestamp), JSON.stringify(s)).toBe(true);

    // Traffic and an independent health probe from here to the end.
    const account = await createAccount(tdb.database.pool, 'fleet@example.com');
    load = new LoadGenerator({
      targets: hosts.map((h) => ({ name: h.name, url: `http://${h.address}:${8088 + PORT_OFFSET}`, lb: `${h.control}/lb/api` })),
      ezkey: account.ezkey,
      stat: 'fleet load',
      concurrency: 4,
      pauseMs: 20,
    });
    monitor = new HealthMonitor(
      hosts.map((h) => h.address),
      PORT_OFFSET,
    );
    load.start();
    monitor.start();
    await waitFor('traffic', async () => load!.stats.ok > 50);

    // 2. Release B to one role only (the issue's `--role graphing`; graphing does not exist yet).
    const b1 = await timed('deploy B --role ingest', () => deploy('--release', B.dir, '--role', 'ingest'));
    expect(b1.code, b1.out).toBe(0);
    let st = await statuses();
    expect(st.map((s) => s.release)).toEqual([B.timestamp, B.timestamp, A.timestamp, A.timestamp]);
    expect(allHealthyOn(st[0], B.timestamp) && allHealthyOn(st[1], B.timestamp)).toBe(true);

    // 3. Then to all, one canary first: the canary is a host that changes (h3).
    const b2 = await timed('deploy B --canary 1', () => deploy('--release', B.dir, '--canary', '1'));
    expect(b2.code, b2.out).toBe(0);
    expect(b2.out).toMatch(/h3 127\.0\.0\.13 .*\[canary\]/);
    expect(b2.out.indexOf('h3: activating')).toBeLessThan(b2.out.indexOf('h4: activating'));
    for (const s of await statuses()) expect(allHealthyOn(s, B.timestamp), JSON.stringify(s)).toBe(true);

    // 4. h4's tags change from api to ingest: its agent (on its timer) starts ingest, then stops api.
    await timed('tag change', async () => {
      byName('h4').setTags({ 'osprey:roles': 'ingest' });
      await waitFor(
        'h4 to run ingest only',
        async () => {
          const s = await byName('h4').status();
          return s.units.length === 1 && s.units[0].name === 'ingest-0' && s.units[0].healthy;
        },
        60_000,
      );
    });

    // 5. SIGKILL h3's api process: the agent starts it again. (Killed between two of its
    // requests: see LoadGenerator.whenIdle for why a request caught mid-flight is not counted
    // against the deploy tooling. New requests meanwhile are refused and go to other hosts.)
    await timed('SIGKILL api on h3', async () => {
      const before = (await byName('h3').status()).units.find((u) => u.service === 'api')!;
      await load!.whenIdle('h3', () => process.kill(before.pid!, 'SIGKILL'));
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

    // 7. Every acknowledged point is in the 1-minute rollups, and nothing failed.
    await waitFor('a little more traffic', async () => load!.stats.ok > 0);
    const stats = await load.stop();
    load = undefined;
    const samples = await monitor.stop();
    const minimum = monitor.minimum();
    monitor = undefined;
    const stored = await waitFor(
      'the last points to be flushed',
      async () => {
        const [rows] = await tdb.database.pool.query<RowDataPacket[]>(
          "SELECT COALESCE(SUM(r.sum), 0) AS total FROM rollups_1m r JOIN stats s ON s.id = r.stat_id WHERE s.name = 'fleet load'",
        );
        const total = Number(rows[0].total);
        return total >= stats.ok ? total : undefined;
      },
      20_000,
    ).catch(() => -1);
    process.stderr.write(
      `fleet load: ${stats.ok} points acknowledged, ${stats.failures.length} failed, ${stats.retried} refused connections moved to another host; per host ${JSON.stringify(stats.byTarget)}; ` +
        `stored ${stored}; min healthy replicas ${JSON.stringify(minimum)} over ${samples.length} samples\n`,
    );
    expect(stats.failures).toEqual([]);
    expect(stored).toBe(stats.ok);
    expect(samples.length).toBeGreaterThan(100);
    for (const service of ['api', 'ingest']) expect(minimum[service], service).toBeGreaterThanOrEqual(1);
  }, 600_000);
});
