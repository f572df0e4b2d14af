import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnMariadb, type MariadbServer } from '../../scripts/lib/local-db.js';
import { freePort, startStack, type Stack } from '../../scripts/lib/stack.js';
import { createAccount } from '../kit/accounts.js';
import { connectDatabase, withDatabase, type Database } from '../kit/db/client.js';
import { migrateDatabase } from '../kit/db/migrate.js';

// Issue 7: nothing acknowledged is lost or counted twice when an ingest replica is
// SIGKILLed under load (it comes back on its write-ahead log), or when MySQL goes away under
// load and comes back. The stack (two ingest replicas, api) runs on a MariaDB of the test's
// own so it can be killed.

let dir: string;
let dbPort: number;
let db: MariadbServer;
let url: string;
let database: Database;
let stack: Stack;
let ezkey: string;
const STATS = 60;

const startDb = async () => {
  db = await spawnMariadb({ datadir: path.join(dir, 'mariadb'), rundir: path.join(dir, 'run'), port: dbPort, logFile: path.join(dir, 'mariadb.log') });
};

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'osprey-durable-'));
  dbPort = await freePort();
  await startDb();
  url = withDatabase(db.url, 'osprey');
  await migrateDatabase(url);
  database = connectDatabase(url, { connectionLimit: 2 });
  ezkey = (await createAccount(database.pool, 'durable@example.com')).ezkey;
  stack = await startStack({
    databaseUrl: url,
    services: [
      { name: 'ingest', kind: 'rpc', replicas: 2, env: { FLUSH_INTERVAL_MS: '300' } },
      { name: 'api', kind: 'http', replicas: 2, env: { EZKEY_CACHE_MS: '600000' } },
    ],
    env: { HEARTBEAT_MS: '300', WAL_ROOT: path.join(dir, 'wal') },
  });
  await stack.ready(120_000);
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await database?.close().catch(() => {});
  await db?.kill().catch(() => {});
  if (dir) await fs.rm(dir, { recursive: true, force: true });
}, 60_000);

/** Per stat: acknowledged points and failures that may have been applied. */
class Ledger {
  acked = new Map<string, number>();
  maybe = new Map<string, number>();
  failures: string[] = [];
  private bump(m: Map<string, number>, k: string) {
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  ok(stat: string) {
    this.bump(this.acked, stat);
  }
  failed(stat: string, why: string, maybeApplied: boolean) {
    this.failures.push(why);
    if (maybeApplied) this.bump(this.maybe, stat);
  }
}

function post(agent: http.Agent, body: string): Promise<{ status: number; text: string } | { error: string; sent: boolean }> {
  return new Promise((resolve) => {
    let sent = false;
    const req = http.request(`http://127.0.0.1:${stack.ports.api}/ez`, { method: 'POST', agent, timeout: 30_000, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('finish', () => (sent = true));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message, sent }));
    req.end(body);
  });
}

/** Sends count=1 points round-robin over `prefix 0..STATS-1` until stop() is called. */
function load(prefix: string, ledger: Ledger) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let running = true;
  let i = 0;
  const loops = Array.from({ length: 8 }, async () => {
    while (running) {
      const stat = `${prefix} ${i++ % STATS}`;
      const failedBefore = ledger.failures.length;
      const r = await post(agent, new URLSearchParams({ ezkey, stat, count: '1' }).toString());
      if ('status' in r) {
        if (r.status === 204) ledger.ok(stat);
        // api answers 5xx "may have been applied" only for a call whose fate it cannot know.
        else ledger.failed(stat, `${r.status} ${r.text}`, r.status >= 500 && !/nothing was (applied|changed)|not applied/.test(r.text));
      } else {
        ledger.failed(stat, r.error, r.sent && r.error !== 'ECONNREFUSED');
      }
      if (ledger.failures.length > failedBefore) await new Promise((r) => setTimeout(r, 2));
    }
  });
  return async () => {
    running = false;
    await Promise.all(loops);
    agent.destroy();
  };
}

async function stored(prefix: string): Promise<Map<string, number>> {
  const [rows] = await database.pool.query<RowDataPacket[]>(
    'SELECT s.name, SUM(r.sum) AS total FROM rollups_1m r JOIN stats s ON s.id = r.stat_id WHERE s.name LIKE ? GROUP BY s.name',
    [`${prefix} %`],
  );
  return new Map(rows.map((r) => [String(r.name), Number(r.total)]));
}

/** Waits until every stat holds at least what was acknowledged and nothing moves for a while. */
async function settled(prefix: string, ledger: Ledger): Promise<Map<string, number>> {
  let last = '';
  let same = 0;
  const until = Date.now() + 60_000;
  for (;;) {
    const now = await stored(prefix).catch(() => new Map<string, number>());
    const key = JSON.stringify([...now].sort());
    same = key === last ? same + 1 : 0;
    last = key;
    const covered = [...ledger.acked].every(([s, n]) => (now.get(s) ?? 0) >= n);
    if ((covered && same >= 5) || Date.now() > until) return now;
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Every stat: exactly what was acknowledged, plus at most its may-have-applied failures. */
function check(ledger: Ledger, inMysql: Map<string, number>) {
  const wrong: string[] = [];
  for (const [stat, acked] of ledger.acked) {
    const have = inMysql.get(stat) ?? 0;
    const maybe = ledger.maybe.get(stat) ?? 0;
    if (have < acked || have > acked + maybe) wrong.push(`${stat}: acknowledged ${acked}, ambiguous ${maybe}, in MySQL ${have}`);
  }
  for (const [stat, have] of inMysql) if (!ledger.acked.has(stat) && have > (ledger.maybe.get(stat) ?? 0)) wrong.push(`${stat}: never acknowledged, in MySQL ${have}`);
  expect(wrong).toEqual([]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('durable acceptance', () => {
  it('keeps every acknowledged point exactly once across a SIGKILLed ingest replica', async () => {
    const ledger = new Ledger();
    const stop = load('kill', ledger);
    await sleep(1500);
    const victim = stack.processes.find((p) => p.service === 'ingest' && p.child.exitCode === null)!;
    victim.child.kill('SIGKILL');
    await victim.exited;
    await sleep(1000);
    const back = stack.restart(victim);
    await sleep(2500);
    await stop();
    expect(back.child.exitCode).toBe(null);
    const total = [...ledger.acked.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(200);
    check(ledger, await settled('kill', ledger));
  }, 120_000);

  it('keeps accepting known stats while MySQL is down, and loses nothing when it is back', async () => {
    const ledger = new Ledger();
    // Every stat exists (and every cache is warm) before the outage: new stats need MySQL.
    const warm = load('outage', ledger);
    await sleep(1500);
    await db.kill();
    const during = [...ledger.acked.values()].reduce((a, b) => a + b, 0);
    await sleep(5000);
    const acceptedWhileDown = [...ledger.acked.values()].reduce((a, b) => a + b, 0) - during;
    await startDb();
    await sleep(3000);
    await warm();
    // Known stats go on being taken (how many depends on the machine's load).
    expect(acceptedWhileDown).toBeGreaterThan(0);
    check(ledger, await settled('outage', ledger));
  }, 120_000);
});
