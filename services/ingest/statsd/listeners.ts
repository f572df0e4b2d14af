/**
 * The statsd sockets: UDP datagrams, TCP and Unix stream connections.
 *
 * Each read is parsed where it arrives, synchronously, and its samples reach the aggregator
 * before the next read is taken: no promise and no queue per line, so a read costs what
 * parsing it costs and the socket is read again at once. Lookups of new stats and tokens run
 * beside it (see intake.ts) without holding reads back.
 *
 * Stream framing: lines end with `\n`; a line may be split across reads at any byte
 * (LineSplitter keeps the partial line). A TCP or Unix connection may open with
 * `AUTH <token>\n`; with STATSD_AUTH=token its lines then need no token of their own (without
 * auth the line is accepted and ignored). Otherwise, with STATSD_AUTH=token, every line
 * carries statsgod's `<token>.` prefix.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../kit/log.js';
import { Claim, listenOrInUse, socketInode, unixSocketLive } from './claim.js';
import { ListenerStats, type ListenerSink, type StatsdIntake } from './intake.js';
import { LineSplitter, StatsdParser } from './parse.js';
import { udpSocketDrops, udpSocketInode } from './udp-drops.js';
import { REALTIME_PRIORITY, setThreadPriority, type ReaderPriority } from './reader-priority.js';

/**
 * What the samples go through after parsing, when it can fall behind the sockets (the
 * write-ahead log): stream connections stop reading while it is backlogged, so a TCP or Unix
 * client that sends faster than the disk takes waits in its own socket buffer instead of
 * growing this process's memory. UDP cannot wait: its datagrams are taken regardless.
 */
export interface ReadBackpressure {
  readonly backlogged: boolean;
  onceRelieved(fn: () => void): void;
}

interface ListenerBase {
  intake: StatsdIntake;
  /** Shared by every listener of the replica (statsdParsers): one name table for all of them. */
  parsers: StatsdParsers;
  backpressure?: ReadBackpressure;
  log: Logger;
  maxLineLength: number;
  retryMs: number;
  now: () => number;
}

/** A parser for lines that carry no token, and (STATSD_AUTH=token) one for lines that do. */
export interface StatsdParsers {
  plain: StatsdParser;
  tokened: StatsdParser | null;
}

/**
 * The parsers of one replica's listeners. They all parse on this thread, one read at a time,
 * so they share the parsers and with them one table of the names seen (100,000 live stats
 * sent over UDP and TCP are interned once: a second table held 100,000 NameRefs, 3.8 MB, and
 * 6 MB of slots and key bytes in a heap snapshot, beside the names' strings).
 */
export function statsdParsers(maxLineLength: number, tokenAuth: boolean): StatsdParsers {
  return {
    plain: new StatsdParser({ maxLineLength, tokenMode: false }),
    tokened: tokenAuth ? new StatsdParser({ maxLineLength, tokenMode: true }) : null,
  };
}

/**
 * The UDP socket lives in a worker thread that only reads: it copies each datagram into a
 * ring buffer shared with this thread (a SharedArrayBuffer: u32 length, then the bytes),
 * which parses the datagrams where they lie. So when this thread is busy (a flush of many
 * stats holds it for tens of milliseconds), the socket is still drained and datagrams wait
 * in memory, not in the kernel's receive buffer (208 KB by default: a few thousand lines),
 * where they would be dropped. Nothing is allocated per datagram or per batch: the ring is
 * allocated once. When it is full the worker drops datagrams and counts them.
 *
 * Positions are byte offsets in [0, size); a record never wraps: when one does not fit
 * before the end, the worker writes a WRAP marker (or leaves fewer than 4 bytes) and starts
 * again at 0. The ring is empty when read === write and holds at most size - 1 bytes, so
 * full and empty differ. An empty ring whose writer has passed its first MiB also starts
 * again at 0 (the same marker), so the pages touched, and resident, are the first MiB and as
 * far beyond as datagrams ever queued up, not the whole ring (32 MiB by default).
 * Those pages stay resident after the burst that touched them (node cannot madvise them
 * away), so a ring that reached past RING_RELEASE_ABOVE and has since held less than
 * RING_REUSE for STATSD_UDP_QUEUE_RELEASE_MS is replaced: this thread hands the worker a
 * fresh ring (untouched pages cost nothing), the worker writes a SWAP marker where it stands
 * in the old one and goes on in the new one, and this thread follows when it reads the
 * marker. The old ring's memory goes back to the system once both threads' collectors drop it
 * (the worker collects at once where `gc` is exposed, as ingest's node flags do; this thread
 * at its next full collection). The header (positions, flags) is the first RING_HEADER_BYTES
 * of each ring's buffer, so the two rings' positions never mix.
 * Wake-ups: this thread, finding the ring empty after a turn that
 * parsed something, looks again a millisecond later (under load datagrams keep coming, and
 * a message per datagram would cost more than parsing it); finding it empty on such a look,
 * it sets IDLE (and looks once more after setting it). The worker, after publishing a
 * record, posts a message only if it finds IDLE set, clearing it. So a reader under load is
 * never messaged, an idle one once per burst, and no datagram waits for a wake-up that
 * does not come. The worker is plain JavaScript (eval) so it
 * runs the same from sources, tests and the release build.
 */
const RING_WRITE = 0;
const RING_READ = 1;
const RING_IDLE = 2;
const RING_DROPPED = 3;
/** Always 0: the worker's nap waits on it (Atomics.wait with a timeout). */
const RING_NAP = 4;
/** The furthest byte of the ring ever written: how much of it is resident. */
const RING_HIGH = 5;
const RING_WRAP = 0xffffffff;
/** Where the writer went on in a fresh ring: the reader follows it there. */
const RING_SWAP = 0xfffffffe;
/** The header's six int32s, before the ring's bytes in the same buffer. */
const RING_HEADER_BYTES = 24;
/** An empty ring whose writer is at least this far in starts again at 0 (a ring no larger never does). */
const RING_REUSE = 1 << 20;
/** A ring touched at least this far is replaced once it has been quiet a while (see above). */
const RING_RELEASE_ABOVE = 2 * RING_REUSE;
/** The same numbers, for the worker (its source is a string). */
const RING_LAYOUT = {
  WRITE: RING_WRITE,
  READ: RING_READ,
  IDLE: RING_IDLE,
  DROPPED: RING_DROPPED,
  NAP: RING_NAP,
  HIGH: RING_HIGH,
  WRAP: RING_WRAP,
  SWAP: RING_SWAP,
  HEADER_BYTES: RING_HEADER_BYTES,
  REUSE: RING_REUSE,
};

/** A ring and its header, in one SharedArrayBuffer. */
class Ring {
  readonly header: Int32Array;
  readonly bytes: Buffer;
  constructor(readonly buffer: SharedArrayBuffer) {
    this.header = new Int32Array(buffer, 0, RING_HEADER_BYTES / 4);
    this.bytes = Buffer.from(buffer, RING_HEADER_BYTES);
  }
  static allocate(size: number): Ring {
    return new Ring(new SharedArrayBuffer(RING_HEADER_BYTES + size));
  }
}

const UDP_WORKER = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const dgram = require('node:dgram');

const { WRITE, READ, IDLE, DROPPED, NAP, HIGH, WRAP, SWAP, HEADER_BYTES, REUSE } = workerData.layout;
// The ring comes in a message ({ t: 'ring' }), never through workerData, which would keep
// the first one alive as long as the thread.
let hdr = null;
let ring = null;
let size = 0;
let half = 0;
let w = 0;
let high = 0;
const adopt = (buffer) => {
  hdr = new Int32Array(buffer, 0, HEADER_BYTES / 4);
  ring = Buffer.from(buffer, HEADER_BYTES);
  size = ring.length;
  half = size >>> 1;
  w = Atomics.load(hdr, WRITE);
  high = Atomics.load(hdr, HIGH);
};
const coalesceMs = workerData.coalesceMs;
let socket = null;
// Coalescing: a datagram that came within coalesceMs of the last one timed (datagrams are
// timed only while no nap is queued) means a busy sender; after this turn of the loop the
// thread naps that long (a timed wait: as late as the system's timer wakes it), and the next turn finds several
// waiting in the kernel's buffer. Real-time, it would otherwise wake, preempting the parsing
// thread, for every datagram. libuv reads at most 32 datagrams a turn: a turn that read that
// many may have left more in the buffer, and naps not (a nap after every 32 would cap the rate).
const TURN_MAX = 32;
let lastAt = 0;
let napQueued = false;
let sinceNap = 0;
const nap = () => {
  napQueued = false;
  const n = sinceNap;
  sinceNap = 0;
  if (n < TURN_MAX) Atomics.wait(hdr, NAP, 0, coalesceMs);
};
// This thread's id, for its scheduling priority (reader-priority.ts): /proc/thread-self is "pid/task/tid".
let tid = 0;
try { tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop()) || 0; } catch {}
// Where a record of need bytes (its u32 length included) goes with the reader at r, or -1: no room.
const place = (need, r) => {
  let at = w;
  if (at === r && at >= REUSE) {
    // Empty, and past the ring's first MiB: start again at 0 (a WRAP marker where the reader
    // stands), so only as much of the ring is ever touched, and resident, as datagrams queue up.
    if (size - at >= 4) ring.writeUInt32LE(WRAP, at);
    at = 0;
  } else if (at >= r) {
    // Room before the end; with the reader at 0 the writer must not reach the end (w === r would read as empty).
    if (size - at - (r === 0 ? 1 : 0) < need) {
      // From 0 then, if it fits below the reader (keeping one byte free).
      if (need >= r) return -1;
      if (size - at >= 4) ring.writeUInt32LE(WRAP, at);
      at = 0;
    }
  } else if (r - at <= need) return -1;
  return at;
};
// Publishes a record written at \`at\`, need bytes long, and wakes the parsing thread if it sleeps.
const publish = (at, need) => {
  w = at + need;
  if (w > high) { high = w; Atomics.store(hdr, HIGH, high); }
  if (w === size) w = 0;
  Atomics.store(hdr, WRITE, w);
  if (Atomics.load(hdr, IDLE) === 1 && Atomics.exchange(hdr, IDLE, 0) === 1) parentPort.postMessage({ t: 'data' });
};
// Goes on in a fresh ring: a SWAP marker in this one tells the reader to follow. False if even the marker does not fit (the ring is full).
const swapTo = (buffer) => {
  const had = ring !== null;
  if (had) {
    const at = place(4, Atomics.load(hdr, READ));
    if (at < 0) return false;
    ring.writeUInt32LE(SWAP, at);
    publish(at, 4);
  }
  adopt(buffer);
  // Drop this thread's hold on the old ring now (a few ms for this small heap): its memory
  // goes back when both threads have. From a fresh stack: this frame's registers may still
  // hold the old ring, and a collection from here kept it alive.
  if (had && typeof gc === 'function') setImmediate(() => gc());
  return true;
};
const onMessage = (msg) => {
  const need = msg.length + 4;
  let r = Atomics.load(hdr, READ);
  if ((w >= r ? w - r : size - r + w) > half) {
    // More than half the ring waits: the parsing thread is behind. A millisecond's nap gives
    // it the core (this thread may be real-time) rather than reading what it cannot parse.
    Atomics.wait(hdr, NAP, 0, 1);
    r = Atomics.load(hdr, READ);
  }
  const at = place(need, r);
  if (at < 0) { Atomics.add(hdr, DROPPED, 1); return; }
  ring.writeUInt32LE(msg.length, at);
  msg.copy(ring, at + 4);
  publish(at, need);
  sinceNap++;
  if (coalesceMs > 0 && !napQueued) {
    const now = performance.now();
    if (now - lastAt < coalesceMs) { napQueued = true; setImmediate(nap); }
    lastAt = now;
  }
};
parentPort.on('message', (m) => {
  if (m.t === 'ring') {
    parentPort.postMessage({ t: 'ring', swapped: swapTo(m.buffer) });
  } else if (m.t === 'bind') {
    const s = dgram.createSocket({ type: m.type, reuseAddr: true, ...(m.recvBufferSize > 0 ? { recvBufferSize: m.recvBufferSize } : {}) });
    s.once('error', (err) => { s.close(); parentPort.postMessage({ t: err.code === 'EADDRINUSE' ? 'inuse' : 'error', code: err.code, message: err.message }); });
    s.bind(m.port, m.host, () => {
      s.removeAllListeners('error');
      s.on('error', (err) => parentPort.postMessage({ t: 'socket-error', code: err.code, message: err.message }));
      s.on('message', onMessage);
      socket = s;
      parentPort.postMessage({ t: 'bound', address: s.address(), recvBuffer: s.getRecvBufferSize(), tid });
    });
  } else if (m.t === 'close') {
    const done = () => parentPort.postMessage({ t: 'closed' });
    if (socket) { const s = socket; socket = null; s.close(done); } else done();
  }
});
`;

/** Bytes parsed per turn of the event loop before the rest waits for the next one. */
const UDP_SLICE_BYTES = 256 * 1024;
/** After a turn that found datagrams, the ring is looked at again this soon instead of waiting for a wake-up. */
const UDP_POLL_MS = 1;

export class UdpListener {
  readonly stats = new ListenerStats('udp');
  private worker: Worker | null = null;
  private bound: net.AddressInfo | null = null;
  /** The ring read now; its pages are touched only as far as datagrams ever queue up (past its first MiB). */
  private ring: Ring;
  /** A fresh ring handed to the worker, followed at its SWAP marker. */
  private next: Ring | null = null;
  /** Since when the ring has held less than RING_REUSE (null: it holds more now). */
  private quietSince: number | null = null;
  private releaseTimer: NodeJS.Timeout | null = null;
  private readonly drainLater = () => this.drain(false);
  private pollTimer: NodeJS.Timeout | null = null;
  private readonly poll = () => {
    this.pollTimer = null;
    this.drain(false);
  };
  /** The worker's answer to the command in flight. */
  private reply: ((m: WorkerReply) => void) | null = null;
  private readonly claim: Claim;
  private readonly sink: ListenerSink;
  private readonly parser: StatsdParser;
  private readonly what: string;

  /** The reader thread's priority has been set (once per thread). */
  private prioritized = false;
  /** The reader thread's id (0: unknown, or not started yet). */
  readerTid = 0;

  constructor(
    private readonly o: ListenerBase & { host: string; port: number; recvBufferSize: number; queueBytes: number; queueReleaseMs: number; coalesceUs: number; readerPriority: ReaderPriority },
  ) {
    this.ring = Ring.allocate(o.queueBytes);
    this.sink = o.intake.sink(this.stats);
    const p = o.parsers;
    this.parser = p.tokened ?? p.plain;
    this.what = `statsd udp ${o.host}:${o.port}`;
    this.claim = new Claim({ what: this.what, log: o.log, retryMs: o.retryMs, tryBind: () => this.bind(), onChange: (b) => (this.stats.bound = b) });
    Atomics.store(this.ring.header, RING_IDLE, 1);
    this.stats.queuedBytes = () => this.queuedBytes;
    this.stats.queueTouchedBytes = () => Atomics.load(this.ring.header, RING_HIGH);
    this.stats.kernelDrops = () => this.kernelDrops;
  }

  start(): Promise<void> {
    return this.claim.start();
  }

  /** The bound address, or null while standing by. */
  address(): net.AddressInfo | null {
    return this.bound;
  }

  /** Datagrams read by the worker but not parsed yet, in bytes (osprey_statsd_udp_queued_bytes). */
  get queuedBytes(): number {
    const h = this.ring.header;
    const w = Atomics.load(h, RING_WRITE);
    const r = Atomics.load(h, RING_READ);
    return w >= r ? w - r : this.ring.bytes.length - r + w;
  }

  /**
   * Every second (or STATSD_UDP_QUEUE_RELEASE_MS, if shorter): a ring touched past
   * RING_RELEASE_ABOVE that has held less than RING_REUSE for STATSD_UDP_QUEUE_RELEASE_MS is
   * replaced by a fresh one (see UDP_WORKER's comment).
   */
  private checkRelease(): void {
    const worker = this.worker;
    if (!worker || this.next || Atomics.load(this.ring.header, RING_HIGH) < RING_RELEASE_ABOVE) {
      this.quietSince = null;
      return;
    }
    const now = performance.now();
    if (this.queuedBytes >= RING_REUSE) this.quietSince = null;
    else if (this.quietSince === null) this.quietSince = now;
    else if (now - this.quietSince >= this.o.queueReleaseMs) {
      this.quietSince = null;
      const next = Ring.allocate(this.ring.bytes.length);
      this.next = next;
      this.ask(worker, { t: 'ring', buffer: next.buffer }).then(
        (m) => {
          // Not swapped (the ring filled up meanwhile): the next quiet spell tries again.
          if ((m.t !== 'ring' || !m.swapped) && this.next === next) this.next = null;
        },
        () => {},
      );
    }
  }

  /** Reads on in the ring the worker went on in (at its SWAP marker in this one). */
  private follow(): void {
    const next = this.next;
    if (!next) throw new Error('statsd udp: a SWAP marker with no ring to follow');
    this.stats.packetsDropped += Atomics.exchange(this.ring.header, RING_DROPPED, 0);
    this.ring = next;
    this.next = null;
    this.stats.queueReleases++;
  }

  /** The bound socket's inode (udp-drops.ts), and the kernel's drops of the sockets before it. */
  private inode: number | null = null;
  private earlierKernelDrops = 0;
  private lastKernelDrops = 0;

  /** Datagrams the kernel dropped for this listener's sockets (receive buffer full), osprey_statsd_udp_kernel_drops_total. */
  get kernelDrops(): number {
    const now = this.inode === null ? null : udpSocketDrops(this.inode);
    if (now !== null) this.lastKernelDrops = now;
    return this.earlierKernelDrops + this.lastKernelDrops;
  }

  /** Commands go one at a time: each waits for the answer to the one before. */
  private asking: Promise<unknown> = Promise.resolve();

  private ask(w: Worker, m: object): Promise<WorkerReply> {
    const answer = this.asking.then(
      () =>
        new Promise<WorkerReply>((resolve) => {
          this.reply = resolve;
          w.postMessage(m);
        }),
    );
    this.asking = answer.catch(() => {});
    return answer;
  }

  private onWorkerMessage(m: WorkerReply): void {
    if (m.t === 'data') {
      this.drain(false);
      return;
    }
    if (m.t === 'socket-error') {
      this.o.log.error({ code: m.code, message: m.message }, `${this.what}: socket error`);
      return;
    }
    const r = this.reply;
    this.reply = null;
    r?.(m);
  }

  /**
   * Parses the datagrams waiting in the ring, each where it lies: up to UDP_SLICE_BYTES, then
   * the rest on the next turn of the event loop (so timers, flushes and the other listeners
   * get their turn), or (`all`) until it is empty. Going idle, it sets RING_IDLE and looks
   * once more, so a datagram published meanwhile is never left waiting for a wake-up.
   */
  private drain(all: boolean): void {
    let h = this.ring.header;
    let ring = this.ring.bytes;
    let size = ring.length;
    const st = this.stats;
    const sink = this.sink;
    const parser = this.parser;
    const intake = this.o.intake;
    const dropped = Atomics.exchange(h, RING_DROPPED, 0);
    if (dropped > 0) {
      st.packetsDropped += dropped;
      intake.logOnce('udp', 'queue_full', () => ({ dropped }), `statsd datagrams dropped: the reader thread's queue (STATSD_UDP_QUEUE_BYTES, ${size} bytes) was full`);
    }
    const now = this.o.now();
    sink.begin(now, null, null);
    let r = Atomics.load(h, RING_READ);
    let budget = UDP_SLICE_BYTES;
    for (;;) {
      if (r === Atomics.load(h, RING_WRITE)) {
        Atomics.store(h, RING_READ, r);
        if (budget < UDP_SLICE_BYTES && !all) {
          // Datagrams came in this turn: more are likely. Look again in a millisecond
          // rather than sleeping: a wake-up message per datagram costs more than parsing it.
          if (this.pollTimer === null) {
            this.pollTimer = setTimeout(this.poll, UDP_POLL_MS);
            this.pollTimer.unref();
          }
          return;
        }
        Atomics.store(h, RING_IDLE, 1);
        if (r === Atomics.load(h, RING_WRITE)) return;
        // Published meanwhile: go on (the worker may have posted a wake-up too; it finds the ring empty).
        Atomics.store(h, RING_IDLE, 0);
        continue;
      }
      if (budget <= 0 && !all) {
        Atomics.store(h, RING_READ, r);
        setImmediate(this.drainLater);
        return;
      }
      if (size - r < 4) {
        r = 0;
        continue;
      }
      const len = ring.readUInt32LE(r);
      if (len === RING_WRAP) {
        r = 0;
        continue;
      }
      if (len === RING_SWAP) {
        this.follow();
        h = this.ring.header;
        ring = this.ring.bytes;
        size = ring.length;
        r = Atomics.load(h, RING_READ);
        continue;
      }
      const start = r + 4;
      const end = start + len;
      budget -= len + 4;
      st.packets++;
      st.bytes += len;
      let lines = 0;
      try {
        lines = parser.parse(ring, start, end, sink);
      } catch (err) {
        failedRead(intake, 'udp', err);
      }
      st.lines += lines;
      intake.noteRead(now, sink.minute, lines);
      r = end === size ? 0 : end;
    }
  }

  private async bind(): Promise<boolean> {
    const { host, port, recvBufferSize } = this.o;
    if (!this.worker) {
      // Its garbage is a Buffer per datagram that dies at once, so a 2 MB young generation
      // holds it (at 120,000 lines/s over 100,000 stats its heap stayed under 6.2 MB, --trace-gc).
      const w = new Worker(UDP_WORKER, {
        eval: true,
        workerData: { layout: RING_LAYOUT, coalesceMs: this.o.coalesceUs / 1000 },
        resourceLimits: { maxYoungGenerationSizeMb: 2 },
      });
      w.on('message', (m: WorkerReply) => this.onWorkerMessage(m));
      w.on('error', (err) => {
        this.o.log.error({ err }, `${this.what}: reader thread failed`);
        this.reply?.({ t: 'error', code: 'EWORKER', message: String(err) });
      });
      w.unref();
      this.worker = w;
      await this.ask(w, { t: 'ring', buffer: this.ring.buffer });
    }
    const m = await this.ask(this.worker, { t: 'bind', type: net.isIPv6(host) ? 'udp6' : 'udp4', host, port, recvBufferSize });
    if (m.t === 'inuse') return false;
    if (m.t !== 'bound') throw Object.assign(new Error(`${this.what}: ${m.t === 'error' ? m.message : m.t}`), { code: m.t === 'error' ? m.code : undefined });
    this.bound = m.address;
    this.inode = udpSocketInode(m.address.port);
    // Linux reports twice what was set; less than asked means net.core.rmem_max capped it.
    if (recvBufferSize > 0 && m.recvBuffer < recvBufferSize) {
      this.o.log.warn({ asked: recvBufferSize, got: m.recvBuffer }, `${this.what}: receive buffer capped by the kernel (raise net.core.rmem_max)`);
    }
    this.readerTid = m.tid;
    if (!this.prioritized) {
      this.prioritized = true;
      const p = await setThreadPriority(m.tid, this.o.readerPriority);
      this.stats.readerPriority = p.applied;
      if (p.applied !== this.o.readerPriority) {
        this.o.log.warn(
          { asked: this.o.readerPriority, applied: p.applied, refused: p.refused },
          `${this.what}: the reader thread runs at ${p.applied} priority, not ${this.o.readerPriority}, and may lose datagrams while this replica flushes (grant CAP_SYS_NICE or LimitRTPRIO=${REALTIME_PRIORITY}, or set STATSD_UDP_READER_PRIORITY=${p.applied})`,
        );
      }
    }
    this.o.log.info({ address: m.address, recvBuffer: m.recvBuffer, readerPriority: this.stats.readerPriority }, `${this.what}: listening`);
    const releaseMs = this.o.queueReleaseMs;
    if (releaseMs > 0 && this.releaseTimer === null) {
      this.releaseTimer = setInterval(() => this.checkRelease(), Math.min(1000, releaseMs));
      this.releaseTimer.unref();
    }
    return true;
  }

  /** Stops reading: every datagram the worker had read has been aggregated when this returns. */
  async stop(): Promise<void> {
    this.claim.stop();
    this.stats.bound = false;
    // A ring handed over before this is followed below (its marker precedes the close's answer).
    if (this.releaseTimer) clearInterval(this.releaseTimer);
    this.releaseTimer = null;
    this.quietSince = null;
    const w = this.worker;
    if (!w) return;
    this.earlierKernelDrops = this.kernelDrops;
    this.lastKernelDrops = 0;
    this.inode = null;
    await this.ask(w, { t: 'close' });
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    this.drain(true);
    this.bound = null;
    this.worker = null;
    this.prioritized = false;
    await w.terminate();
  }
}

type WorkerReply =
  | { t: 'data' }
  | { t: 'ring'; swapped: boolean }
  | { t: 'bound'; address: net.AddressInfo; recvBuffer: number; tid: number }
  | { t: 'inuse' }
  | { t: 'closed' }
  | { t: 'error'; code: string; message: string }
  | { t: 'socket-error'; code: string; message: string };

/**
 * A read whose processing threw (a bug, not bad input: bad lines are counted, not thrown).
 * Logged, and the listener goes on: one bad read must not take the replica down.
 */
function failedRead(intake: StatsdIntake, listener: string, err: unknown): void {
  intake.logOnce(listener, 'internal_error', () => ({ err }), 'statsd read failed');
}

type StreamAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string; mode?: number };

const AUTH = Buffer.from('AUTH ');

export class StreamListener {
  readonly stats: ListenerStats;
  readonly sink: ListenerSink;
  readonly plain: StatsdParser;
  readonly tokened: StatsdParser | null;
  private server: net.Server | null = null;
  private readonly conns = new Set<StreamConnection>();
  private readonly claim: Claim;
  private readonly what: string;
  /** Unix: the inode of our socket at the path, to know whether the path is still ours. */
  private inode: number | null = null;

  constructor(readonly o: ListenerBase & { address: StreamAddress }) {
    const a = o.address;
    this.stats = new ListenerStats(a.kind);
    this.sink = o.intake.sink(this.stats);
    const p = o.parsers;
    this.plain = p.plain;
    this.tokened = p.tokened;
    this.what = a.kind === 'tcp' ? `statsd tcp ${a.host}:${a.port}` : `statsd unix ${a.path}`;
    this.claim = new Claim({
      what: this.what,
      log: o.log,
      retryMs: o.retryMs,
      tryBind: () => (a.kind === 'tcp' ? this.bindTcp(a.host, a.port) : this.bindUnix(a.path, a.mode)),
      stillHeld: a.kind === 'unix' ? () => this.unixStillOurs(a.path) : undefined,
      lost: () => this.releaseServer(),
      onChange: (b) => (this.stats.bound = b),
    });
  }

  start(): Promise<void> {
    return this.claim.start();
  }

  /** TCP: the bound address; Unix: the path; null while standing by. */
  address(): net.AddressInfo | string | null {
    if (!this.server) return null;
    return this.o.address.kind === 'unix' ? path.resolve(this.o.address.path) : (this.server.address() as net.AddressInfo);
  }

  private newServer(): net.Server {
    return net.createServer((socket) => {
      const c = new StreamConnection(this, socket);
      this.conns.add(c);
      this.stats.connections++;
      socket.once('close', () => {
        this.conns.delete(c);
        this.stats.connections--;
      });
    });
  }

  private async bindTcp(host: string, port: number): Promise<boolean> {
    const server = this.newServer();
    if (!(await listenOrInUse(server, { host, port }))) return false;
    this.server = server;
    this.o.log.info({ address: server.address() }, `${this.what}: listening`);
    return true;
  }

  private async bindUnix(target: string, mode: number | undefined): Promise<boolean> {
    fs.mkdirSync(path.dirname(path.resolve(target)), { recursive: true });
    socketInode(target); // throws if a non-socket file is in the way
    if (await unixSocketLive(target)) return false;
    const own = `${target}.${process.pid}.${randomBytes(3).toString('hex')}`;
    const server = this.newServer();
    if (!(await listenOrInUse(server, { path: own }))) return false;
    try {
      if (mode !== undefined) fs.chmodSync(own, mode);
      fs.renameSync(own, target);
      this.inode = socketInode(target);
    } catch (err) {
      server.close();
      throw err;
    }
    this.server = server;
    this.o.log.info({ path: path.resolve(target) }, `${this.what}: listening`);
    return true;
  }

  private unixStillOurs(target: string): boolean {
    try {
      return this.inode !== null && socketInode(target) === this.inode;
    } catch {
      return false;
    }
  }

  /** Stops accepting; connections already open stay. */
  private releaseServer(): void {
    this.server?.close();
    this.server = null;
    this.inode = null;
  }

  /**
   * Stops accepting, then half-closes every connection: clients see the end, send what they
   * still have and close, and all of it is parsed. Connections still open after `graceMs`
   * are cut.
   */
  async stop(graceMs: number): Promise<void> {
    this.claim.stop();
    this.stats.bound = false;
    const a = this.o.address;
    if (a.kind === 'unix' && this.server && this.unixStillOurs(a.path)) {
      try {
        fs.unlinkSync(a.path);
      } catch {
        // gone already
      }
    }
    const server = this.server;
    this.releaseServer();
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    const open = [...this.conns];
    for (const c of open) c.socket.end();
    const allClosed = Promise.all(open.map((c) => (c.socket.closed ? Promise.resolve() : new Promise<void>((r) => c.socket.once('close', () => r())))));
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([allClosed.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
    clearTimeout(timer);
    if (late) {
      for (const c of this.conns) c.finishAndDestroy();
      this.o.log.warn({ connections: open.length }, `${this.what}: connections still open at shutdown were cut`);
    }
    await closed;
  }
}

/** One TCP or Unix connection: the optional AUTH line, then lines. */
class StreamConnection {
  private splitter: LineSplitter | null = null;
  private token: string | null = null;
  /** The opening bytes while it is not yet known whether they are an AUTH line. */
  private head: Buffer | null = null;
  private readonly peer: string;
  private finished = false;
  /** Reads paused while the backpressure holds. */
  private paused = false;
  private readonly resume = () => {
    this.paused = false;
    if (!this.socket.destroyed) this.socket.resume();
  };

  constructor(
    private readonly l: StreamListener,
    readonly socket: net.Socket,
  ) {
    this.peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix';
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.finish());
    socket.on('error', (err) => l.o.log.debug({ err, peer: this.peer }, 'statsd connection error'));
  }

  private onData(chunk: Buffer): void {
    const l = this.l;
    const st = l.stats;
    st.packets++;
    st.bytes += chunk.length;
    const now = l.o.now();
    const sink = l.sink;
    let data: Buffer | null = chunk;
    if (this.splitter === null) data = this.opening(chunk);
    sink.begin(now, this.token, this.peer);
    let lines = 0;
    try {
      if (data !== null) lines = this.splitter!.push(data, sink);
    } catch (err) {
      failedRead(l.o.intake, l.stats.listener, err);
    }
    st.lines += lines;
    l.o.intake.noteRead(now, sink.minute, lines);
    const bp = l.o.backpressure;
    if (bp !== undefined && !this.paused && bp.backlogged) {
      this.paused = true;
      st.pauses++;
      this.socket.pause();
      bp.onceRelieved(this.resume);
    }
  }

  /**
   * Decides from the first bytes whether the connection opens with `AUTH <token>`. Returns the
   * bytes left to parse as lines, or null while it cannot tell yet.
   */
  private opening(chunk: Buffer): Buffer | null {
    const head = this.head ? Buffer.concat([this.head, chunk]) : chunk;
    this.head = null;
    const n = Math.min(head.length, AUTH.length);
    for (let i = 0; i < n; i++) {
      if (head[i] !== AUTH[i]) {
        this.decide(false, null);
        return head;
      }
    }
    const nl = head.indexOf(10);
    if (nl < 0) {
      if (head.length > this.l.o.maxLineLength + 1) {
        // not an AUTH line we would take: let the splitter count it too long
        this.decide(false, null);
        return head;
      }
      this.head = head;
      return null;
    }
    if (nl < AUTH.length) {
      this.decide(false, null);
      return head;
    }
    let end = nl;
    if (head[end - 1] === 13) end--;
    this.decide(true, head.toString('utf8', AUTH.length, end).trim());
    return head.subarray(nl + 1);
  }

  private decide(auth: boolean, token: string | null): void {
    const l = this.l;
    if (auth) {
      // Without STATSD_AUTH=token the AUTH line is accepted and ignored.
      if (l.tokened) this.token = token;
      this.splitter = new LineSplitter(l.plain);
    } else {
      this.splitter = new LineSplitter(l.tokened ?? l.plain);
    }
  }

  /** The peer finished sending: parse a last line that had no newline. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const l = this.l;
    const now = l.o.now();
    const sink = l.sink;
    let lines = 0;
    if (this.splitter === null && this.head) {
      const head = this.head;
      this.head = null;
      if (head.length >= AUTH.length) return; // `AUTH <token>` and nothing after it
      this.decide(false, null);
      sink.begin(now, this.token, this.peer);
      lines += this.splitter!.push(head, sink);
    }
    if (this.splitter) {
      sink.begin(now, this.token, this.peer);
      lines += this.splitter.end(sink);
    }
    l.stats.lines += lines;
  }

  finishAndDestroy(): void {
    this.finish();
    this.socket.destroy();
  }
}
