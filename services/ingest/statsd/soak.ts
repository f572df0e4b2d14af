// The statsd soak (issue 3), in the spirit of statsgod's: two real ingest replicas (processes,
// scripts/lib/stack.ts) on a test database, many concurrent senders over UDP, TCP and Unix
// with random kinds and two accounts' tokens (per-line `token.` prefix and per-connection
// `AUTH <token>`), a ledger kept by the sender, a graceful SIGTERM (the last flush), then
// MySQL compared with the ledger. Used by soak.stack.test.ts (reduced) and `npm run soak`.
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { freePort, startStack, type Stack } from '../../../scripts/lib/stack.js';
import { createAccount } from '../../kit/accounts.js';
import { KIND } from '../../kit/db/schema.js';
import { DistinctSketch, DISTINCT_EXACT_LIMIT, mergeSerializedDistinct } from '../../kit/sketch/distinct.js';
import { mergeSerializedQuantiles, QuantileSketch } from '../../kit/sketch/quantile.js';
import { createTestDatabase, type TestDatabase } from '../../kit/testing/db.js';
import { createToken } from '../../kit/tokens.js';

type Transport = 'udp' | 'tcp' | 'unix';
type LKind = 'counter' | 'timer' | 'gauge' | 'delta' | 'set';

interface Entry {
  account: number;
  name: string;
  kind: LKind;
  transport: Transport;
  /** counter: Σ value/rate; timer: Σ samples; delta: Σ deltas. */
  sum: number;
  /** counter: Σ 1/rate; timer: samples; gauge/set: points. */
  count: number;
  samples: number[];
  members: Set<string>;
  final: number;
}

export interface SoakRow {
  stat: string;
  kind: LKind;
  transport: Transport;
  check: string;
  expected: number;
  actual: number;
  ok: boolean;
}

export interface SoakResult {
  seed: number;
  lines: Record<Transport, number>;
  rows: SoakRow[];
  mismatches: SoakRow[];
  /** Summed over both replicas, from /metrics before SIGTERM. */
  listener: Record<string, number>;
  /** Kernel UDP receive-buffer drops on this host during the run (/proc/net/snmp). */
  kernelUdpRcvbufErrors: number;
  exitCodes: (number | null)[];
  sendMs: number;
  totalMs: number;
  /** The replicas' last output (empty when their stdio was inherited): shown by formatSoak on a failure. */
  output: string;
}

/**
 * The soak's waits, each a bound and not a measurement. Together (with the send, seconds)
 * they stay under the 180 s of soak.stack.test.ts, so a stuck stage fails with its own
 * message and the replicas' output rather than as the test's timeout.
 */
const WAIT_MS = { ready: 45_000, bind: 20_000, udp: 20_000, stop: 40_000 } as const;

const STATS = { counter: 8, timer: 4, gauge: 3, delta: 3, set: 4 } as const;
const RATES = [1, 1, 0.5, 0.25, 0.125];
const CONNS: Record<Transport, number> = { udp: 4, tcp: 4, unix: 4 };

// A seeded generator (mulberry32), so a failing run can be replayed with SOAK_SEED (the
// interleaving across connections and replicas still varies).
let seedState = 1;
function random(): number {
  seedState = (seedState + 0x6d2b79f5) | 0;
  let t = seedState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function rnd(n: number): number {
  return Math.floor(random() * n);
}

/** Datagrams the kernel dropped for a full receive buffer, machine-wide (/proc/net/snmp). */
export function udpRcvbufErrors(): number {
  try {
    const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const head = lines[0]!.split(/\s+/);
    const vals = lines[1]!.split(/\s+/);
    return Number(vals[head.indexOf('RcvbufErrors')] ?? 0);
  } catch {
    return 0;
  }
}

function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let t = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (t += c));
        res.on('end', () => resolve(t));
      })
      .on('error', reject);
  });
}

/** Sum of every sample of `name` whose label text contains each of `has`. */
function metricSum(text: string, name: string, ...has: string[]): number {
  let s = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== '{' && line[name.length] !== ' ')) continue;
    if (!has.every((h) => line.includes(h))) continue;
    s += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return s;
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs: number, state?: () => Promise<string>): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`soak: timed out waiting for ${what}${state ? ` (${await state()})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The value of rank floor(q * (n - 1)) in sorted order (the sketch's definition). */
function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))]!;
}

export async function runSoak(opts: { lines: number; seed?: number; log?: (s: string) => void; stdio?: 'inherit' | 'pipe' }): Promise<SoakResult> {
  const log = opts.log ?? (() => {});
  const seed = opts.seed ?? (Date.now() % 2 ** 31);
  seedState = seed;
  const t0 = Date.now();
  const tdb: TestDatabase = await createTestDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'osprey-soak-'));
  let stack: Stack | undefined;
  try {
    const accounts: { id: number; token: string }[] = [];
    for (const who of ['soak-a', 'soak-b']) {
      const acct = await createAccount(tdb.database.pool, `${who}-${Date.now()}@example.com`);
      const tok = await createToken(tdb.database.pool, 'statsd_tokens', acct.id, who);
      accounts.push({ id: acct.id, token: tok.token });
    }

    // Each replica its own addresses: on one host replicas sharing one address means one
    // holds it and the other stands by (README "Several replicas on one host"), and the soak
    // wants both replicas to take traffic.
    const reps: { udp: number; tcp: number; mgmt: number; ops: number; unix: string }[] = [];
    for (let i = 0; i < 2; i++) {
      reps.push({ udp: await freePort(), tcp: await freePort(), mgmt: await freePort(), ops: await freePort(), unix: path.join(dir, `statsd-${i}.sock`) });
    }
    stack = await startStack({
      databaseUrl: tdb.url,
      stdio: opts.stdio ?? 'pipe',
      env: { HEARTBEAT_MS: '300', STATSD_AUTH: 'token', FLUSH_INTERVAL_MS: '1000', STATSD_UDP_HOST: '127.0.0.1', STATSD_TCP_HOST: '127.0.0.1', STATSD_BIND_RETRY_MS: '100' },
      services: reps.map((r) => ({
        name: 'ingest',
        kind: 'rpc' as const,
        replicas: 1,
        env: { STATSD_UDP_PORT: String(r.udp), STATSD_TCP_PORT: String(r.tcp), STATSD_UNIX_PATH: r.unix, STATSD_MGMT_PORT: String(r.mgmt), OPS_PORT: String(r.ops) },
      })),
    });
    const st = stack;
    await st.ready(WAIT_MS.ready);
    await until(
      'both replicas to bind udp, tcp and unix',
      async () => {
        for (const r of reps) {
          const m = await scrape(r.ops).catch(() => '');
          if (metricSum(m, 'osprey_statsd_listener_bound') < 3) return false;
        }
        return true;
      },
      WAIT_MS.bind,
      // Which listener of which replica is not bound (its address taken by another process
      // between freePort() and the bind, say), from each replica's osprey_statsd_listener_bound.
      async () => {
        const parts: string[] = [];
        for (const [i, r] of reps.entries()) {
          const m = await scrape(r.ops).catch((err: Error) => `unreachable: ${err.message}`);
          const bound = m.split('\n').filter((l) => l.startsWith('osprey_statsd_listener_bound')).join(', ');
          parts.push(`replica ${i} (udp ${r.udp}, tcp ${r.tcp}, unix ${r.unix}): ${bound || m.slice(0, 200)}`);
        }
        return parts.join('; ');
      },
    );
    log(`stack ready in ${Date.now() - t0} ms`);

    const ledger = new Map<string, Entry>();
    const entry = (account: number, transport: Transport, kind: LKind, i: number): Entry => {
      const name = `soak.${transport}.${kind}.${i}`;
      const key = `${account}\t${name}\t${kind}`;
      let e = ledger.get(key);
      if (!e) ledger.set(key, (e = { account, name, kind, transport, sum: 0, count: 0, samples: [], members: new Set(), final: 0 }));
      return e;
    };
    /** One random line for `account` (without its token), recorded in the ledger. */
    const line = (account: number, transport: Transport): string => {
      const p = random();
      if (p < 0.4) {
        const e = entry(account, transport, 'counter', rnd(STATS.counter));
        const v = 1 + rnd(10);
        const rate = RATES[rnd(RATES.length)]!;
        e.sum += v / rate;
        e.count += 1 / rate;
        return rate === 1 ? `${e.name}:${v}|c` : `${e.name}:${v}|c|@${rate}`;
      }
      if (p < 0.65) {
        const e = entry(account, transport, 'timer', rnd(STATS.timer));
        const v = 1 + rnd(10_000);
        e.sum += v;
        e.count++;
        e.samples.push(v);
        return `${e.name}:${v}|${['ms', 'ms', 'h', 'd'][rnd(4)]}`;
      }
      if (p < 0.75) {
        const e = entry(account, transport, 'gauge', rnd(STATS.gauge));
        e.count++;
        return `${e.name}:${rnd(1000)}|g`;
      }
      if (p < 0.85) {
        const e = entry(account, transport, 'delta', rnd(STATS.delta));
        const d = (1 + rnd(20)) * (random() < 0.5 ? -1 : 1);
        e.sum += d;
        e.count++;
        return `${e.name}:${d < 0 ? d : `+${d}`}|g`;
      }
      const i = rnd(STATS.set);
      const e = entry(account, transport, 'set', i);
      // Even sets stay exact (≤ 256 members), odd ones go HyperLogLog.
      const m = `m${rnd(i % 2 === 0 ? 200 : 5000)}`;
      e.members.add(m);
      e.count++;
      return `${e.name}:${m}|s`;
    };

    const total = opts.lines;
    const sent: Record<Transport, number> = { udp: 0, tcp: 0, unix: 0 };
    const perConn = Math.ceil(total / (CONNS.udp + CONNS.tcp + CONNS.unix));
    const kernel0 = udpRcvbufErrors();
    const tSend = Date.now();

    const udpSender = async (c: number) => {
      const sock = dgram.createSocket('udp4');
      const port = reps[c % 2]!.udp;
      let n = 0;
      let packets = 0;
      while (n < perConn) {
        const parts: string[] = [];
        let bytes = 0;
        while (n < perConn && parts.length < 20 && bytes < 1200) {
          const a = accounts[rnd(2)]!;
          const l = `${a.token}.${line(a.id, 'udp')}`;
          parts.push(l);
          bytes += l.length + 1;
          n++;
        }
        const buf = Buffer.from(parts.join('\n') + '\n');
        await new Promise<void>((res, rej) => sock.send(buf, port, '127.0.0.1', (err) => (err ? rej(err) : res())));
        sent.udp += parts.length;
        // A modest rate with pauses: UDP is only lossless below the receiver's pace.
        if (++packets % 2 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      sock.close();
    };

    const streamSender = async (transport: 'tcp' | 'unix', c: number) => {
      const r = reps[c % 2]!;
      const s = await new Promise<net.Socket>((resolve, reject) => {
        const so = transport === 'tcp' ? net.connect({ host: '127.0.0.1', port: r.tcp, noDelay: true }) : net.connect(r.unix);
        so.once('connect', () => resolve(so));
        so.once('error', reject);
      });
      s.resume();
      const closed = new Promise<void>((res) => s.once('close', () => res()));
      // Half the connections say AUTH once; the others prefix every line, alternating accounts.
      const authed = c % 2 === 0 ? accounts[(c >> 1) % 2]! : undefined;
      let n = 0;
      let chunk = authed ? `AUTH ${authed.token}\n` : '';
      const flush = async () => {
        if (!s.write(chunk)) await new Promise((res) => s.once('drain', res));
        chunk = '';
      };
      while (n < perConn) {
        const a = authed ?? accounts[rnd(2)]!;
        const l = line(a.id, transport);
        // Split lines across writes at random offsets now and then (a stream has no framing).
        chunk += authed ? `${l}\n` : `${a.token}.${l}\n`;
        n++;
        if (chunk.length > 4000) {
          const cut = rnd(chunk.length);
          const rest = chunk.slice(cut);
          chunk = chunk.slice(0, cut);
          await flush();
          chunk = rest;
        }
      }
      await flush();
      sent[transport] += n;
      s.end();
      await closed;
    };

    const senders: Promise<void>[] = [];
    for (let c = 0; c < CONNS.udp; c++) senders.push(udpSender(c));
    for (let c = 0; c < CONNS.tcp; c++) senders.push(streamSender('tcp', c));
    for (let c = 0; c < CONNS.unix; c++) senders.push(streamSender('unix', c));
    await Promise.all(senders);
    const sendMs = Date.now() - tSend;
    log(`sent ${sent.udp + sent.tcp + sent.unix} lines in ${sendMs} ms`);

    const udpLinesSeen = async () => {
      let s = 0;
      for (const r of reps) s += metricSum(await scrape(r.ops), 'osprey_statsd_lines_total', 'listener="udp"');
      return s;
    };
    // Wait (a bound, not a measurement) until the UDP listeners have read what was sent, or
    // give up and let the comparison show what was lost.
    await until('udp lines to arrive', async () => (await udpLinesSeen()) >= sent.udp, WAIT_MS.udp).catch((e: Error) => log(e.message));

    // Absolute gauges: each one's final value last, after a pause, so it is the latest by
    // time whichever replica got the earlier values (the README's rule: last by time).
    await new Promise((r) => setTimeout(r, 2100));
    {
      const gauges = [...ledger.values()].filter((e) => e.kind === 'gauge');
      const tcp = await new Promise<net.Socket>((resolve, reject) => {
        const so = net.connect({ host: '127.0.0.1', port: reps[rnd(2)]!.tcp });
        so.once('connect', () => resolve(so));
        so.once('error', reject);
      });
      tcp.resume();
      const closed = new Promise<void>((res) => tcp.once('close', () => res()));
      let text = '';
      for (const g of gauges) {
        g.final = rnd(100_000);
        g.count++;
        const tok = accounts.find((a) => a.id === g.account)!.token;
        text += `${tok}.${g.name}:${g.final}|g\n`;
      }
      tcp.end(text);
      await closed;
    }

    const listener: Record<string, number> = {};
    for (const r of reps) {
      const m = await scrape(r.ops);
      for (const [k, n, ...has] of [
        ['udp_lines', 'osprey_statsd_lines_total', 'listener="udp"'],
        ['tcp_lines', 'osprey_statsd_lines_total', 'listener="tcp"'],
        ['unix_lines', 'osprey_statsd_lines_total', 'listener="unix"'],
        ['udp_packets', 'osprey_statsd_packets_total', 'listener="udp"'],
        ['dropped_packets', 'osprey_statsd_dropped_packets_total'],
        ['dropped_samples', 'osprey_statsd_dropped_samples_total'],
        ['bad_lines', 'osprey_statsd_bad_lines_total'],
        ['auth_failures', 'osprey_statsd_auth_failures_total'],
      ] as const) {
        listener[k] = (listener[k] ?? 0) + metricSum(m, n, ...has);
      }
    }
    const kernelUdpRcvbufErrors = udpRcvbufErrors() - kernel0;

    await st.stop(WAIT_MS.stop);
    const exitCodes = await Promise.all(st.processes.map((p) => p.exited));
    const output = st.tail();
    stack = undefined;

    // MySQL against the ledger.
    const [rows] = await tdb.database.pool.query<RowDataPacket[]>(
      `SELECT s.account_id, s.name, s.kind, r.bucket, r.count, r.sum, r.last_value, r.last_time, r.sketch
         FROM rollups_1m r JOIN stats s ON s.id = r.stat_id WHERE s.name LIKE 'soak.%'`,
    );
    const [pend] = await tdb.database.pool.query<RowDataPacket[]>(
      `SELECT s.account_id, s.name, s.kind, p.sketch FROM pending_sketches p JOIN stats s ON s.id = p.stat_id WHERE s.name LIKE 'soak.%'`,
    );
    interface Got { count: number; sum: number; lastTime: number; last: number; sketch?: Buffer }
    const got = new Map<string, Got>();
    const keyOf = (r: RowDataPacket) => {
      const n = String(r.name);
      const kind: LKind = Number(r.kind) === KIND.counter ? 'counter' : Number(r.kind) === KIND.value ? 'timer' : Number(r.kind) === KIND.set ? 'set' : n.includes('.delta.') ? 'delta' : 'gauge';
      return `${Number(r.account_id)}\t${n}\t${kind}`;
    };
    const merge = (g: Got, kind: number, sk: Buffer | null) => {
      if (!sk) return;
      g.sketch = !g.sketch ? Buffer.from(sk) : kind === KIND.set ? mergeSerializedDistinct(g.sketch, sk) : mergeSerializedQuantiles(g.sketch, sk);
    };
    for (const r of rows) {
      const k = keyOf(r);
      let g = got.get(k);
      if (!g) got.set(k, (g = { count: 0, sum: 0, lastTime: -1, last: NaN }));
      g.count += Number(r.count);
      g.sum += Number(r.sum);
      const lt = Number(r.last_time);
      const lv = Number(r.last_value);
      if (lt > g.lastTime || (lt === g.lastTime && lv > g.last)) {
        g.lastTime = lt;
        g.last = lv;
      }
      merge(g, Number(r.kind), r.sketch as Buffer | null);
    }
    for (const r of pend) {
      const g = got.get(keyOf(r));
      if (g) merge(g, Number(r.kind), r.sketch as Buffer | null);
    }

    const out: SoakRow[] = [];
    const add = (e: Entry, check: string, expected: number, actual: number, tol = 0) => {
      const ok = tol === 0 ? expected === actual : Math.abs(actual - expected) <= tol * Math.abs(expected);
      out.push({ stat: `${e.account}:${e.name}`, kind: e.kind, transport: e.transport, check, expected, actual, ok });
    };
    for (const [k, e] of ledger) {
      const g = got.get(k) ?? { count: NaN, sum: NaN, lastTime: -1, last: NaN };
      switch (e.kind) {
        case 'counter':
          add(e, 'sum', e.sum, g.sum);
          add(e, 'count', e.count, g.count);
          break;
        case 'timer': {
          add(e, 'count', e.count, g.count);
          add(e, 'sum', e.sum, g.sum);
          const sorted = [...e.samples].sort((a, b) => a - b);
          const sk = g.sketch ? QuantileSketch.deserialize(g.sketch) : undefined;
          for (const q of [0.5, 0.9, 0.99]) add(e, `p${q * 100}`, exactQuantile(sorted, q), sk ? sk.quantile(q) : NaN, 0.01);
          break;
        }
        case 'gauge':
          add(e, 'points', e.count, g.count);
          add(e, 'value', e.final, g.last);
          break;
        case 'delta':
          // Deltas add up exactly once across replicas (like INCRBY) from 0.
          add(e, 'points', e.count, g.count);
          add(e, 'value', e.sum, g.last);
          break;
        case 'set': {
          add(e, 'points', e.count, g.count);
          const d = g.sketch ? DistinctSketch.deserialize(g.sketch).count : NaN;
          // Exact to 256 members; HyperLogLog beyond (~0.8% standard error, 4 sigma here).
          add(e, 'distinct', e.members.size, d, e.members.size <= DISTINCT_EXACT_LIMIT ? 0 : 0.033);
          break;
        }
      }
    }
    out.sort((a, b) => (a.transport + a.stat + a.check).localeCompare(b.transport + b.stat + b.check));
    return { seed, lines: sent, rows: out, mismatches: out.filter((r) => !r.ok), listener, kernelUdpRcvbufErrors, exitCodes, sendMs, totalMs: Date.now() - t0, output };
  } catch (err) {
    // A stage that failed (not ready, not bound, a scrape refused): say so with what the
    // replicas printed, which is otherwise not kept.
    if (stack && err instanceof Error) err.message += `\n${stack.tail()}`;
    throw err;
  } finally {
    await stack?.stop(30_000).catch(() => {});
    await tdb.drop().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The ledger comparison, aggregated per transport, kind and check, with every mismatch. */
export function formatSoak(r: SoakResult): string {
  const agg = new Map<string, { n: number; bad: number; exp: number; act: number }>();
  for (const row of r.rows) {
    const k = `${row.transport}\t${row.kind}\t${row.check}`;
    const a = agg.get(k) ?? { n: 0, bad: 0, exp: 0, act: 0 };
    a.n++;
    if (!row.ok) a.bad++;
    a.exp += row.expected;
    a.act += row.actual;
    agg.set(k, a);
  }
  const lines = [
    `seed ${r.seed}; lines sent: udp ${r.lines.udp}, tcp ${r.lines.tcp}, unix ${r.lines.unix}; send ${r.sendMs} ms, total ${r.totalMs} ms; replica exit codes ${r.exitCodes.join(',')}`,
    `listeners: ${Object.entries(r.listener).map(([k, v]) => `${k}=${v}`).join(' ')}; kernel UDP RcvbufErrors during run: ${r.kernelUdpRcvbufErrors}`,
    '',
    'transport kind     check     stats  mismatched  Σ ledger           Σ mysql',
  ];
  for (const [k, a] of [...agg].sort()) {
    const [t, kind, check] = k.split('\t');
    lines.push(`${t!.padEnd(9)} ${kind!.padEnd(8)} ${check!.padEnd(9)} ${String(a.n).padStart(5)}  ${String(a.bad).padStart(10)}  ${String(+a.exp.toFixed(3)).padEnd(18)} ${+a.act.toFixed(3)}`);
  }
  for (const m of r.mismatches) lines.push(`MISMATCH ${m.transport} ${m.stat} ${m.check}: ledger ${m.expected}, mysql ${m.actual}`);
  lines.push(r.mismatches.length === 0 ? 'ledger and MySQL agree' : `${r.mismatches.length} mismatches`);
  if ((r.mismatches.length > 0 || r.exitCodes.some((c) => c !== 0)) && r.output) lines.push('', 'replica output:', r.output);
  return lines.join('\n');
}
