import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import StatsDClient, { type StatsD } from 'hot-shots';
import { createAccount } from '../../kit/accounts.js';
import { KIND } from '../../kit/db/schema.js';
import { createTestDatabase, type TestDatabase } from '../../kit/testing/db.js';
import {
  connectStream,
  endAndWait,
  metricValue,
  rollupRows,
  startStatsdReplica,
  statsdTestConfig,
  tempSocketDir,
  waitFor,
  write,
} from './testing.js';
import type { StatsdTestReplica } from './testing.js';
import type { StatsdConfig } from '../config.js';
import type { StreamListener } from './listeners.js';
import { once } from 'node:events';
import { pino } from 'pino';
import { connectDatabase } from '../../kit/db/client.js';
import { createMetrics } from '../../kit/metrics.js';
import { Aggregator, bucketCopy } from '../aggregator.js';
import { StatResolver } from '../stat-resolver.js';
import { startStatsd } from './server.js';

let tdb: TestDatabase;
let dir: string;
let accountId: number;
const replicas: StatsdTestReplica[] = [];
// Every sample in one minute, so each stat has one rollup row per table.
const T = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;
const now = () => T;
const BUCKET = T / 1000 - 30;

async function start(overrides: Partial<StatsdConfig> = {}) {
  const r = await startStatsdReplica(tdb, statsdTestConfig(path.join(dir, 'statsd.sock'), { STATSD_DEFAULT_ACCOUNT: accountId, ...overrides }), now);
  replicas.push(r);
  return r;
}

async function stop(r: StatsdTestReplica) {
  replicas.splice(replicas.indexOf(r), 1);
  await r.stop();
}

beforeEach(async () => {
  tdb = await createTestDatabase();
  dir = tempSocketDir();
  accountId = (await createAccount(tdb.database.pool, 'statsd@example.com')).id;
});
afterEach(async () => {
  for (const r of replicas.splice(0)) await r.stop();
  await tdb.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** What every hot-shots test sends, and the rows it must give. */
function sendWithHotShots(client: StatsD): number {
  client.increment('hits');
  client.increment('hits', 4);
  client.decrement('hits', 2);
  client.increment('hits', 1, ['env:prod', 'az:b']);
  client.timing('hits', 7); // the same name as a timer: another stat
  client.timing('latency', 12);
  client.timing('latency', 30);
  client.histogram('latency', 18);
  client.distribution('size', 5);
  client.gauge('temp', 20);
  client.gaugeDelta('temp', -3);
  client.set('users', 'u1');
  client.set('users', 'u2');
  client.set('users', 'u1');
  return 14;
}

const C = KIND.counter;
const V = KIND.value;
const EXPECTED_COUNTERS_AND_VALUES = [
  { name: 'hits', kind: C, count: 3, sum: 3, min: -2, max: 4 },
  { name: 'hits', kind: V, count: 1, sum: 7, min: 7, max: 7 },
  { name: 'hits;az=b;env=prod', kind: C, count: 1, sum: 1, min: 1, max: 1 },
  { name: 'latency', kind: V, count: 3, sum: 60, min: 12, max: 30 },
  { name: 'size', kind: V, count: 1, sum: 5, min: 5, max: 5 },
];

async function flushed(r: StatsdTestReplica) {
  expect(await r.statsd.intake!.settle(10_000)).toBe(true);
  await r.flusher.flush();
  const rows = await rollupRows(tdb);
  for (const row of rows) expect(row.bucket).toBe(BUCKET);
  return rows;
}

function closeClient(c: StatsD): Promise<void> {
  return new Promise((resolve) => c.close(() => resolve()));
}

describe('statsd listeners with the hot-shots client', () => {
  const check = async (r: StatsdTestReplica) => {
    const rows = await flushed(r);
    expect(rows.filter((x) => x.kind === C || x.kind === V).map(({ name, kind, count, sum, min, max }) => ({ name, kind, count, sum, min, max }))).toEqual(EXPECTED_COUNTERS_AND_VALUES);
    const gauge = rows.find((x) => x.name === 'temp')!;
    expect([gauge.kind, gauge.count, gauge.lastValue]).toEqual([KIND.gauge, 2, 17]);
    const set = rows.find((x) => x.name === 'users')!;
    // (the set's distinct count and the timers' percentiles are in sketches: the sketch tests' business)
    expect([set.kind, set.count]).toEqual([KIND.set, 3]);
    expect(rows.map((x) => x.name)).toEqual(['hits', 'hits', 'hits;az=b;env=prod', 'latency', 'size', 'temp', 'users']);
  };

  it('over UDP, one datagram per metric and buffered into multi-line datagrams', async () => {
    const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false });
    const port = r.statsd.udp!.address()!.port;
    const errors: Error[] = [];
    const single = new StatsDClient({ host: '127.0.0.1', port, errorHandler: (e) => errors.push(e) });
    const lines = sendWithHotShots(single);
    await closeClient(single);
    await waitFor('the UDP lines', () => r.statsd.udp!.stats.lines === lines);
    expect(r.statsd.udp!.stats.packets).toBe(lines);
    await check(r);

    // The same again, batched: hot-shots joins metrics with "\n" up to maxBufferSize.
    await tdb.database.pool.query('DELETE FROM rollups_1m');
    const batched = new StatsDClient({ host: '127.0.0.1', port, maxBufferSize: 200, bufferFlushInterval: 10, errorHandler: (e) => errors.push(e) });
    sendWithHotShots(batched);
    await closeClient(batched);
    await waitFor('the batched UDP lines', () => r.statsd.udp!.stats.lines === 2 * lines);
    expect(r.statsd.udp!.stats.packets).toBeLessThan(2 * lines);
    const rows = await flushed(r);
    expect(rows.find((x) => x.name === 'latency')).toMatchObject({ count: 3, sum: 60 });
    expect(errors).toEqual([]);
    expect(await metricValue(r.registry, 'osprey_statsd_lines_total', { listener: 'udp' })).toBe(2 * lines);
    expect(await metricValue(r.registry, 'osprey_statsd_packets_total', { listener: 'udp' })).toBe(r.statsd.udp!.stats.packets);
  });

  it('over TCP', async () => {
    const r = await start({ STATSD_UDP: false, STATSD_UNIX: false, STATSD_MGMT: false });
    const address = r.statsd.tcp!.address() as net.AddressInfo;
    const errors: Error[] = [];
    const client = new StatsDClient({ host: '127.0.0.1', port: address.port, protocol: 'tcp', errorHandler: (e) => errors.push(e) });
    const lines = sendWithHotShots(client);
    await closeClient(client);
    await waitFor('the TCP lines', () => r.statsd.tcp!.stats.lines === lines);
    await check(r);
    expect(errors).toEqual([]);
    expect(await metricValue(r.registry, 'osprey_statsd_lines_total', { listener: 'tcp' })).toBe(lines);
  });

  it('over the Unix stream socket', async () => {
    const r = await start({ STATSD_UDP: false, STATSD_TCP: false, STATSD_MGMT: false });
    const socketPath = r.statsd.unix!.address() as string;
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
    const errors: Error[] = [];
    // hot-shots' `stream` protocol writes newline-terminated metrics to any stream: here a
    // connection to the Unix socket (its `uds` protocol is for datagram sockets).
    const client = new StatsDClient({ protocol: 'stream', stream: net.connect(socketPath), errorHandler: (e) => errors.push(e) });
    const lines = sendWithHotShots(client);
    await closeClient(client);
    await waitFor('the Unix socket lines', () => r.statsd.unix!.stats.lines === lines);
    await check(r);
    expect(errors).toEqual([]);
  });
});

/** A stream exercising the framing: rates, multi-value lines, tags, CRLF, an empty line, a bad line, sets with ':', no final newline. */
const REFERENCE = Buffer.from(
  [
    'a.b:1|c|@0.5',
    'a.b:2|c:250|ms',
    'tagged:3|c|#z:1,b',
    'crlf:4|ms\r',
    '',
    'not a metric',
    'g:+3|g',
    'g:-1|g',
    'who:user:42|s',
    'h:1:2:3|h',
    'last:9|c',
  ].join('\n'),
);

type Counts = { lines: number; bad: Record<string, number> };

function counts(l: StreamListener): Counts {
  return { lines: l.stats.lines, bad: { ...l.stats.bad } };
}

function minus(a: Counts, b: Counts): Counts {
  return { lines: a.lines - b.lines, bad: Object.fromEntries(Object.entries(a.bad).map(([k, v]) => [k, v - b.bad[k]])) };
}

/** Sends `parts` as separate reads: each part is written once the server has read the previous ones. */
async function sendInReads(l: StreamListener, to: number | string, parts: Buffer[]): Promise<void> {
  const s = await connectStream(to);
  let sent = l.stats.bytes;
  for (const p of parts) {
    if (p.length === 0) continue;
    await write(s, p);
    sent += p.length;
    await waitFor('the server to read the part', () => l.stats.bytes === sent);
  }
  await endAndWait(s);
}

/** What the aggregator holds, taken; arrival sequence numbers (global, ever increasing) left out. */
function sortedBuckets(r: StatsdTestReplica): unknown[] {
  const withoutSeq = (v: unknown): unknown => {
    if (Array.isArray(v) || v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'lastSeq').map(([k, x]) => [k, withoutSeq(x)]));
  };
  return r.aggregator
    .take()
    .sort((x, y) => x.statId - y.statId || x.bucket - y.bucket)
    .map((b) => withoutSeq(bucketCopy(b)));
}

describe('stream framing', () => {
  for (const kind of ['tcp', 'unix'] as const) {
    it(`${kind}: a stream split into two reads at every byte offset gives what it gives whole`, async () => {
      const r = await start({ STATSD_UDP: false, STATSD_MGMT: false });
      const l = kind === 'tcp' ? r.statsd.tcp! : r.statsd.unix!;
      const to = kind === 'tcp' ? (l.address() as net.AddressInfo).port : (l.address() as string);

      let before = counts(l);
      await sendInReads(l, to, [REFERENCE]);
      await r.statsd.intake!.settle(10_000);
      const whole = minus(counts(l), before);
      const wholeBuckets = sortedBuckets(r);
      expect(whole).toMatchObject({ lines: 10, bad: { no_value: 1 } });
      expect(wholeBuckets.length).toBe(8);

      for (let k = 1; k < REFERENCE.length; k++) {
        before = counts(l);
        await sendInReads(l, to, [REFERENCE.subarray(0, k), REFERENCE.subarray(k)]);
        expect(minus(counts(l), before), `split at ${k}`).toEqual(whole);
        expect(sortedBuckets(r), `split at ${k}`).toEqual(wholeBuckets);
      }
      expect(await metricValue(r.registry, 'osprey_statsd_bad_lines_total', { listener: kind, reason: 'no_value' })).toBe(REFERENCE.length);
    });
  }

  it('counts a line over the maximum once, across many reads, and parses the rest of the stream', async () => {
    const r = await start({ STATSD_UDP: false, STATSD_UNIX: false, STATSD_MGMT: false, STATSD_MAX_LINE: 64 });
    const l = r.statsd.tcp!;
    const port = (l.address() as net.AddressInfo).port;
    const long = Buffer.from(`long.name:${'1'.repeat(300)}|c\n`);
    const parts = [Buffer.from('ok:1|c\n'), long.subarray(0, 50), long.subarray(50, 120), long.subarray(120, 250), long.subarray(250), Buffer.from('ok:2|c\nedge:' + '7'.repeat(64 - 7) + '|c\n')];
    await sendInReads(l, port, parts);
    await r.statsd.intake!.settle(10_000);
    expect(l.stats.bad.too_long).toBe(1);
    expect(l.stats.lines).toBe(4);
    const rows = await flushed(r);
    expect(rows.map((x) => [x.name, x.sum])).toEqual([
      ['edge', Number('7'.repeat(57))],
      ['ok', 3],
    ]);
    expect(await metricValue(r.registry, 'osprey_statsd_bad_lines_total', { listener: 'tcp', reason: 'too_long' })).toBe(1);
  });

  it('counts bad lines by reason in /metrics and never loses the good lines of a datagram', async () => {
    const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false });
    const port = r.statsd.udp!.address()!.port;
    const sock = (await import('node:dgram')).createSocket('udp4');
    const packet = 'good:1|c\nbad:NaN|c\nneg:-1|ms\nrate:1|c|@2\nwhat:1|x\ngood:2|c\n';
    await new Promise<void>((res, rej) => sock.send(packet, port, '127.0.0.1', (err) => (err ? rej(err) : res())));
    sock.close();
    await waitFor('the datagram', () => r.statsd.udp!.stats.lines === 6);
    const rows = await flushed(r);
    expect(rows.map((x) => [x.name, x.sum])).toEqual([['good', 3]]);
    for (const [reason, n] of [['bad_value', 1], ['negative_timer', 1], ['bad_rate', 1], ['bad_type', 1]] as const) {
      expect(await metricValue(r.registry, 'osprey_statsd_bad_lines_total', { listener: 'udp', reason }), reason).toBe(n);
    }
    expect(await metricValue(r.registry, 'osprey_statsd_bytes_total', { listener: 'udp' })).toBe(Buffer.byteLength(packet));
  });
});

describe('UDP while the event loop is held', () => {
  it('loses nothing: a reader thread drains the socket (a plain socket beside it overflows)', async () => {
    const dgram = await import('node:dgram');
    const { spawn } = await import('node:child_process');
    // A bigger receive buffer (as far as net.core.rmem_max allows) covers the moments a busy
    // machine does not schedule the reader thread; it holds far less than the held time.
    const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false, STATSD_UDP_RECV_BUFFER: 4 << 20 });
    const port = r.statsd.udp!.address()!.port;
    // The control: a socket with the same buffer read on this thread, as a listener without the reader thread would be.
    const control = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    let controlLines = 0;
    control.on('message', () => controlLines++);
    await new Promise<void>((res) => control.bind(0, '127.0.0.1', res));
    const N = 30_000; // over 2 s: far more than the receive buffer holds, at a rate a reader keeps up with
    const done = path.join(dir, 'sent');
    const sender = spawn(
      process.execPath,
      [
        '-e',
        `const d = require('dgram').createSocket('udp4');
         const ports = [${port}, ${control.address().port}];
         let i = 0;
         const go = () => { for (let k = 0; k < 75 && i < ${N}; k++, i++) for (const p of ports) d.send('held:1|c', p, '127.0.0.1');
           if (i < ${N}) setTimeout(go, 5); else setTimeout(() => { require('fs').writeFileSync(${JSON.stringify(done)}, ''); d.close(); }, 100); };
         go();`,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((res) => sender.once('exit', res));
    // Hold this thread (a long flush would) until the sender is done.
    const until = Date.now() + 20_000;
    while (!fs.existsSync(done) && Date.now() < until);
    expect(fs.existsSync(done)).toBe(true);
    await exited;
    await waitFor('the held lines', () => r.statsd.udp!.stats.lines === N).catch((e) => { throw new Error(`${e.message}: ${r.statsd.udp!.stats.lines} of ${N}, control ${controlLines}, dropped ${r.statsd.udp!.stats.packetsDropped}`); });
    await new Promise((res) => setTimeout(res, 100));
    control.close();
    expect(controlLines).toBeLessThan(N);
    expect(r.statsd.udp!.stats.packetsDropped).toBe(0);
    const rows = await flushed(r);
    expect(rows.map((x) => [x.name, x.sum])).toEqual([['held', N]]);
  });
  it('wraps around its queue at every offset, and when the queue is full drops whole datagrams and counts them', async () => {
    const { spawn } = await import('node:child_process');
    const QUEUE = 1 << 17;
    const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false, STATSD_UDP_RECV_BUFFER: 4 << 20, STATSD_UDP_QUEUE_BYTES: QUEUE });
    const port = r.statsd.udp!.address()!.port;
    // Datagrams of 11 to 140 bytes (an ignored |x field pads them), so records end at every offset of the ring.
    const send = (n: number, perTick: number, done: string) => {
      const child = spawn(
        process.execPath,
        [
          '-e',
          `const d = require('dgram').createSocket('udp4');
           let i = 0;
           const go = () => { for (let k = 0; k < ${perTick} && i < ${n}; k++, i++) d.send('wrap:1|c|x' + 'p'.repeat(i % 130), ${port}, '127.0.0.1');
             if (i < ${n}) setTimeout(go, 5); else setTimeout(() => { require('fs').writeFileSync(${JSON.stringify(done)}, ''); d.close(); }, 100); };
           go();`,
        ],
        { stdio: 'ignore' },
      );
      return new Promise((res) => child.once('exit', res));
    };
    // 1. Paced so the parsing thread keeps up: ~1.5 MB through a 128 KB ring, nothing dropped.
    const N = 20_000;
    await send(N, 40, path.join(dir, 'sent1'));
    await waitFor('the paced lines', () => r.statsd.udp!.stats.lines === N);
    expect(r.statsd.udp!.stats.packetsDropped).toBe(0);
    expect(r.statsd.udp!.stats.bad).toEqual(Object.fromEntries(Object.keys(r.statsd.udp!.stats.bad).map((k) => [k, 0])));
    // 2. This thread held while 40,000 datagrams arrive (2 s, ~3 MB, more than the ring and the
    // kernel's receive buffer hold together): the rest is dropped and counted.
    const M = 40_000;
    const done = path.join(dir, 'sent2');
    const exited = send(M, 100, done);
    const until = Date.now() + 20_000;
    while (!fs.existsSync(done) && Date.now() < until);
    expect(fs.existsSync(done)).toBe(true);
    await exited;
    // Past half a ring the reader naps, so the kernel drops some too: every datagram is read, dropped at the ring or dropped by the kernel, and counted.
    const st = r.statsd.udp!.stats;
    await waitFor('the held lines', () => st.lines + st.packetsDropped + st.kernelDrops() === N + M).catch((e) => {
      throw new Error(`${e.message}: ${st.lines - N} read, ${st.packetsDropped} dropped at the ring, ${st.kernelDrops()} by the kernel, of ${M}`);
    });
    const dropped = st.packetsDropped + st.kernelDrops();
    expect(dropped).toBeGreaterThan(0);
    expect(st.lines - N).toBeGreaterThan(QUEUE / 150);
    expect(await metricValue(r.registry, 'osprey_statsd_dropped_packets_total', { listener: 'udp' })).toBe(st.packetsDropped);
    expect(await metricValue(r.registry, 'osprey_statsd_udp_kernel_drops_total', { listener: 'udp' })).toBe(st.kernelDrops());
    // Every datagram that was kept is whole: one good line each, and the sum is what was kept.
    expect(Object.values(st.bad).every((n) => n === 0)).toBe(true);
    const rows = await flushed(r);
    expect(rows.map((x) => [x.name, x.sum])).toEqual([['wrap', N + M - dropped]]);
  });
});

describe('the UDP queue', () => {
  it('starts again at its front whenever it empties past its first MiB, so little of a large queue is ever in memory', async () => {
    const QUEUE = 4 << 20;
    const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false, STATSD_UDP_QUEUE_BYTES: QUEUE });
    const port = r.statsd.udp!.address()!.port;
    const sock = (await import('node:dgram')).createSocket('udp4');
    // 40,000 datagrams of ~150 bytes (6 MB, more than the queue), 100 at a time, each hundred
    // sent once the listener has parsed the one before: paced by the listener, not by a clock
    // (a fixed pause lost datagrams in the kernel once, on a machine busy with other tests).
    const N = 40_000;
    const datagram = Buffer.from('reuse:1|c|x' + 'p'.repeat(140));
    const st = r.statsd.udp!.stats;
    for (let i = 0; i < N; i += 100) {
      await waitFor('the previous hundred datagrams', () => st.lines >= i);
      for (let k = 0; k < 100; k++) sock.send(datagram, port, '127.0.0.1');
    }
    await waitFor('every datagram', () => st.lines === N);
    sock.close();
    expect(st.packetsDropped + st.kernelDrops()).toBe(0);
    // Past 1 MiB the writer went back to the front each time it found the queue empty (going
    // round the whole queue instead, 6 MB would have touched all 4 MiB of it).
    const touched = st.queueTouchedBytes();
    expect(touched).toBeGreaterThanOrEqual(1 << 20);
    expect(touched).toBeLessThan(2 << 20);
    expect(await metricValue(r.registry, 'osprey_statsd_udp_queue_touched_bytes')).toBe(touched);
    const rows = await flushed(r);
    expect(rows.map((x) => [x.name, x.sum])).toEqual([['reuse', N]]);
  });
  it('after a burst touched it far, moves to a fresh queue once quiet (STATSD_UDP_QUEUE_RELEASE_MS), reading every datagram across the move', async () => {
    const { spawn } = await import('node:child_process');
    const r = await start({
      STATSD_TCP: false,
      STATSD_UNIX: false,
      STATSD_MGMT: false,
      STATSD_UDP_RECV_BUFFER: 4 << 20,
      STATSD_UDP_QUEUE_BYTES: 8 << 20,
      STATSD_UDP_QUEUE_RELEASE_MS: 50,
    });
    const port = r.statsd.udp!.address()!.port;
    const st = r.statsd.udp!.stats;
    // A sender that goes on until told to stop: 10 lines a datagram, 1.3-1.4 KB (an ignored |x field
    // pads them, so records end at varied offsets), ~4,000 datagrams a second.
    const LINES = 10;
    const stopFile = path.join(dir, 'stop');
    const sentFile = path.join(dir, 'sent');
    const sender = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs');
         const d = require('dgram').createSocket('udp4');
         let i = 0;
         const go = () => {
           if (fs.existsSync(${JSON.stringify(stopFile)})) return setTimeout(() => { fs.writeFileSync(${JSON.stringify(sentFile)}, String(i)); d.close(); }, 100);
           for (let k = 0; k < 20; k++, i++) d.send(Array.from({ length: ${LINES} }, (_, j) => 'move:1|c|x' + 'p'.repeat(120 + ((i + j) % 17))).join('\\n'), ${port}, '127.0.0.1');
           setTimeout(go, 5);
         };
         go();`,
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise((res) => sender.once('exit', res));
    try {
      for (let cycle = 0; cycle < 3; cycle++) {
        // Hold this thread (as a long flush would) until a burst has queued up past 2.5 MiB...
        const until = Date.now() + 20_000;
        while (st.queuedBytes() < 5 << 19 && Date.now() < until);
        expect(st.queuedBytes()).toBeGreaterThanOrEqual(5 << 19);
        expect(st.queueTouchedBytes()).toBeGreaterThanOrEqual(5 << 19);
        // ...then let go: once it has held under 1 MiB for 50 ms, with datagrams still coming, the queue is replaced.
        await waitFor(`release ${cycle + 1}`, () => st.queueReleases > cycle);
      }
    } finally {
      fs.writeFileSync(stopFile, '');
      await exited;
    }
    const sent = Number(fs.readFileSync(sentFile, 'utf8'));
    // Every datagram the reader thread kept was parsed once and whole (none lost or read twice at a move).
    await waitFor('every datagram kept', () => st.lines === LINES * (sent - st.packetsDropped - st.kernelDrops())).catch((e) => {
      throw new Error(`${e.message}: ${st.lines} lines of ${sent} datagrams, ${st.packetsDropped} dropped at the queue, ${st.kernelDrops()} by the kernel`);
    });
    expect(Object.values(st.bad).every((n) => n === 0)).toBe(true);
    expect(st.queueReleases).toBeGreaterThanOrEqual(3);
    // The queue in use now was touched only by the paced datagrams since the last move.
    expect(st.queueTouchedBytes()).toBeLessThan(2 << 20);
    expect(await metricValue(r.registry, 'osprey_statsd_udp_queue_releases_total', { listener: 'udp' })).toBe(st.queueReleases);
    const rows = await flushed(r);
    expect(rows.map((x) => [x.name, x.sum])).toEqual([['move', st.lines]]);
  });
});

describe('backpressure', () => {
  it('a TCP connection stops reading while the samples\' next stage is backlogged, and loses nothing', async () => {
    // What the write-ahead log does when the disk falls behind, held here by the test.
    const gate = {
      backlogged: true,
      waiting: [] as (() => void)[],
      onceRelieved(fn: () => void) {
        if (this.backlogged) this.waiting.push(fn);
        else fn();
      },
    };
    const aggregator = new Aggregator();
    const registry = createMetrics('ingest');
    const database = connectDatabase(tdb.url);
    const statsd = await startStatsd({
      config: statsdTestConfig(path.join(dir, 'statsd.sock'), { STATSD_DEFAULT_ACCOUNT: accountId, STATSD_UDP: false, STATSD_UNIX: false, STATSD_MGMT: false }),
      target: aggregator,
      backpressure: gate,
      stats: new StatResolver(database.pool),
      pool: database.pool,
      log: pino({ level: 'silent' }),
      metrics: registry,
      now,
    });
    try {
      const s = await connectStream((statsd.tcp!.address() as net.AddressInfo).port);
      // 14 MB: more than the kernel's socket buffers hold between the two ends.
      const chunk = Buffer.from('bp:1|c\n'.repeat(10_000));
      const LINES = 200 * 10_000;
      let sent = false;
      const sending = (async () => {
        for (let i = 0; i < LINES / 10_000; i++) if (!s.write(chunk)) await once(s, 'drain');
        sent = true;
      })();
      const st = statsd.tcp!.stats;
      await waitFor('the first read', () => st.lines > 0);
      const held = st.lines;
      await new Promise((r) => setTimeout(r, 300));
      expect(st.pauses).toBe(1);
      expect(st.lines).toBe(held); // nothing read while backlogged
      expect(sent).toBe(false); // the client waits on its socket
      gate.backlogged = false;
      for (const fn of gate.waiting.splice(0)) fn();
      await sending;
      await waitFor('every line', () => st.lines === LINES);
      await waitFor('every sample aggregated', () => aggregator.pendingSamples === LINES);
      expect(Object.values(st.bad).every((n) => n === 0)).toBe(true);
      expect(await metricValue(registry, 'osprey_statsd_read_pauses_total', { listener: 'tcp' })).toBe(1);
      await endAndWait(s);
    } finally {
      await statsd.stop(0);
      await database.close();
    }
  });
});

describe('lookups', () => {
  it('keeps the samples of new stats while MySQL fails, and aggregates them in order once it answers', async () => {
    const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false });
    const port = r.statsd.udp!.address()!.port;
    const sock = (await import('node:dgram')).createSocket('udp4');
    const send = (text: string) => new Promise<void>((res, rej) => sock.send(text, port, '127.0.0.1', (err) => (err ? rej(err) : res())));
    await tdb.database.pool.query('RENAME TABLE stats TO stats_away');
    try {
      await send('fresh:1|c\ng:10|g\ng:+5|g');
      await send('fresh:2|c\ng:-3|g');
      await waitFor('the datagrams', () => r.statsd.udp!.stats.lines === 5);
      // at least one lookup has failed by now, and the samples wait
      await waitFor('a failed lookup', () => r.statsd.intake!.pendingSamples === 5);
      expect(await r.statsd.intake!.settle(200)).toBe(false);
    } finally {
      await tdb.database.pool.query('RENAME TABLE stats_away TO stats');
    }
    sock.close();
    const rows = await flushed(r);
    expect(rows.map((x) => [x.name, x.kind, x.count, x.lastValue])).toEqual([
      ['fresh', KIND.counter, 2, 2],
      ['g', KIND.gauge, 3, 12],
    ]);
    expect(rows.find((x) => x.name === 'fresh')!.sum).toBe(3);
  });
});

describe('shutdown', () => {
  it('closes the listeners, parses what clients had sent, then flushes it', async () => {
    const r = await start({ STATSD_MGMT: false });
    const tcp = await connectStream((r.statsd.tcp!.address() as net.AddressInfo).port);
    const unix = await connectStream(r.statsd.unix!.address() as string);
    const N = 100_000; // ~800 KB a connection: more than the socket buffers hold
    const lines = Array.from({ length: N }, (_, i) => `n:${i % 7}|c\n`).join('');
    tcp.write(lines + 'tail:1|c'); // the last line has no newline: it ends with the stream
    unix.write(lines);
    tcp.resume();
    unix.resume();
    // No waiting for the server to have read it (most is still in flight): stopping must read it all first.
    await stop(r);
    const rows = await rollupRows(tdb);
    const sum = [...Array(N).keys()].reduce((s, i) => s + (i % 7), 0);
    expect(rows.map((x) => [x.name, x.count, x.sum])).toEqual([
      ['n', 2 * N, 2 * sum],
      ['tail', 1, 1],
    ]);
    expect(fs.existsSync(path.join(dir, 'statsd.sock'))).toBe(false);
  });
});

describe('SIGTERM', () => {
  it('on a real ingest process: the listeners close first, what was read is parsed, then flushed, exit 0', async () => {
    const { freePort } = await import('../../../scripts/lib/stack.js');
    const { spawn } = await import('node:child_process');
    const { TEST_SERVICE_TOKEN } = await import('../../kit/testing/db.js');
    const [tcpPort, udpPort, opsPort] = [await freePort(), await freePort(), await freePort()];
    const socketPath = path.join(dir, 'main.sock');
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/ingest/main.ts'], {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: tdb.url,
        SERVICE_TOKEN: TEST_SERVICE_TOKEN,
        LOG_LEVEL: 'error',
        OPS_PORT: String(opsPort),
        STATSD_UDP_HOST: '127.0.0.1',
        STATSD_UDP_PORT: String(udpPort),
        STATSD_TCP_HOST: '127.0.0.1',
        STATSD_TCP_PORT: String(tcpPort),
        STATSD_UNIX_PATH: socketPath,
        STATSD_MGMT: 'false',
        STATSD_DEFAULT_ACCOUNT: String(accountId),
        // its own write-ahead log, not the checkout's .data/wal
        WAL_ROOT: path.join(dir, 'wal'),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor('the process to listen', async () => fs.existsSync(socketPath) && (await connectStream(tcpPort).then((s) => (s.destroy(), true), () => false)));
    const udp = (await import('node:dgram')).createSocket('udp4');
    for (let i = 0; i < 10; i++) await new Promise<void>((res) => udp.send('u:1|c', udpPort, '127.0.0.1', () => res()));
    udp.close();
    // UDP has no end of stream: what it delivered must have been read before the signal.
    const metric = async () => {
      const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
      return Number(/osprey_statsd_lines_total\{listener="udp"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    await waitFor('the datagrams', async () => (await metric()) === 10);
    const tcp = await connectStream(tcpPort);
    const unix = await connectStream(socketPath);
    const N = 50_000;
    const lines = 'n:1|c\n'.repeat(N);
    tcp.write(lines);
    unix.write(lines);
    tcp.resume();
    unix.resume();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const rows = await rollupRows(tdb);
    expect(rows.map((x) => [x.name, x.sum])).toEqual([
      ['n', 2 * N],
      ['u', 10],
    ]);
  });
});

describe('two replicas on one host', () => {
  it('share the addresses: one serves, the other stands by and takes over when it stops', async () => {
    const { freePort } = await import('../../../scripts/lib/stack.js');
    const [tcpPort, udpPort, mgmtPort] = [await freePort(), await freePort(), await freePort()];
    const fixed = { STATSD_TCP_PORT: tcpPort, STATSD_UDP_PORT: udpPort, STATSD_MGMT_PORT: mgmtPort };
    const a = await start(fixed);
    const b = await start(fixed);
    expect(a.statsd.tcp!.address()).not.toBeNull();
    expect(a.statsd.unix!.address()).not.toBeNull();
    expect(a.statsd.management!.address()).not.toBeNull();
    expect(b.statsd.tcp!.address()).toBeNull();
    expect(b.statsd.unix!.address()).toBeNull();
    expect(b.statsd.management!.address()).toBeNull();
    expect(await metricValue(b.registry, 'osprey_statsd_listener_bound', { listener: 'tcp' })).toBe(0);
    expect(await metricValue(a.registry, 'osprey_statsd_listener_bound', { listener: 'tcp' })).toBe(1);

    const send = async (what: string) => {
      const t = new StatsDClient({ host: '127.0.0.1', port: tcpPort, protocol: 'tcp', errorHandler: () => {} });
      t.increment(`${what}.tcp`);
      await closeClient(t);
      const u = new StatsDClient({ protocol: 'stream', stream: net.connect(path.join(dir, 'statsd.sock')), errorHandler: () => {} });
      u.increment(`${what}.unix`);
      await closeClient(u);
      const d = new StatsDClient({ host: '127.0.0.1', port: udpPort, errorHandler: () => {} });
      d.increment(`${what}.udp`);
      await closeClient(d);
    };
    const linesOf = (r: StatsdTestReplica) => r.statsd.udp!.stats.lines + r.statsd.tcp!.stats.lines + r.statsd.unix!.stats.lines;
    await send('before');
    await waitFor('both replicas to have the lines', () => linesOf(a) + linesOf(b) === 3);
    expect(linesOf(a)).toBeGreaterThanOrEqual(2); // TCP and Unix went to the holder

    await stop(a);
    await waitFor('b to take over', () => b.statsd.tcp!.address() !== null && b.statsd.unix!.address() !== null && b.statsd.management!.address() !== null);
    await send('after');
    await waitFor('b to have the lines', () => linesOf(b) >= 3);
    await b.statsd.intake!.settle(10_000);
    await b.flusher.flush();
    const rows = await rollupRows(tdb);
    expect(rows.map((x) => [x.name, x.sum])).toEqual([
      ['after.tcp', 1],
      ['after.udp', 1],
      ['after.unix', 1],
      ['before.tcp', 1],
      ['before.udp', 1],
      ['before.unix', 1],
    ]);
  });

  it('replaces a stale socket file left by a crash, and refuses to replace a regular file', async () => {
    const socketPath = path.join(dir, 'statsd.sock');
    // A socket file nobody listens on: bind elsewhere, move it into place, close.
    const s = net.createServer();
    await new Promise<void>((res) => s.listen(socketPath + '.x', res));
    fs.renameSync(socketPath + '.x', socketPath);
    await new Promise<void>((res) => s.close(() => res()));
    const r = await start({ STATSD_UDP: false, STATSD_TCP: false, STATSD_MGMT: false });
    expect(r.statsd.unix!.address()).toBe(socketPath);
    const c = await connectStream(socketPath);
    await write(c, 'x:1|c\n');
    await endAndWait(c);
    await waitFor('the line', () => r.statsd.unix!.stats.lines === 1);
    await stop(r);

    const file = path.join(dir, 'not-a-socket');
    fs.writeFileSync(file, 'keep me');
    await expect(start({ STATSD_UDP: false, STATSD_TCP: false, STATSD_MGMT: false, STATSD_UNIX_PATH: file })).rejects.toThrow(/is not a socket/);
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
  });
});

describe('the UDP reader thread', () => {
  /** This process's threads with their scheduling policy (/proc/self/task/T/stat fields 40 and 41: rt_priority, policy; 1 = SCHED_FIFO) and nice value (19). */
  const threads = () =>
    fs.readdirSync('/proc/self/task').map((tid) => {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return { tid: Number(tid), nice: Number(f[16]), rtPriority: Number(f[37]), policy: Number(f[38]) };
    });

  it('runs real-time where the system allows it (root here), and says what it runs at in /metrics', async () => {
    const before = new Set(threads().map((t) => t.tid));
    const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false, STATSD_UDP_READER_PRIORITY: 'realtime' });
    const applied = r.statsd.udp!.stats.readerPriority!;
    expect(await metricValue(r.registry, 'osprey_statsd_udp_reader_priority', { priority: applied })).toBe(1);
    const fresh = threads().filter((t) => !before.has(t.tid));
    const fifo = fresh.filter((t) => t.policy === 1);
    if (process.getuid?.() === 0) expect(applied).toBe('realtime');
    if (applied === 'realtime') expect(fifo.map((t) => t.rtPriority)).toEqual([10]);
    else expect(fifo).toEqual([]);
    // Nothing else of this process became real-time.
    expect(threads().filter((t) => t.policy === 1 && !fifo.some((f) => f.tid === t.tid))).toEqual([]);
    // It still reads.
    const dgram = await import('node:dgram');
    const s = dgram.createSocket('udp4');
    await new Promise<void>((res) => s.send('rt:1|c', r.statsd.udp!.address()!.port, '127.0.0.1', () => res()));
    s.close();
    await waitFor('the line', () => r.statsd.udp!.stats.lines === 1);
  });

  it('wakes once for several datagrams of a busy sender, not once for each (STATSD_UDP_COALESCE_US), and still takes every line', async () => {
    const { spawn } = await import('node:child_process');
    const N = 4000;
    /** Sends N datagrams, one every 250 µs (a spin between sends), and returns the reader thread's voluntary context switches meanwhile. */
    const wakes = async (coalesceUs: number) => {
      const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false, STATSD_UDP_RECV_BUFFER: 4 << 20, STATSD_UDP_COALESCE_US: coalesceUs });
      const udp = r.statsd.udp!;
      const switches = () => Number(/voluntary_ctxt_switches:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/task/${udp.readerTid}/status`, 'utf8'))![1]);
      expect(udp.readerTid).toBeGreaterThan(0);
      const before = switches();
      const sender = spawn(
        process.execPath,
        [
          '-e',
          `const d = require('dgram').createSocket('udp4');
           d.connect(${udp.address()!.port}, '127.0.0.1', () => {
             const t0 = performance.now();
             for (let i = 0; i < ${N}; i++) { while (performance.now() - t0 < i * 0.25); d.send('coalesce:1|c'); }
             setTimeout(() => d.close(), 100);
           });`,
        ],
        { stdio: 'ignore' },
      );
      await new Promise((res) => sender.once('exit', res));
      await waitFor('every line', () => udp.stats.lines === N);
      const woke = switches() - before;
      await stop(r);
      return woke;
    };
    const coalesced = await wakes(1000);
    const each = await wakes(0);
    // A nap of 1 ms after every turn: ~4 datagrams a wake. Without it, about one a datagram.
    expect(coalesced).toBeLessThan(N / 2);
    expect(each).toBeGreaterThan(coalesced);
  });

  it('is left at normal priority when told', async () => {
    const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false, STATSD_UDP_READER_PRIORITY: 'normal' });
    expect(r.statsd.udp!.stats.readerPriority).toBe('normal');
    expect(await metricValue(r.registry, 'osprey_statsd_udp_reader_priority', { priority: 'normal' })).toBe(1);
    expect(threads().filter((t) => t.policy === 1 || t.nice < 0)).toEqual([]);
  });
});
