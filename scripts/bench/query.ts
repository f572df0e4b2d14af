// GraphService latency over a year of data for 100 stats, next to a bare SQL select of the
// same rows in the same run (the ratio is the service's overhead: RPC, shaping, encoding).
//
// Run: npm run bench:query [-- --iterations 200] [--fresh] [--profile] [--only 'Query 1 year']
//
// Data (written once into its own database, osprey_bench_query, and reused while fresh):
// 100 stats (50 counters, 50 values), one rollup per minute for a year, stored as ingest
// and retention keep it: rollups_1m for the last 30 days (4.32M rows), rollups_1h for the
// year (876,000 rows), rollups_1d for the year (36,500 rows). Every coarser row is the
// exact merge of the minute rows it covers. Rows go in with LOAD DATA LOCAL INFILE fed
// by a stream, in primary-key order.
//
// Two graphing replicas run as their own processes (as npm start runs them) and are
// called through the balanced client; each iteration runs the bare SELECT and then the
// RPC, alternating, so machine noise lands on both alike.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import mysql from 'mysql2/promise';
import { pino } from 'pino';
import { ChartFormat, GraphService } from '../../gen/osprey/v1/graphing_pb.js';
import { createAccount, findAccountByEmail } from '../../services/kit/accounts.js';
import { connectDatabase, withDatabase } from '../../services/kit/db/client.js';
import { migrateDatabase } from '../../services/kit/db/migrate.js';
import type { RollupColumns } from '../../services/kit/db/schema.js';
import { createBalancedClient } from '../../services/kit/rpc/client.js';
import { planQuery } from '../../services/graphing/query.js';
import { resolveDatabase } from '../lib/local-db.js';
import { startStack } from '../lib/stack.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ITERATIONS = option('iterations', 200);
const STATS = 100;
const MIN = 60;
const HOUR = 3600;
const DAY = 86_400;
const YEAR = 365 * DAY;
const MINUTE_DAYS = 30;
const EMAIL = 'bench-query@osprey.local';

const local = await resolveDatabase(process.env);
const url = withDatabase(local.url, 'osprey_bench_query');
await migrateDatabase(url);
const database = connectDatabase(url, { connectionLimit: 4 });
const pool = database.pool;

// ---------------------------------------------------------------- data

/** A 32-bit hash of (stat, minute) in [0, 1): the data is a pure function of both, so every table agrees. */
function noise(stat: number, minute: number, salt: number): number {
  let h = Math.imul(stat ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(minute, 0xc2b2ae35) ^ salt;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return ((h ^ (h >>> 16)) >>> 0) / 4_294_967_296;
}

type Row = Omit<RollupColumns, 'statId'>;

const isCounter = (i: number) => i % 2 === 0;

/** The minute row of stat i (0-based) at bucket t, or false when the minute has no data. */
function minuteRow(i: number, t: number, out: Row): boolean {
  const m = t / MIN;
  const daily = Math.sin((2 * Math.PI * (t % DAY)) / DAY);
  const base = 20 + (i % 17) * 7;
  out.bucket = t;
  out.lastTime = (t + 59) * 1000;
  if (isCounter(i)) {
    const sum = Math.round(base * (0.6 + 0.5 * daily) * (0.5 + noise(i, m, 1)));
    if (sum <= 0) return false;
    const count = Math.max(1, Math.round(sum / 3));
    out.count = count;
    out.sum = sum;
    out.min = 1;
    out.max = sum - count + 1;
    out.sumsq = count;
    out.lastValue = 1;
    return true;
  }
  const n = 1 + Math.floor(noise(i, m, 2) * 5);
  const mean = base * (1 + 0.3 * daily) * (0.8 + 0.4 * noise(i, m, 3));
  const spread = mean * 0.2;
  out.count = n;
  out.sum = n * mean;
  out.min = mean - spread;
  // Now and then a spike, so charts have peaks to keep.
  out.max = noise(i, m, 4) < 0.001 ? mean * 8 : mean + spread;
  out.sumsq = n * (mean * mean + (spread * spread) / 3);
  out.lastValue = mean;
  return true;
}

function mergeInto(acc: Row, r: Row): void {
  acc.count += r.count;
  acc.sum += r.sum;
  acc.sumsq += r.sumsq;
  if (r.min < acc.min) acc.min = r.min;
  if (r.max > acc.max) acc.max = r.max;
  if (r.lastTime > acc.lastTime) {
    acc.lastTime = r.lastTime;
    acc.lastValue = r.lastValue;
  }
}

const line = (statId: number, r: Row) =>
  `${statId}\t${r.bucket}\t${r.count}\t${r.sum}\t${r.min}\t${r.max}\t${r.sumsq}\t${r.lastValue}\t${r.lastTime}\n`;

/** TSV of one table's rows, stat after stat in key order, in ~1 MB chunks. */
async function* tableRows(statIds: number[], bucketSec: number, fromSec: number, toSec: number): AsyncGenerator<string> {
  let chunk = '';
  const minute: Row = { bucket: 0, count: 0, sum: 0, min: 0, max: 0, sumsq: 0, lastValue: 0, lastTime: 0 };
  for (let i = 0; i < statIds.length; i++) {
    for (let b = fromSec; b < toSec; b += bucketSec) {
      const acc: Row = { bucket: b, count: 0, sum: 0, min: Infinity, max: -Infinity, sumsq: 0, lastValue: 0, lastTime: -1 };
      for (let t = b; t < b + bucketSec; t += MIN) if (minuteRow(i, t, minute)) mergeInto(acc, minute);
      if (acc.count > 0) chunk += line(statIds[i], acc);
      if (chunk.length > 1_000_000) {
        yield chunk;
        chunk = '';
      }
    }
  }
  if (chunk) yield chunk;
}

async function loadTable(table: string, rows: AsyncGenerator<string>): Promise<number> {
  const conn = await mysql.createConnection({ uri: url, flags: ['+LOCAL_FILES'] });
  try {
    await conn.query('SET unique_checks = 0');
    const [res] = await conn.query({
      sql: `LOAD DATA LOCAL INFILE 'stream' INTO TABLE ${table} FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' (stat_id, bucket, count, sum, min, max, sumsq, last_value, last_time)`,
      infileStreamFactory: () => Readable.from((async function* () {
        for await (const s of rows) yield Buffer.from(s);
      })()),
    });
    return (res as mysql.ResultSetHeader).affectedRows;
  } finally {
    await conn.end();
  }
}

interface Dataset {
  accountId: number;
  statIds: number[];
  /** Exclusive end of the data, a UTC midnight. */
  endSec: number;
}

async function existingDataset(): Promise<Dataset | undefined> {
  const account = await findAccountByEmail(pool, EMAIL);
  if (!account) return undefined;
  const [stats] = await pool.query<mysql.RowDataPacket[]>('SELECT id FROM stats WHERE account_id = ? ORDER BY id', [account.id]);
  if (stats.length !== STATS) return undefined;
  const statIds = stats.map((s) => Number(s.id));
  const last = statIds.at(-1)!;
  const counts: number[] = [];
  for (const t of ['rollups_1m', 'rollups_1h', 'rollups_1d']) {
    const [r] = await pool.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n, MAX(bucket) AS b FROM ${t} WHERE stat_id = ?`, [last]);
    counts.push(Number(r[0].n));
    if (t === 'rollups_1d') {
      const endSec = Number(r[0].b) + DAY;
      // The 1m rows must still be within the service's 30-day minute retention for the day query.
      const complete = counts[0] === (MINUTE_DAYS * DAY) / MIN && counts[1] === YEAR / HOUR && counts[2] === YEAR / DAY;
      if (complete && Date.now() / 1000 - endSec < 20 * DAY) return { accountId: account.id, statIds, endSec };
    }
  }
  return undefined;
}

async function writeDataset(): Promise<Dataset> {
  console.log('writing the data set (once; --fresh rewrites it)…');
  const started = performance.now();
  for (const t of ['rollups_1m', 'rollups_1h', 'rollups_1d', 'stats', 'flushes']) await pool.query(`TRUNCATE TABLE ${t}`);
  await pool.query('DELETE FROM accounts WHERE email = ?', [EMAIL]);
  const account = await createAccount(pool, EMAIL);
  const statIds: number[] = [];
  for (let i = 0; i < STATS; i++) {
    const [res] = await pool.query<mysql.ResultSetHeader>('INSERT INTO stats (account_id, name, kind) VALUES (?, ?, ?)', [
      account.id,
      `bench.${isCounter(i) ? 'counter' : 'value'}.${String(i).padStart(2, '0')}`,
      isCounter(i) ? 1 : 2,
    ]);
    statIds.push(res.insertId);
  }
  const endSec = Math.floor(Date.now() / 1000 / DAY) * DAY;
  const plan: [string, number, number][] = [
    ['rollups_1m', MIN, endSec - MINUTE_DAYS * DAY],
    ['rollups_1h', HOUR, endSec - YEAR],
    ['rollups_1d', DAY, endSec - YEAR],
  ];
  for (const [table, bucketSec, fromSec] of plan) {
    const t = performance.now();
    const n = await loadTable(table, tableRows(statIds, bucketSec, fromSec, endSec));
    const s = (performance.now() - t) / 1000;
    console.log(`  ${table}: ${n.toLocaleString('en')} rows in ${s.toFixed(1)} s (${Math.round(n / s).toLocaleString('en')} rows/s)`);
  }
  await pool.query('ANALYZE TABLE rollups_1m, rollups_1h, rollups_1d');
  console.log(`  done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { accountId: account.id, statIds, endSec };
}

const data = (!flag('fresh') && (await existingDataset())) || (await writeDataset());
const [sizes] = await pool.query<mysql.RowDataPacket[]>(
  "SELECT TABLE_NAME AS t, TABLE_ROWS AS n, ROUND((DATA_LENGTH + INDEX_LENGTH) / 1048576) AS mb FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'rollups_%' ORDER BY TABLE_NAME",
);
console.log(`data: ${STATS} stats ending ${new Date(data.endSec * 1000).toISOString().slice(0, 10)}; ${sizes.map((r) => `${r.t} ~${Number(r.n).toLocaleString('en')} rows ${r.mb} MB`).join(', ')}`);

// ---------------------------------------------------------------- the service

// Stale registrations from an earlier, killed run would make ready() return early.
await pool.query("DELETE FROM service_instances WHERE service = 'graphing'");
const profDir = path.resolve('.data/prof');
if (flag('profile')) fs.mkdirSync(profDir, { recursive: true });
const stack = await startStack({
  databaseUrl: url,
  services: [{ name: 'graphing', kind: 'rpc', replicas: 2, nodeArgs: flag('profile') ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [] }],
  stdio: 'inherit',
});
await stack.ready();
const log = pino({ level: 'warn' });
const { client, transport } = createBalancedClient(GraphService, { pool, service: 'graphing', serviceToken: stack.serviceToken, log });
transport.start();

// ---------------------------------------------------------------- measuring

let seed = 12345;
const pick = <T>(a: readonly T[]): T => a[(seed = (seed * 48_271) % 2_147_483_647) % a.length];

/** CPU time (user + system, all threads) the replicas have used, ms; Linux only, else NaN. */
function replicaCpuMs(): number {
  let ticks = 0;
  for (const p of stack.processes) {
    try {
      const stat = fs.readFileSync(`/proc/${p.child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      return NaN;
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

const q = (ms: number[], p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];

interface Case {
  label: string;
  rowsPerCall: number;
  sql: () => Promise<unknown>;
  rpc: () => Promise<unknown>;
  /** p99 target, ms. */
  target?: number;
}

/**
 * The rows a call reads, selected bare, the way the service selects them (a prepared
 * statement: binary protocol), on the table the service picks.
 */
function sqlSelect(table: string, statIds: number[], ranges: [number, number][]) {
  const where = ranges.map(() => '(bucket >= ? AND bucket < ?)').join(' OR ');
  const ids = [...new Set(statIds)];
  const sql = `SELECT stat_id, bucket, count, sum, min, max, sumsq, last_value, last_time FROM ${table} WHERE stat_id IN (${ids.map(() => '?').join(', ')}) AND (${where})`;
  return pool.execute({ sql, values: [...ids, ...ranges.flat()], rowsAsArray: true });
}

function queryCase(label: string, durationSec: number, target?: number): Case {
  const from = data.endSec - durationSec;
  const plan = planQuery({ fromSec: from, toSec: data.endSec, nowSec: Math.floor(Date.now() / 1000), retention: { '1m': MINUTE_DAYS * DAY, '1h': 730 * DAY } });
  let id = 0;
  return {
    label: `Query ${label} (${plan.resolution}, ${plan.points} pts)`,
    rowsPerCall: plan.points,
    sql: () => sqlSelect(`rollups_${plan.resolution}`, [(id = pick(data.statIds))], [[plan.fromSec, plan.toSec]]),
    rpc: () => client.query({ accountId: data.accountId, statIds: [id], from, to: data.endSec }),
    target,
  };
}

function renderCase(label: string, n: number, durationSec: number, compare: number, width: number, height: number, format: ChartFormat, target?: number): Case {
  const from = data.endSec - durationSec;
  const plan = planQuery({ fromSec: from, toSec: data.endSec, nowSec: Math.floor(Date.now() / 1000), retention: { '1m': MINUTE_DAYS * DAY, '1h': 730 * DAY } });
  let ids: number[] = [];
  const ranges: [number, number][] = [[plan.fromSec, plan.toSec]];
  if (compare) ranges.push([plan.fromSec - compare, plan.toSec - compare]);
  return {
    label: `Render ${label}`,
    rowsPerCall: plan.points * n * ranges.length,
    sql: () => {
      ids = Array.from({ length: n }, () => pick(data.statIds));
      return sqlSelect(`rollups_${plan.resolution}`, ids, ranges);
    },
    rpc: () =>
      client.render({ accountId: data.accountId, statIds: ids, from, to: data.endSec, compareOffsetSec: compare, width, height, format, title: label }),
    target,
  };
}

const cases: Case[] = [
  queryCase('1 day', DAY),
  queryCase('1 week', 7 * DAY),
  queryCase('1 month', 30 * DAY),
  queryCase('1 year', YEAR, 50),
  queryCase('1 year x3 + compare', YEAR),
  renderCase('PNG 1 week + compare, 1 stat, 400x300', 1, 7 * DAY, 7 * DAY, 400, 300, ChartFormat.PNG),
  renderCase('PNG 1 year, 3 stats, 800x300', 3, YEAR, 0, 800, 300, ChartFormat.PNG, 150),
  renderCase('SVG 1 year, 3 stats, 800x300', 3, YEAR, 0, 800, 300, ChartFormat.SVG),
];
// The x3 case asks three stats and their comparison a year back in one call.
{
  const c = cases[4];
  const from = data.endSec - YEAR;
  let ids: number[] = [];
  c.rowsPerCall = 365 * 3 * 2;
  c.sql = () => {
    ids = [pick(data.statIds), pick(data.statIds), pick(data.statIds)];
    return sqlSelect('rollups_1d', ids, [[from - YEAR, data.endSec]]);
  };
  c.rpc = () => client.query({ accountId: data.accountId, statIds: ids, from, to: data.endSec, compareOffsetSec: YEAR });
}

const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');
console.log(`\n${ITERATIONS} calls per case, one at a time, SELECT and RPC alternating; ms. ${os.cpus().length} cores, load average ${load()}\n`);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const header = ['case', 'rows', 'SQL p50', 'SQL p99', 'svc p50', 'svc p99', 'x p50', 'x p99', 'svc CPU/call', 'target'];
const table: string[][] = [];
for (const c of cases) {
  if (only && !c.label.includes(only)) continue;
  for (let i = 0; i < 20; i++) {
    await c.sql();
    await c.rpc();
  }
  const sqlMs: number[] = [];
  const rpcMs: number[] = [];
  const cpuBefore = replicaCpuMs();
  for (let i = 0; i < ITERATIONS; i++) {
    let t = performance.now();
    await c.sql();
    sqlMs.push(performance.now() - t);
    t = performance.now();
    await c.rpc();
    rpcMs.push(performance.now() - t);
  }
  const cpuPerCall = (replicaCpuMs() - cpuBefore) / ITERATIONS;
  sqlMs.sort((a, b) => a - b);
  rpcMs.sort((a, b) => a - b);
  const row = [
    c.label,
    String(c.rowsPerCall),
    q(sqlMs, 0.5).toFixed(2),
    q(sqlMs, 0.99).toFixed(2),
    q(rpcMs, 0.5).toFixed(2),
    q(rpcMs, 0.99).toFixed(2),
    (q(rpcMs, 0.5) / q(sqlMs, 0.5)).toFixed(1),
    (q(rpcMs, 0.99) / q(sqlMs, 0.99)).toFixed(1),
    cpuPerCall.toFixed(1),
    c.target ? `p99 < ${c.target}: ${q(rpcMs, 0.99) < c.target ? 'met' : 'MISSED'}` : '',
  ];
  table.push(row);
  console.log(row.join('  |  '));
}

const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
const fmt = (r: string[]) => `| ${r.map((c, i) => (i === 0 || i === 9 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
console.log(`\n${fmt(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n${table.map(fmt).join('\n')}`);
console.log(`load average at the end: ${load()}`);
console.log('\nx = service / bare SELECT of the same rows (RPC over HTTP/2, shaping, encoding, and for Render the drawing).');
console.log('svc CPU/call = CPU ms the two replicas used per call (all threads, so PNG rasterising included): the cost, whatever the load.');

transport.close();
await stack.stop();
await database.close();
await local.stop();
if (flag('profile')) console.log(`CPU profiles of the two replicas: ${profDir}`);
