/**
 * `npm run bench:http`: StatHat /ez through the real api and ingest processes, against
 * a bare node:http server in the same run (the ceiling).
 *
 * Servers (api with one worker, one ingest replica, the bare server) are pinned to core 0
 * and the load generator (scripts/bench/load.ts) to core 1 with taskset, so "server side"
 * means one core for both designs. Every phase posts to its own stat; at the end the api
 * and ingest are stopped with SIGTERM (ingest flushes everything) and the count of every
 * stat in rollups_1m must equal the 2xx responses the generator saw for it.
 *
 * Options: --runs=3 --duration=5 (seconds per saturation run) --rate-duration=10
 *          --connections=50 --cpu-prof=DIR (writes .cpuprofile files of api, ingest and bare)
 *          --phases=saturation,rate,batch (a subset, e.g. to profile one) --rates=1000,5000
 *          --keep (leave the database)
 *          --trace=DIR (each kept fixed-rate run writes DIR/<server>-<rate>.trace: a line per
 *          request, "due ms since the start, latency µs", to see when the slow ones came)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RowDataPacket } from 'mysql2/promise';
import { envOf, nodeArgsOf } from '../../deploy/services.js';
import { createAccount } from '../../services/kit/accounts.js';
import { createTestDatabase, TEST_SERVICE_TOKEN } from '../../services/kit/testing/db.js';
import type { LoadResult, LoadSpec } from './load.js';
import { describeNoise, isNoisy, loadCommand, noiseMeter, processesCpuMs, runAgainIfNoisy } from './machine.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'] as const;
  }),
);
const RUNS = Number(args.get('runs') ?? 3);
const SAT_MS = Number(args.get('duration') ?? 5) * 1000;
const RATE_MS = Number(args.get('rate-duration') ?? 10) * 1000;
const CONNECTIONS = Number(args.get('connections') ?? 50);
const CPU_PROF = args.get('cpu-prof');
const SERVER_CPU = args.get('server-cpu') ?? '0';
const LOAD_CPU = args.get('load-cpu') ?? '1';
const RATES = (args.get('rates') ?? '1000,5000').split(',').map(Number);
const PHASES = new Set((args.get('phases') ?? 'saturation,rate,batch').split(','));
const TRACE = args.get('trace');
if (TRACE) mkdirSync(TRACE, { recursive: true });
const BATCH = 100;
/**
 * The api's per-account rate limit (default 50,000 points/s) would refuse most of the JSON
 * phase, which sends one account's points as fast as the api takes them. It stays on (its
 * cost is part of every request) with a limit the benchmark cannot reach.
 */
const RATE_LIMIT = 1_000_000_000;

interface Proc {
  child: ChildProcess;
  /** Every pid whose CPU counts for this server (cluster primary and worker). */
  pids: number[];
  exited: Promise<number | null>;
}

function nodeArgs(script: string): string[] {
  const prof = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(CPU_PROF)}`] : [];
  // A service starts with its own flags, as deployed (deploy/services.ts).
  const service = /^services\/([a-z]+)\/main\.ts$/.exec(script)?.[1];
  return ['-c', SERVER_CPU, process.execPath, ...prof, ...(service ? nodeArgsOf(service) : []), '--import', 'tsx', path.join(root, script)];
}

/** Starts a server process and resolves once a stdout line matches `ready`. */
/** `defaults` (a service's own environment, deploy/services.ts) yield to this shell's, as under the agent and npm start; `env` wins over both. */
function startServer(script: string, env: Record<string, string>, ready: RegExp, defaults: Record<string, string> = {}): Promise<{ proc: Proc; match: RegExpExecArray }> {
  const child = spawn('taskset', nodeArgs(script), { cwd: root, env: { ...defaults, ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let tail = '';
  child.stderr!.on('data', (d) => (tail = (tail + d).slice(-4000)));
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (/"level":(50|60)/.test(line)) process.stderr.write(`[${path.basename(path.dirname(script))}] ${line}\n`);
        const m = ready.exec(line);
        if (m) {
          resolve({ proc: { child, pids: [child.pid!], exited }, match: m });
        }
      }
    };
    child.stdout!.on('data', onData);
    void exited.then((code) => reject(new Error(`${script} exited (${code}) before it was ready:\n${tail}`)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const [cmd, argv] = loadCommand(LOAD_CPU, [process.execPath, '--import', 'tsx', path.join(root, 'scripts/bench/load.ts'), JSON.stringify(spec)]);
    const child = spawn(cmd, argv, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load generator exited ${code}`))));
  });
}

function formRequest(port: number, body: string): string {
  return `POST /ez HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

function jsonRequest(port: number, body: string): string {
  return `POST /ez HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (us: number) => (us / 1000).toFixed(2);

interface Row {
  phase: string;
  server: string;
  rps: number;
  p50: string;
  p99: string;
  cpuUs: string;
  other: string;
}

async function main() {
  const loadAtStart = os.loadavg();
  const startedAt = new Date();
  const tdb = await createTestDatabase();
  const account = await createAccount(tdb.database.pool, 'bench@example.com');
  const common = { DATABASE_URL: tdb.url, SERVICE_TOKEN: TEST_SERVICE_TOKEN, RPC_HOST: '127.0.0.1', RPC_PORT: '0', OPS_PORT: '0', LOG_LEVEL: 'info', HEARTBEAT_MS: '1000' };
  // The ingest's write-ahead log in a directory of its own (never npm start's .data/wal),
  // on the same disk, so each Record call pays the fdatasync it pays in service.
  const walRoot = mkdtempSync(path.join(os.tmpdir(), 'osprey-bench-wal-'));
  const ingest = await startServer('services/ingest/main.ts', { ...common, FLUSH_INTERVAL_MS: '1000', WAL_ROOT: walRoot }, /ingest replica ready/, envOf('ingest'));
  const apiPort = await freePort();
  const api = await startServer('services/api/main.ts', { ...common, PORT: String(apiPort), HOST: '127.0.0.1', API_WORKERS: '1', RATE_LIMIT_POINTS_PER_SEC: String(RATE_LIMIT), RATE_LIMIT_BURST: String(RATE_LIMIT) }, /"pid":(\d+).*"opsPort":(\d+).*api replica ready/);
  api.proc.pids.push(Number(api.match[1]));
  const bareChild = spawn('taskset', nodeArgs('scripts/bench/bare-server.ts'), { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const barePort = await new Promise<number>((r) => bareChild.stdout.once('data', (d) => r(Number(String(d).trim()))));
  const bare: Proc = { child: bareChild, pids: [bareChild.pid!], exited: new Promise((r) => bareChild.once('exit', r)) };
  const ospreyPids = [...api.proc.pids, ...ingest.proc.pids];

  /** 2xx points per stat name, to compare with MySQL at the end. */
  const expected = new Map<string, number>();
  const expect = (stat: string, points: number) => expected.set(stat, (expected.get(stat) ?? 0) + points);
  const form = (stat: string) => `ezkey=${encodeURIComponent(account.ezkey)}&stat=${encodeURIComponent(stat).replace(/%20/g, '+')}&count=1`;

  const apiOps = `http://127.0.0.1:${api.match[2]}/metrics`;
  const recordCounters = async () => {
    const text = await (await fetch(apiOps)).text();
    const read = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    return { calls: read('osprey_api_record_calls_total'), points: read('osprey_api_record_points_total') };
  };

  async function measure(pids: number[], spec: LoadSpec) {
    const calls0 = pids === ospreyPids ? await recordCounters() : undefined;
    const parts = pids === ospreyPids ? [['api', api.proc.pids], ['ingest', ingest.proc.pids]] as const : [];
    const before = [processesCpuMs(pids), processesCpuMs(pids, 'sys'), ...parts.map(([, p]) => processesCpuMs(p))];
    const meter = noiseMeter(pids);
    const res = await runLoad(spec);
    const noise = meter.stop(res.cpuMs ?? 0);
    const after = [processesCpuMs(pids), processesCpuMs(pids, 'sys'), ...parts.map(([, p]) => processesCpuMs(p))];
    const calls1 = calls0 ? await recordCounters() : undefined;
    const perReq = (i: number) => ((after[i] - before[i]) * 1000) / Math.max(1, res.ok);
    const cpuUs = perReq(0);
    const split = [`sys ${perReq(1).toFixed(0)}`, ...parts.map(([name], i) => `${name} ${perReq(i + 2).toFixed(0)}`)].join('/');
    const non2xx = Object.entries(res.statuses).filter(([s]) => !s.startsWith('2'));
    const other = non2xx.map(([s, n]) => `${n}×${s}`).concat(res.errors ? [`${res.errors} errors`] : []);
    if (calls0 && calls1) other.unshift(`${((calls1.points - calls0.points) / Math.max(1, calls1.calls - calls0.calls)).toFixed(1)} points/call`);
    if (isNoisy(noise)) other.push(describeNoise(noise));
    return { res, noise, rps: res.ok / (res.elapsedMs / 1000), cpuUs, other: [`µs ${split}`, ...other].join('; ') };
  }
  /**
   * A fixed-rate run: its tail is what it measures, so a run the machine's other work spoiled
   * is run again. The points of a run not kept were stored all the same: they are expected
   * in `stat` (Osprey's runs).
   */
  async function measureRate(pids: number[], spec: LoadSpec, stat: string | null) {
    return runAgainIfNoisy(
      () => measure(pids, spec),
      (m) => isNoisy(m.noise),
      (m) => {
        if (stat) expect(stat, m.res.ok);
        log(`  ${spec.rate}/s on ${pids === ospreyPids ? 'osprey' : 'bare'}: p99 ${ms(m.res.latencyUs.p99)} ms while ${describeNoise(m.noise)}; again`);
      },
    );
  }
  const closed = (port: number, request: string, durationMs: number): LoadSpec => ({ mode: 'closed', host: '127.0.0.1', port, request, durationMs, connections: CONNECTIONS });
  const open = (port: number, request: string, rate: number, server: string): LoadSpec => ({
    mode: 'open',
    host: '127.0.0.1',
    port,
    request,
    durationMs: RATE_MS,
    rate,
    connections: 16,
    maxConnections: 512,
    ...(TRACE ? { traceFile: path.join(path.resolve(TRACE), `${server}-${rate}.trace`) } : {}),
  });

  const rows: Row[] = [];
  const log = (s: string) => process.stderr.write(s + '\n');
  try {
    log(`bench:http  api worker pid ${api.match[1]}, ingest pid ${ingest.proc.child.pid}, bare pid ${bareChild.pid}; servers on cpu ${SERVER_CPU}, load on cpu ${LOAD_CPU}`);
    // Warm-up: JIT, the ezkey cache, the stat cache, the HTTP/2 session.
    await runLoad(closed(barePort, formRequest(barePort, form('bench warmup')), 2000));
    const w = await runLoad(closed(apiPort, formRequest(apiPort, form('bench warmup')), 2000));
    expect('bench warmup', w.ok);

    const sat = { bare: [] as number[], osprey: [] as number[], bareCpu: [] as number[], ospreyCpu: [] as number[] };
    for (let run = 1; PHASES.has('saturation') && run <= RUNS; run++) {
      const b = await measure(bare.pids, closed(barePort, formRequest(barePort, form('bench saturation')), SAT_MS));
      const o = await measure(ospreyPids, closed(apiPort, formRequest(apiPort, form('bench saturation')), SAT_MS));
      expect('bench saturation', o.res.ok);
      sat.bare.push(b.rps);
      sat.osprey.push(o.rps);
      sat.bareCpu.push(b.cpuUs);
      sat.ospreyCpu.push(o.cpuUs);
      for (const [server, m] of [['bare', b], ['osprey', o]] as const) {
        rows.push({ phase: `saturation run ${run}`, server, rps: m.rps, p50: ms(m.res.latencyUs.p50), p99: ms(m.res.latencyUs.p99), cpuUs: m.cpuUs.toFixed(0), other: m.other });
      }
      log(`  run ${run}: bare ${b.rps.toFixed(0)} req/s, osprey ${o.rps.toFixed(0)} req/s (${(o.rps / b.rps).toFixed(2)})`);
    }

    const rates: Record<number, { p50: number; p99: number }> = {};
    for (const rate of PHASES.has('rate') ? RATES : []) {
      const b = await measureRate(bare.pids, open(barePort, formRequest(barePort, form('bench rate')), rate, 'bare'), null);
      const o = await measureRate(ospreyPids, open(apiPort, formRequest(apiPort, form('bench rate')), rate, 'osprey'), 'bench rate');
      expect('bench rate', o.res.ok);
      rates[rate] = o.res.latencyUs;
      for (const [server, m] of [['bare', b], ['osprey', o]] as const) {
        const over = m.res.over ? `; over 2 ms ${(m.res.over.ms2 * 100).toFixed(1)}%, over 5 ms ${(m.res.over.ms5 * 100).toFixed(1)}%` : '';
        const late = m.res.lateUs ? `; generator late p99 ${ms(m.res.lateUs.p99)} ms, max ${ms(m.res.lateUs.max)}` : '';
        rows.push({ phase: `open loop ${rate}/s`, server, rps: m.rps, p50: ms(m.res.latencyUs.p50), p99: ms(m.res.latencyUs.p99), cpuUs: m.cpuUs.toFixed(0), other: `${m.other}; ${m.res.maxConnectionsUsed} conns${over}${late}` });
      }
      log(`  ${rate}/s: osprey p50 ${ms(o.res.latencyUs.p50)} ms p99 ${ms(o.res.latencyUs.p99)} ms`);
    }

    const batchStats = Array.from({ length: 10 }, (_, i) => `bench batch ${i}`);
    const batchBody = JSON.stringify({ ezkey: account.ezkey, data: Array.from({ length: BATCH }, (_, i) => ({ stat: batchStats[i % 10], count: 1 })) });
    const jb = PHASES.has('batch') ? await measure(ospreyPids, closed(apiPort, jsonRequest(apiPort, batchBody), SAT_MS)) : undefined;
    const pointsPerSec = jb ? jb.rps * BATCH : 0;
    if (jb) {
      for (const s of batchStats) expect(s, (jb.res.ok * BATCH) / 10);
    rows.push({ phase: `JSON batches of ${BATCH}`, server: 'osprey', rps: jb.rps, p50: ms(jb.res.latencyUs.p50), p99: ms(jb.res.latencyUs.p99), cpuUs: jb.cpuUs.toFixed(0), other: `${Math.round(pointsPerSec)} points/s; ${(jb.cpuUs / BATCH).toFixed(1)} µs/point; ${jb.other}` });
    }

    // Stop api first (it answers what is in flight), then ingest (its last flush).
    api.proc.child.kill('SIGTERM');
    const apiCode = await api.proc.exited;
    ingest.proc.child.kill('SIGTERM');
    const ingestCode = await ingest.proc.exited;
    bare.child.kill('SIGTERM');
    await bare.exited;

    const [dbRows] = await tdb.database.pool.query<RowDataPacket[]>(
      'SELECT s.name, SUM(r.count) AS n FROM rollups_1m r JOIN stats s ON s.id = r.stat_id GROUP BY s.name',
    );
    const stored = new Map(dbRows.map((r) => [String(r.name), Number(r.n)]));
    const mismatches = [...new Set([...expected.keys(), ...stored.keys()])].filter((k) => (expected.get(k) ?? 0) !== (stored.get(k) ?? 0));
    const totalExpected = [...expected.values()].reduce((a, b) => a + b, 0);
    const totalStored = [...stored.values()].reduce((a, b) => a + b, 0);

    const w1 = Math.max(...rows.map((r) => r.phase.length));
    console.log('');
    console.log(`| ${'phase'.padEnd(w1)} | server | req/s  | p50 ms | p99 ms | CPU µs/req | notes`);
    console.log(`|${'-'.repeat(w1 + 2)}|--------|--------|--------|--------|------------|------`);
    for (const r of rows) console.log(`| ${r.phase.padEnd(w1)} | ${r.server.padEnd(6)} | ${r.rps.toFixed(0).padStart(6)} | ${r.p50.padStart(6)} | ${r.p99.padStart(6)} | ${r.cpuUs.padStart(10)} | ${r.other}`);
    console.log('');
    const ratio = sat.bare.length ? median(sat.osprey) / median(sat.bare) : NaN;
    const spread = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
    const check = (ok: boolean) => (ok ? 'ok  ' : 'MISS');
    if (sat.bare.length) {
      console.log(`saturation, median of ${RUNS}: bare ${Math.round(median(sat.bare))} req/s (${spread(sat.bare)}, ${median(sat.bareCpu).toFixed(0)} µs/req), osprey ${Math.round(median(sat.osprey))} req/s (${spread(sat.osprey)}, ${median(sat.ospreyCpu).toFixed(0)} µs/req api+ingest)`);
      console.log(`ratio per run: ${sat.osprey.map((o, i) => (o / sat.bare[i]).toFixed(2)).join(', ')}; by CPU µs/req (what the ratio is with a core each, whatever else runs): ${(median(sat.bareCpu) / median(sat.ospreyCpu)).toFixed(2)}`);
      console.log(`${check(ratio >= 0.4)} osprey/bare ≥ 0.40 at saturation`);
    }
    if (rates[1000]) console.log(`${check(rates[1000].p99 <= 2000)} p99 ≤ 2 ms at 1,000 req/s (${ms(rates[1000].p99)} ms)`);
    if (rates[5000]) console.log(`${check(rates[5000].p99 <= 5000)} p99 ≤ 5 ms at 5,000 req/s (${ms(rates[5000].p99)} ms)`);
    if (jb) console.log(`${check(pointsPerSec >= 500_000)} ≥ 500,000 points/s in JSON batches (${Math.round(pointsPerSec)})`);
    console.log(`${check(mismatches.length === 0)} every 2xx point is in rollups_1m: ${totalStored} stored, ${totalExpected} answered 2xx (api exit ${apiCode}, ingest exit ${ingestCode})`);
    for (const k of mismatches) console.log(`     ${k}: stored ${stored.get(k) ?? 0}, answered 2xx ${expected.get(k) ?? 0}`);
    const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
    console.log(`${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus().length} cores, load average ${load(loadAtStart)} at the start, ${load(os.loadavg())} at the end`);
    console.log(`osprey/bare = ${ratio.toFixed(2)}`);
    if (mismatches.length > 0) process.exitCode = 1;
  } finally {
    for (const p of [api.proc, ingest.proc, bare]) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    rmSync(walRoot, { recursive: true, force: true });
    if (args.has('keep')) log(`database kept: ${tdb.url}`);
    else await tdb.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
