/**
 * The load generator of `npm run bench:ingest`, run as its own process (pinned to its own
 * core): statsd lines over UDP at a fixed rate, or over TCP as fast as the server takes them.
 *
 * Lines cycle through `stats` distinct stats, a quarter each timers, counters, gauges and
 * sets (`bench.t17:17|ms`, `bench.c18:1|c`, `bench.g19:19|g`, `bench.s20:u20|s`), packed
 * `linesPerPacket` to a datagram (or 64 KB writes on TCP). Every packet is built before the
 * clock starts, so sending is one syscall a packet. Prints a JSON LoadReport on stdout.
 *
 * argv[2]: JSON StatsdLoadSpec.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { ownCpuMs } from './machine.js';

export interface StatsdLoadSpec {
  mode: 'udp' | 'tcp';
  host: string;
  port: number;
  /** UDP: lines per datagram. */
  linesPerPacket: number;
  /** UDP: lines per second to send. */
  rate: number;
  durationMs: number;
  stats: number;
  /** TCP: connections. */
  connections?: number;
  /** Start the cycle at this stat (so runs do not all begin with the same stats). */
  offset?: number;
}

export interface StatsdLoadReport {
  lines: number;
  packets: number;
  elapsedMs: number;
  /** UDP: sends the kernel refused (EAGAIN and the like): not delivered, not counted in `lines`. */
  sendErrors: number;
  /**
   * UDP: how far behind its schedule the generator fell at worst, ms. An open-loop sender that
   * was held up (its core busy with something else) catches up in a burst well above the rate
   * asked for, which can overflow a receive buffer that the asked-for rate never would.
   */
  maxLateMs?: number;
  /** The generator's own CPU time, start-up included, in ms. */
  cpuMs?: number;
}

export function statsdLine(i: number): string {
  switch (i % 4) {
    case 0:
      return `bench.t${i}:${i % 1000}|ms`;
    case 1:
      return `bench.c${i}:1|c`;
    case 2:
      return `bench.g${i}:${i % 1000}|g`;
    default:
      return `bench.s${i}:u${i % 5000}|s`;
  }
}

function buildPackets(stats: number, perPacket: number): { packets: Buffer[]; lines: number[] } {
  const packets: Buffer[] = [];
  const lines: number[] = [];
  for (let i = 0; i < stats; i += perPacket) {
    const n = Math.min(perPacket, stats - i);
    const text: string[] = [];
    for (let j = 0; j < n; j++) text.push(statsdLine(i + j));
    packets.push(Buffer.from(text.join('\n')));
    lines.push(n);
  }
  return { packets, lines };
}

async function udp(spec: StatsdLoadSpec): Promise<StatsdLoadReport> {
  const { packets, lines } = buildPackets(spec.stats, spec.linesPerPacket);
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.connect(spec.port, spec.host, r));
  let k = Math.floor((spec.offset ?? 0) / spec.linesPerPacket) % packets.length;
  let sent = 0;
  let sentLines = 0;
  let errors = 0;
  let maxLate = 0;
  const packetsPerMs = spec.rate / spec.linesPerPacket / 1000;
  // No send callback: a datagram the kernel takes at once costs one syscall and nothing more.
  socket.on('error', () => errors++);
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - start;
      if (elapsed >= spec.durationMs) return resolve();
      // Catch up to the schedule, in bursts of at most 2 ms of traffic.
      let due = Math.floor(elapsed * packetsPerMs) - sent;
      if (due > maxLate) maxLate = due;
      const cap = Math.max(1, Math.ceil(packetsPerMs * 2));
      if (due > cap) due = cap;
      for (let i = 0; i < due; i++) {
        socket.send(packets[k]);
        sentLines += lines[k];
        if (++k === packets.length) k = 0;
      }
      sent += due;
      setImmediate(tick);
    };
    tick();
  });
  const elapsedMs = performance.now() - start;
  // Let queued sends (and their errors) go out before counting.
  await new Promise<void>((r) => setTimeout(r, 50));
  socket.close();
  return { lines: sentLines - errors * spec.linesPerPacket, packets: sent, elapsedMs, sendErrors: errors, maxLateMs: maxLate / packetsPerMs };
}

async function tcp(spec: StatsdLoadSpec): Promise<StatsdLoadReport> {
  // 64 KB chunks of whole lines.
  const all: string[] = [];
  for (let i = 0; i < spec.stats; i++) all.push(statsdLine(i));
  const chunks: Buffer[] = [];
  const chunkLines: number[] = [];
  let cur: string[] = [];
  let size = 0;
  for (const l of all) {
    cur.push(l);
    size += l.length + 1;
    if (size >= 64 * 1024) {
      chunks.push(Buffer.from(cur.join('\n') + '\n'));
      chunkLines.push(cur.length);
      cur = [];
      size = 0;
    }
  }
  if (cur.length) {
    chunks.push(Buffer.from(cur.join('\n') + '\n'));
    chunkLines.push(cur.length);
  }
  let lines = 0;
  let packets = 0;
  const start = performance.now();
  const until = start + spec.durationMs;
  await Promise.all(
    Array.from({ length: spec.connections ?? 4 }, (_, c) =>
      new Promise<void>((resolve, reject) => {
        const s = net.connect({ host: spec.host, port: spec.port, noDelay: true });
        let k = (c * 7) % chunks.length;
        const pump = () => {
          while (performance.now() < until) {
            const ok = s.write(chunks[k]);
            lines += chunkLines[k];
            packets++;
            if (++k === chunks.length) k = 0;
            if (!ok) return void s.once('drain', pump);
          }
          s.end();
        };
        s.once('connect', pump);
        s.once('close', () => resolve());
        s.once('error', reject);
        s.resume();
      }),
    ),
  );
  return { lines, packets, elapsedMs: performance.now() - start, sendErrors: 0 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const spec = JSON.parse(process.argv[2]) as StatsdLoadSpec;
  (spec.mode === 'udp' ? udp(spec) : tcp(spec)).then(
    (r) => {
      process.stdout.write(JSON.stringify({ ...r, cpuMs: ownCpuMs() }) + '\n');
      process.exit(0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
