// npm run chaos: the faults of issue 7 against the local stack under load, and a table of
// what each cost. The stack runs on a MariaDB of its own (so it can be stopped) in
// .data/chaos/, with two replicas of ingest, api, graphing and web.
//
//   npm run chaos                          # every fault
//   npm run chaos -- --faults=ingest,mysql --mysql-down-sec=10
//
// For every fault a stat of its own receives `count=1` per request from 16 keep-alive
// connections for the whole phase. Afterwards:
//   acknowledged  the 2xx answers
//   in MySQL      SUM(rollups_1m.sum) of the phase's stat, once flushes settle
//   lost          acknowledged points missing from MySQL
//   double        points in MySQL beyond acknowledged + ambiguous failures (a request whose
//                 connection broke after it was sent may or may not have been applied)
//   failed        requests without a 2xx (503s that say nothing was applied included)
// The run exits 1 if any fault lost or double-counted an acknowledged point.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { createAccount } from '../services/kit/accounts.js';
import { connectDatabase, withDatabase } from '../services/kit/db/client.js';
import { migrateDatabase } from '../services/kit/db/migrate.js';
import { spawnMariadb, type MariadbServer } from './lib/local-db.js';
import { freePort, startStack, type RunningProcess, type Stack } from './lib/stack.js';

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'] as const;
  }),
);
const ALL_FAULTS = ['ingest', 'api', 'mysql', 'graphing', 'slow'] as const;
type Fault = (typeof ALL_FAULTS)[number];
const faults = (args.get('faults')?.split(',') ?? [...ALL_FAULTS]) as Fault[];
for (const f of faults) {
  if (!ALL_FAULTS.includes(f)) {
    console.error(`unknown fault "${f}": choose from ${ALL_FAULTS.join(', ')}`);
    process.exit(2);
  }
}
const MYSQL_DOWN_SEC = Number(args.get('mysql-down-sec') ?? 30);
const PHASE_SEC = Number(args.get('phase-sec') ?? 6);
const CONNECTIONS = 16;

const dir = path.resolve('.data/chaos');
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
const dbPort = await freePort();
const startDb = () => spawnMariadb({ datadir: path.join(dir, 'mariadb'), rundir: path.join(dir, 'run'), port: dbPort, logFile: path.join(dir, 'mariadb.log') });
let db: MariadbServer = await startDb();
const url = withDatabase(db.url, 'osprey');
await migrateDatabase(url);
const setup = connectDatabase(url, { connectionLimit: 2 });
const account = await createAccount(setup.pool, 'chaos@example.com');
await setup.close();

const stack: Stack = await startStack({
  databaseUrl: url,
  services: [
    { name: 'ingest', kind: 'rpc', replicas: 2, env: { FLUSH_INTERVAL_MS: '500' } },
    { name: 'graphing', kind: 'rpc', replicas: 2 },
    { name: 'api', kind: 'http', replicas: 2, env: { RATE_LIMIT_POINTS_PER_SEC: '0', HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '5000' } },
    { name: 'web', kind: 'http', replicas: 2 },
  ],
  env: { HEARTBEAT_MS: '500', WAL_ROOT: path.join(dir, 'wal'), LOG_LEVEL: 'error' },
  stdio: 'inherit',
});
await stack.ready(120_000);
const apiUrl = `http://127.0.0.1:${stack.ports.api}`;

interface Ledger {
  sent: number;
  acked: number;
  failed: number;
  ambiguous: number;
  errors: Map<string, number>;
}

/** Posts count=1 to `stat` from CONNECTIONS keep-alive connections until stopped. */
function load(stat: string) {
  const ledger: Ledger = { sent: 0, acked: 0, failed: 0, ambiguous: 0, errors: new Map() };
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const body = new URLSearchParams({ ezkey: account.ezkey, stat, count: '1' }).toString();
  let running = true;
  const fail = (what: string, ambiguous: boolean) => {
    ledger.failed++;
    if (ambiguous) ledger.ambiguous++;
    ledger.errors.set(what, (ledger.errors.get(what) ?? 0) + 1);
  };
  const one = () =>
    new Promise<void>((resolve) => {
      ledger.sent++;
      let written = false;
      const req = http.request(`${apiUrl}/ez`, { method: 'POST', agent, timeout: 20_000, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) ledger.acked++;
          // A 5xx may have been applied unless it says nothing was (api tells the two apart).
          else fail(`HTTP ${code} ${text.replace(/\(request id [^)]*\)/, '(request id …)').slice(0, 90)}`, code >= 500 && !/nothing was (recorded|changed|applied)/.test(text));
          resolve();
        });
        res.on('error', () => {
          fail('response broken', true);
          resolve();
        });
      });
      req.on('finish', () => (written = true));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        // Refused: nothing was sent. A break after the request was written: maybe applied.
        fail(err.code ?? err.message, written && err.code !== 'ECONNREFUSED');
        resolve();
      });
      req.end(body);
    });
  const loops = Array.from({ length: CONNECTIONS }, async () => {
    while (running) {
      const failedBefore = ledger.failed;
      await one();
      // Back off a little after a failure only, so a down service is not hammered in a tight loop.
      if (ledger.failed > failedBefore) await new Promise((r) => setTimeout(r, 5));
    }
  });
  return {
    ledger,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return ledger;
    },
  };
}

async function storedSum(stat: string): Promise<number> {
  const conn = await mysql.createConnection({ uri: url });
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT COALESCE(SUM(r.sum), 0) AS total FROM rollups_1m r JOIN stats s ON s.id = r.stat_id WHERE s.name = ?', [stat]);
    return Number(rows[0].total);
  } finally {
    await conn.end();
  }
}

/** Waits until the stored sum stops moving and covers what was acknowledged (or 60 s). */
async function settle(stat: string, acked: number): Promise<number> {
  let last = -1;
  let stable = 0;
  const until = Date.now() + 60_000;
  for (;;) {
    const now = await storedSum(stat).catch(() => -1);
    stable = now === last ? stable + 1 : 0;
    last = now;
    if ((now >= acked && stable >= 4) || Date.now() > until) return now;
    await new Promise((r) => setTimeout(r, 500));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const live = (service: string) => stack.processes.filter((p) => p.service === service && p.child.exitCode === null && p.child.signalCode === null);

async function waitRegistered(service: string, n: number): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const conn = await mysql.createConnection({ uri: url }).catch(() => undefined);
    if (conn) {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM service_instances WHERE service = ? AND heartbeat_at > NOW(3) - INTERVAL 2 SECOND', [service]);
      await conn.end();
      if (Number(rows[0].n) >= n) return;
    }
    await sleep(200);
  }
  throw new Error(`${service} did not get back to ${n} live replicas`);
}

/** Opens `n` connections that send a request one byte at a time, slowly; returns how many the server closed. */
async function slowClients(n: number, ms: number): Promise<number> {
  let closed = 0;
  const socks: net.Socket[] = [];
  const head = `POST /ez HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\n`;
  for (let i = 0; i < n; i++) {
    const s = net.connect(stack.ports.api, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => closed++);
    socks.push(s);
  }
  const end = Date.now() + ms;
  let i = 0;
  while (Date.now() < end) {
    for (const s of socks) if (!s.destroyed) s.write(head[i % head.length]);
    i++;
    await sleep(1000);
  }
  for (const s of socks) s.destroy();
  await sleep(50);
  return closed;
}

interface Row {
  fault: string;
  sent: number;
  acked: number;
  stored: number;
  lost: number;
  double: number;
  failed: number;
  note: string;
}
const rows: Row[] = [];

async function phase(fault: Fault, act: () => Promise<string>): Promise<void> {
  const stat = `chaos ${fault}`;
  const l = load(stat);
  await sleep(1000);
  let note: string;
  try {
    note = await act();
  } catch (err) {
    note = `fault step failed: ${(err as Error).message}`;
  }
  await sleep(PHASE_SEC * 1000);
  const ledger = await l.stop();
  const stored = await settle(stat, ledger.acked);
  const lost = Math.max(0, ledger.acked - stored);
  const double = Math.max(0, stored - ledger.acked - ledger.ambiguous);
  const errs = [...ledger.errors]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([e, n]) => `${n}× ${e}`)
    .join('; ');
  rows.push({ fault, sent: ledger.sent, acked: ledger.acked, stored, lost, double, failed: ledger.failed, note: [note, errs].filter(Boolean).join(' | ') });
  console.log(`[chaos] ${fault}: sent ${ledger.sent}, acknowledged ${ledger.acked}, in MySQL ${stored}, lost ${lost}, double ${double}, failed ${ledger.failed}${errs ? ` (${errs})` : ''}`);
}

const kill = (p: RunningProcess, signal: NodeJS.Signals) => {
  p.child.kill(signal);
  return p.exited;
};

for (const fault of faults) {
  if (fault === 'ingest') {
    await phase('ingest', async () => {
      const victim = live('ingest')[0];
      await kill(victim, 'SIGKILL');
      await sleep(1000);
      stack.restart(victim);
      await waitRegistered('ingest', 2);
      return `SIGKILL ingest-${victim.index}, restarted on its write-ahead log`;
    });
  } else if (fault === 'api') {
    await phase('api', async () => {
      const primary = live('api')[0];
      const workers = execFileSync('pgrep', ['-P', String(primary.child.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
      process.kill(workers[0], 'SIGKILL');
      return `SIGKILL api worker ${workers[0]} (of ${workers.length}); the primary starts another`;
    });
  } else if (fault === 'mysql') {
    await phase('mysql', async () => {
      await db.kill();
      await sleep(MYSQL_DOWN_SEC * 1000);
      db = await startDb();
      return `MariaDB killed for ${MYSQL_DOWN_SEC} s, then started again`;
    });
  } else if (fault === 'graphing') {
    await phase('graphing', async () => {
      const victim = live('graphing')[0];
      await kill(victim, 'SIGTERM');
      stack.restart(victim);
      await waitRegistered('graphing', 2);
      return `graphing-${victim.index} restarted (SIGTERM, start)`;
    });
  } else if (fault === 'slow') {
    await phase('slow', async () => {
      const closed = await slowClients(200, 15_000);
      return `200 slow clients (one byte a second) for 15 s: ${closed} cut off by the server`;
    });
  }
}

await stack.stop();
await db.stop();

const cols: (keyof Row)[] = ['fault', 'sent', 'acked', 'stored', 'lost', 'double', 'failed', 'note'];
const heads = ['fault', 'points sent', 'acknowledged', 'in MySQL', 'lost', 'double counts', 'failed requests', 'what happened'];
console.log(`\n| ${heads.join(' | ')} |\n|${heads.map(() => '---').join('|')}|`);
for (const r of rows) console.log(`| ${cols.map((c) => String(r[c])).join(' | ')} |`);
const bad = rows.filter((r) => r.lost > 0 || r.double > 0);
console.log(bad.length === 0 ? '\nno acknowledged point was lost or counted twice.' : `\n${bad.length} fault(s) lost or double-counted acknowledged points.`);
process.exit(bad.length === 0 ? 0 : 1);
