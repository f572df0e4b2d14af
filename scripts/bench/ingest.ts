/**
 * `npm run bench:ingest`: statsd over UDP (and TCP) into Osprey's ingest, beside the reference
 * Etsy statsd (npm `statsd`, no backend but a line counter) and a bare node:dgram socket that
 * only counts lines (the ceiling for one Node process here).
 *
 * The three servers are pinned to one core (--server-cpu, 0) and the generator
 * (scripts/bench/statsd-load.ts) to the other (--load-cpu, 1); each server is loaded in turn
 * while the others are stopped (SIGSTOP), and the servers' searches take turns a step at a
 * time, so a drift in the machine's speed reaches all of them alike. Lines cycle through --stats (100,000) distinct stats, a quarter each
 * timers, counters, gauges and sets, 1 and 20 lines per datagram. For each server and packing
 * the highest rate absorbed with < 0.1% loss is searched (rates grow ×1.5 until loss, then
 * bisect), each step --duration seconds (3); reported with the CPU seconds the server spent per
 * million lines at that rate. Then TCP: 4 connections writing as fast as the server reads.
 * Peak RSS is each server's VmHWM after everything. Osprey runs from a release build (as
 * deployed: compiled JavaScript), the bare socket under tsx, Etsy as published.
 *
 * At the end Osprey is stopped with SIGTERM and every line it counted must be in rollups_1m
 * (the sum of `count` over all stats equals the lines it read: no line is lost on the way).
 *
 * Between steps Osprey is let finish its flushes, and their CPU counts for the step's lines.
 *
 * Options: --duration=3 --stats=100000 --server-cpu=0 --load-cpu=1 --servers=bare,etsy,osprey
 *          --packing=1,20 --tcp=true --cpu-prof=DIR (Osprey's .cpuprofile) --keep
 *          --alloc-profile=DIR (Osprey's .heapprofile: every allocation sampled, collected ones too;
 *          scripts/bench/alloc-sampler.mjs; profile-summary.ts prints it)
 *          --udp-recv-buffer=BYTES (Osprey's STATSD_UDP_RECV_BUFFER; default: the system's)
 *          --threads (per step, above its line: each server thread's run time, runnable wait and slices)
 * Environment: OSPREY_NODE_ARGS (space-separated) goes on Osprey's node command line, e.g.
 * `--trace-gc` (its output is printed with the server's) or `--import FILE` of a preload.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RowDataPacket } from 'mysql2/promise';
import { buildRelease } from '../../deploy/release.js';
import { envOf, nodeArgsOf } from '../../deploy/services.js';
import { createAccount } from '../../services/kit/accounts.js';
import { createTestDatabase, TEST_SERVICE_TOKEN } from '../../services/kit/testing/db.js';
import { udpRcvbufErrors } from '../../services/ingest/statsd/soak.js';
import { describeNoise, isNoisy, loadCommand, noiseMeter, processCpuMs, runAgainIfNoisy, threadTimes } from './machine.js';
import type { StatsdLoadReport, StatsdLoadSpec } from './statsd-load.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'] as const;
  }),
);
const DURATION_MS = Number(args.get('duration') ?? 3) * 1000;
const STATS = Number(args.get('stats') ?? 100_000);
const SERVER_CPU = args.get('server-cpu') ?? '0';
const LOAD_CPU = args.get('load-cpu') ?? '1';
const SERVERS = (args.get('servers') ?? 'bare,etsy,osprey').split(',');
const PACKING = (args.get('packing') ?? '1,20').split(',').filter(Boolean).map(Number);
const TCP = args.get('tcp') !== 'false';
const CPU_PROF = args.get('cpu-prof');
const ALLOC_PROF = args.get('alloc-profile');
const RECV_BUFFER = args.get('udp-recv-buffer');
const THREADS = args.get('threads') === 'true';
const MAX_LOSS = 0.001;
const log = (s: string) => process.stderr.write(s + '\n');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Server {
  name: string;
  child: ChildProcess;
  udpPort: number;
  tcpPort: number;
  /** Lines received so far (UDP and TCP). */
  count(): Promise<number>;
  /** Resolves when the server has nothing left to do for what it received (Osprey: flushed). */
  quiesce?(): Promise<void>;
  /** Bytes of datagrams read from the socket but not parsed yet (Osprey's reader-thread queue). */
  queued?(): Promise<number>;
  exited: Promise<number | null>;
}

/** RSS, JS heap (per space) and external memory from a prom-client /metrics text, in MB. */
function memoryParts(m: string): string {
  const mb = (name: string, label = '') => {
    const v = new RegExp(`^${name}\\{[^}]*${label}[^}]*\\} (\\S+)$`, 'm').exec(m)?.[1];
    return v === undefined ? '?' : (Number(v) / 1024 / 1024).toFixed(0);
  };
  const space = (name: string) => mb('nodejs_heap_space_size_used_bytes', `space="${name}"`);
  return (
    `RSS ${mb('process_resident_memory_bytes')} MB, JS heap used ${mb('nodejs_heap_size_used_bytes')} of ${mb('nodejs_heap_size_total_bytes')} MB ` +
    `(old ${space('old')}, new ${space('new')}, large objects ${space('large_object')}, code ${space('code')}), external ${mb('nodejs_external_memory_bytes')} MB, ` +
    `UDP queue touched ${mb('osprey_statsd_udp_queue_touched_bytes')} MB (released ${/^osprey_statsd_udp_queue_releases_total\{[^}]*udp[^}]*\} (\S+)$/m.exec(m)?.[1] ?? '?'} times)`
  );
}

function peakRssMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function pinned(argv: string[], env: Record<string, string | undefined> = process.env, ipc = false): ChildProcess {
  return spawn('taskset', ['-c', SERVER_CPU, process.execPath, ...argv], {
    cwd: root,
    env,
    stdio: ipc ? ['ignore', 'pipe', 'inherit', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
}

const exitOf = (c: ChildProcess) => new Promise<number | null>((r) => c.once('exit', (code) => r(code)));

/** One management-interface question to Etsy. */
function ask(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      text += d;
      if (text.endsWith('END\n\n')) {
        s.destroy();
        resolve(text);
      }
    });
    s.on('error', reject);
    s.write(command + '\n');
  });
}

async function waitUntil(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond().catch(() => false))) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function startBare(): Promise<Server> {
  const child = pinned(['--import', 'tsx', path.join(root, 'scripts/bench/bare-statsd.ts'), '0'], process.env, true);
  const port = await new Promise<number>((r) => child.stdout!.once('data', (d) => r(Number(String(d).trim()))));
  return {
    name: 'bare',
    child,
    udpPort: port,
    tcpPort: port,
    exited: exitOf(child),
    count: () =>
      new Promise((resolve) => {
        child.once('message', (n) => resolve(Number(n)));
        child.send('count');
      }),
  };
}

async function startEtsy(dir: string): Promise<Server> {
  const port = await freePort();
  const mgmt = await freePort();
  const cfg = path.join(dir, 'etsy-config.js');
  const address = '127.0.0.1';
  fs.writeFileSync(
    cfg,
    JSON.stringify({
      servers: [
        { server: './servers/udp', address, port },
        { server: './servers/tcp', address, port },
      ],
      mgmt_address: address,
      mgmt_port: mgmt,
      backends: [path.join(root, 'scripts/bench/etsy-count-backend.cjs')],
      // Etsy's default: what it does every flush (timer statistics over every value) is part of its cost.
      flushInterval: 10_000,
    }),
  );
  const child = pinned([path.join(root, 'node_modules/statsd/stats.js'), cfg]);
  child.stdout!.resume();
  child.stderr!.resume();
  const count = async () => Number(/bench\.lines: (\d+)/.exec(await ask(mgmt, 'stats'))?.[1] ?? NaN);
  await waitUntil('Etsy statsd', async () => !Number.isNaN(await count()));
  return { name: 'etsy', child, udpPort: port, tcpPort: port, exited: exitOf(child), count };
}

async function startOsprey(databaseUrl: string, accountId: number, dir: string): Promise<Server & { ops: number; metrics(): Promise<string> }> {
  const port = await freePort();
  const ops = await freePort();
  const prof = [
    ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(CPU_PROF)}`] : []),
    ...(ALLOC_PROF ? ['--import', path.join(root, 'scripts/bench/alloc-sampler.mjs')] : []),
    ...(process.env.OSPREY_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ];
  // As production runs it: the release build (tsc's JavaScript, no tsx loader thread or
  // transform cache in the process, whose memory the peak RSS would otherwise count).
  const release = await buildRelease({ root, outDir: path.join(dir, 'release'), tarball: false, link: true });
  const child = pinned([...prof, ...nodeArgsOf('ingest'), path.join(release.dir, 'dist/services/ingest/main.js')], {
    ...envOf('ingest'),
    ...process.env,
    DATABASE_URL: databaseUrl,
    SERVICE_TOKEN: TEST_SERVICE_TOKEN,
    LOG_LEVEL: 'warn',
    OPS_PORT: String(ops),
    STATSD_UDP_HOST: '127.0.0.1',
    STATSD_UDP_PORT: String(port),
    STATSD_TCP_HOST: '127.0.0.1',
    STATSD_TCP_PORT: String(port),
    STATSD_UNIX: 'false',
    STATSD_MGMT: 'false',
    STATSD_DEFAULT_ACCOUNT: String(accountId),
    // The last flush of 100,000 live stats takes longer than the default 10 s budget here
    // (past it the replica exits 1 and its write-ahead log replays the rest at the next start).
    SHUTDOWN_TIMEOUT_MS: '120000',
    // its own write-ahead log (on, as by default), not the checkout's .data/wal
    WAL_ROOT: path.join(dir, 'wal'),
    ...(RECV_BUFFER ? { STATSD_UDP_RECV_BUFFER: RECV_BUFFER } : {}),
    ...(ALLOC_PROF ? { ALLOC_PROFILE_DIR: path.resolve(ALLOC_PROF) } : {}),
  });
  child.stdout!.on('data', (d) => process.stderr.write(`[osprey] ${d}`));
  child.stderr!.on('data', (d) => process.stderr.write(`[osprey] ${d}`));
  const metrics = async () => (await fetch(`http://127.0.0.1:${ops}/metrics`)).text();
  const read = (text: string, name: string) => {
    let sum = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
    return sum;
  };
  const count = async () => read(await metrics(), 'osprey_statsd_lines_total');
  await waitUntil('Osprey ingest', async () => (await metrics()).includes('osprey_statsd_listener_bound{listener="udp"'));
  // Flushed: nothing aggregated is waiting for MySQL.
  const quiesce = () => waitUntil('Osprey to flush', async () => read(await metrics(), 'osprey_unflushed_samples') === 0, 300_000);
  const queued = async () => read(await metrics(), 'osprey_statsd_udp_queued_bytes');
  return { name: 'osprey', child, udpPort: port, tcpPort: port, exited: exitOf(child), count, quiesce, queued, ops, metrics };
}

function runLoad(spec: StatsdLoadSpec): Promise<StatsdLoadReport> {
  return new Promise((resolve, reject) => {
    const [cmd, argv] = loadCommand(LOAD_CPU, [process.execPath, '--import', 'tsx', path.join(root, 'scripts/bench/statsd-load.ts'), JSON.stringify(spec)]);
    const child = spawn(cmd, argv, {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as StatsdLoadReport) : reject(new Error(`load generator exited ${code}`))));
  });
}

interface Step {
  rate: number;
  sent: number;
  received: number;
  loss: number;
  /** Lines per second the generator actually reached. */
  achieved: number;
  cpuSecPerM: number;
  /** Still parsing what it had read a second after the sender stopped: it did not keep pace. */
  behind: boolean;
  /** Datagrams the kernel dropped (full receive buffer) during the step, machine-wide. */
  kernelDrops: number;
  /** The generator's worst lateness against its schedule, ms (statsd-load.ts). */
  generatorLateMs: number;
  /** What else the machine did while the load ran (machine.ts). */
  othersMs: number;
  stealMs: number;
}

let offset = 0;

async function step(s: Server, perPacket: number, rate: number): Promise<Step> {
  // Lost lines while the machine was busy elsewhere: the step says little, run it again.
  return runAgainIfNoisy(
    () => stepOnce(s, perPacket, rate),
    (r) => r.loss > MAX_LOSS && isNoisy(r),
    (r) => log(`${describe(s, perPacket, r)}; again`),
  );
}

async function stepOnce(s: Server, perPacket: number, rate: number): Promise<Step> {
  const ts0 = THREADS ? threadTimes(s.child.pid!) : undefined;
  const c0 = await s.count();
  const k0 = udpRcvbufErrors();
  const t0 = processCpuMs(s.child.pid!);
  const meter = noiseMeter([s.child.pid!]);
  const r = await runLoad({ mode: 'udp', host: '127.0.0.1', port: s.udpPort, linesPerPacket: perPacket, rate, durationMs: DURATION_MS, stats: STATS, offset });
  const noise = meter.stop(r.cpuMs ?? 0);
  if (ts0) {
    // The threads that ran more than 5 ms during the load (the main thread, Osprey's real-time
    // UDP reader, pool threads): how long each ran, waited runnable, and in how many slices.
    const parts: string[] = [];
    for (const [k, v] of threadTimes(s.child.pid!)) {
      const a = ts0.get(k);
      if (a && v[0] - a[0] > 5e6) parts.push(`${k}: ran ${((v[0] - a[0]) / 1e6).toFixed(0)} ms, waited ${((v[1] - a[1]) / 1e6).toFixed(0)} ms, ${v[2] - a[2]} slices`);
    }
    log(`    ${s.name} threads during the load: ${parts.join('; ')}`);
  }
  offset = (offset + r.lines) % STATS;
  await sleep(300); // what is in the socket buffer is read
  // A server that buffers what it reads (Osprey's reader thread) must also have kept pace:
  // what waits a second after the sender stopped was not absorbed at this rate.
  let behind = false;
  if (s.queued) {
    await sleep(700);
    behind = (await s.queued()) > 0;
    while ((await s.queued()) > 0) await sleep(100);
  }
  const c1 = await s.count();
  const kernelDrops = udpRcvbufErrors() - k0;
  // The work these lines cause after they arrive (Osprey's flushes) counts for them, and the
  // next step starts from a quiet server.
  await s.quiesce?.();
  const t1 = processCpuMs(s.child.pid!);
  const received = c1 - c0;
  return {
    rate,
    sent: r.lines,
    received,
    loss: r.lines > 0 ? Math.max(0, 1 - received / r.lines) : 0,
    achieved: r.lines / (r.elapsedMs / 1000),
    cpuSecPerM: ((t1 - t0) / 1000 / Math.max(1, received)) * 1e6,
    behind,
    kernelDrops,
    generatorLateMs: r.maxLateMs ?? 0,
    ...noise,
  };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const describe = (s: Server, perPacket: number, r: Step) =>
  `  ${s.name} ${perPacket}/packet at ${fmt(r.rate)} lines/s: sent ${fmt(r.achieved)}/s, loss ${(r.loss * 100).toFixed(3)}%${r.loss > 0 ? ` (kernel dropped ${fmt(r.kernelDrops)} datagrams)` : ''}; generator at worst ${r.generatorLateMs.toFixed(1)} ms late${r.behind ? ', fell behind' : ''}` +
  (isNoisy(r) ? `; ${describeNoise(r)}` : '');

/**
 * The search for one server's highest rate with loss under MAX_LOSS (and keeping pace): grow
 * ×1.5 until a step fails, then bisect 4 times. A state machine, one step at a time, so the
 * servers' searches can take turns and a machine whose speed drifts drifts for all of them.
 */
class LossFreeSearch {
  best: Step | null = null;
  generatorBound = false;
  private rate: number;
  private bad: number | null = null;
  private bisections = 0;
  done = false;

  constructor(perPacket: number) {
    this.rate = perPacket === 1 ? 40_000 : 150_000;
  }

  next(): number {
    if (this.bad === null) return this.rate;
    return Math.round(((this.best?.rate ?? 0) + this.bad) / 2);
  }

  record(r: Step): void {
    const ok = r.loss < MAX_LOSS && !r.behind;
    if (this.bad === null) {
      if (ok) this.best = r;
      if (ok && r.achieved < r.rate * 0.97) {
        this.generatorBound = true;
        this.done = true;
      } else if (!ok) this.bad = r.rate;
      else this.rate = Math.round(r.rate * 1.5);
      return;
    }
    if (ok) this.best = r;
    else this.bad = r.rate;
    if (++this.bisections === 4) this.done = true;
  }
}

async function main() {
  const tdb = await createTestDatabase();
  const account = await createAccount(tdb.database.pool, 'bench@example.com');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'osprey-bench-'));
  const servers: Server[] = [];
  let osprey: Awaited<ReturnType<typeof startOsprey>> | undefined;
  try {
    for (const name of SERVERS) {
      if (name === 'bare') servers.push(await startBare());
      else if (name === 'etsy') servers.push(await startEtsy(dir));
      else if (name === 'osprey') servers.push((osprey = await startOsprey(tdb.url, account.id, dir)));
    }
    log(`bench:ingest  ${STATS.toLocaleString('en-US')} stats; servers on cpu ${SERVER_CPU} (${servers.map((s) => `${s.name} ${s.child.pid}`).join(', ')}), load on cpu ${LOAD_CPU}`);

    // Warm-up: every stat at least once (Osprey creates them in MySQL), and the JITs. UDP may
    // drop some while Osprey creates 100,000 stats, so it goes round until Osprey knows them all.
    const warm = (s: Server) => runLoad({ mode: 'udp', host: '127.0.0.1', port: s.udpPort, linesPerPacket: 20, rate: 20_000, durationMs: Math.max(2000, (STATS / 20_000) * 1000 * 1.1), stats: STATS });
    // What the servers were doing when Osprey's peak RSS was reached (VmHWM sampled 4 times a second).
    let phase = 'warm-up';
    let peakPhase = phase;
    let hwm = 0;
    // What Osprey's memory was made of the last time its peak grew (its /metrics, read then).
    let peakParts = '';
    let reading = false;
    const hwmTimer = setInterval(() => {
      if (!osprey) return;
      const now = peakRssMb(osprey.child.pid!);
      if (now <= hwm) return;
      [hwm, peakPhase] = [now, phase];
      if (reading) return;
      reading = true;
      const o = osprey;
      o.metrics()
        .then((m) => (peakParts = memoryParts(m)))
        .catch(() => {})
        .finally(() => (reading = false));
    }, 250);
    hwmTimer.unref();
    for (const s of servers) await warm(s);
    if (osprey) {
      const o = osprey;
      const known = async () => {
        const m = await o.metrics();
        const pending = Number(/^osprey_statsd_pending_samples(?:\{[^}]*\})? (\d+)$/m.exec(m)?.[1]);
        return pending === 0 ? Number(/^osprey_statsd_live_stats(?:\{[^}]*\})? (\d+)$/m.exec(m)?.[1]) : -1;
      };
      for (let round = 0; ; round++) {
        await waitUntil('Osprey to create the stats', async () => (await known()) >= 0, 300_000);
        const n = await known();
        log(`  warm-up: Osprey knows ${fmt(n)} stats`);
        if (n >= STATS) {
          await o.quiesce!();
          break;
        }
        if (round === 10) throw new Error('Osprey did not learn every stat in 10 rounds');
        await warm(o);
      }
    }

    // Each server is measured with the others stopped (SIGSTOP): an idle Osprey still folds
    // sketches and flushes on the same core, which cost the bare socket its loss-free rate.
    const alone = async <T>(s: Server, run: () => Promise<T>): Promise<T> => {
      const others = servers.filter((o) => o !== s);
      for (const o of others) o.child.kill('SIGSTOP');
      try {
        return await run();
      } finally {
        for (const o of others) o.child.kill('SIGCONT');
      }
    };
    // The servers take turns, one step each, so the three searches share the same minutes.
    const results = new Map<string, LossFreeSearch>();
    for (const perPacket of PACKING) {
      log(`${perPacket} line(s) per datagram:`);
      const searches = servers.map((s) => ({ s, search: new LossFreeSearch(perPacket) }));
      for (const { s, search } of searches) results.set(`${s.name}/${perPacket}`, search);
      while (searches.some((x) => !x.search.done)) {
        for (const { s, search } of searches) {
          if (search.done) continue;
          const rate = search.next();
          phase = `${s.name} at ${perPacket} line(s) a datagram, ${fmt(rate)} lines/s`;
          const r = await alone(s, () => step(s, perPacket, rate));
          log(describe(s, perPacket, r));
          search.record(r);
        }
      }
    }

    const tcp = new Map<string, number>();
    for (const s of TCP ? servers : []) await alone(s, async () => {
      phase = `${s.name} over TCP`;
      const c0 = await s.count();
      const r = await runLoad({ mode: 'tcp', host: '127.0.0.1', port: s.tcpPort, linesPerPacket: 0, rate: 0, durationMs: DURATION_MS, stats: STATS, connections: 4 });
      await sleep(300);
      const received = (await s.count()) - c0;
      tcp.set(s.name, received / (r.elapsedMs / 1000));
      log(`  ${s.name} TCP: ${fmt(received / (r.elapsedMs / 1000))} lines/s (${fmt(received)} of ${fmt(r.lines)} written)`);
    });

    const rss = new Map(servers.map((s) => [s.name, peakRssMb(s.child.pid!)]));
    clearInterval(hwmTimer);
    // Where Osprey's memory is at the end of the load (TCP last).
    const nowParts = osprey ? memoryParts(await osprey.metrics()) : '';

    // Osprey: SIGTERM (it flushes), then every line it read must be in rollups_1m.
    let integrity = '';
    if (osprey) {
      const linesRead = await osprey.count();
      osprey.child.kill('SIGTERM');
      const code = await osprey.exited;
      const [rows] = await tdb.database.pool.query<RowDataPacket[]>('SELECT SUM(count) AS n FROM rollups_1m');
      const stored = Number(rows[0].n);
      integrity = `${stored === linesRead ? 'ok  ' : 'MISS'} every line Osprey read is in rollups_1m: ${fmt(stored)} samples stored, ${fmt(linesRead)} lines read (exit ${code})`;
      if (stored !== linesRead) process.exitCode = 1;
    }

    const lineRate = (name: string, p: number) => {
      const b = results.get(`${name}/${p}`)?.best;
      return b ? b.received / (DURATION_MS / 1000) : NaN;
    };
    console.log('');
    console.log('| datagram | server | loss-free lines/s | CPU s per M lines | Osprey/this |');
    console.log('|---|---|---|---|---|');
    for (const p of PACKING) {
      for (const s of servers) {
        const r = results.get(`${s.name}/${p}`)!;
        const lr = lineRate(s.name, p);
        const vs = s.name === 'osprey' ? '' : (lineRate('osprey', p) / lr).toFixed(2);
        console.log(`| ${p} line${p > 1 ? 's' : ''} | ${s.name} | ${r.best ? fmt(lr) : '-'}${r.generatorBound ? ' (generator-bound)' : ''} | ${r.best ? r.best.cpuSecPerM.toFixed(2) : '-'} | ${vs} |`);
      }
    }
    if (TCP) {
      console.log('');
      console.log(`TCP lines/s (4 connections): ${servers.map((s) => `${s.name} ${fmt(tcp.get(s.name)!)}`).join(', ')}`);
    }
    console.log(`peak RSS: ${servers.map((s) => `${s.name} ${rss.get(s.name)!.toFixed(0)} MB`).join(', ')}${osprey ? ` (Osprey's reached in: ${peakPhase})` : ''}`);
    if (peakParts) console.log(`Osprey near its peak: ${peakParts}`);
    if (nowParts) console.log(`Osprey now: ${nowParts}`);
    console.log('');
    const check = (ok: boolean) => (ok ? 'ok  ' : 'MISS');
    const ratio = (a: string, b: string, p: number) => lineRate(a, p) / lineRate(b, p);
    if (osprey) {
      for (const [p, vsEtsy, vsBare] of [
        [20, 3.5, 0.5],
        [1, 1.5, 0.8],
      ] as const) {
        if (!PACKING.includes(p)) continue;
        if (SERVERS.includes('etsy')) console.log(`${check(ratio('osprey', 'etsy', p) >= vsEtsy)} ${p}/datagram: Osprey ≥ ${vsEtsy}× Etsy (${ratio('osprey', 'etsy', p).toFixed(2)}×)`);
        if (SERVERS.includes('bare')) console.log(`${check(ratio('osprey', 'bare', p) >= vsBare)} ${p}/datagram: Osprey ≥ ${vsBare}× the bare socket (${ratio('osprey', 'bare', p).toFixed(2)}×)`);
      }
      console.log(`${check(rss.get('osprey')! < 300)} Osprey peak RSS < 300 MB with ${STATS.toLocaleString('en-US')} live stats (${rss.get('osprey')!.toFixed(0)} MB)`);
      console.log(integrity);
    }
  } finally {
    for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    if (args.has('keep')) log(`database kept: ${tdb.url}`);
    else await tdb.drop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
