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
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../kit/log.js';
import { Claim, listenOrInUse, socketInode, unixSocketLive } from './claim.js';
import { ListenerStats, type ListenerSink, type StatsdIntake } from './intake.js';
import { LineSplitter, StatsdParser } from './parse.js';

interface ListenerBase {
  intake: StatsdIntake;
  log: Logger;
  maxLineLength: number;
  retryMs: number;
  now: () => number;
}

/** A parser for lines that carry no token, and (STATSD_AUTH=token) one for lines that do. */
function parsersFor(o: ListenerBase): { plain: StatsdParser; tokened: StatsdParser | null } {
  return {
    plain: new StatsdParser({ maxLineLength: o.maxLineLength, tokenMode: false }),
    tokened: o.intake.tokenAuth ? new StatsdParser({ maxLineLength: o.maxLineLength, tokenMode: true }) : null,
  };
}

export class UdpListener {
  readonly stats = new ListenerStats('udp');
  private socket: dgram.Socket | null = null;
  private readonly claim: Claim;
  private readonly sink: ListenerSink;
  private readonly parser: StatsdParser;
  private readonly what: string;

  constructor(private readonly o: ListenerBase & { host: string; port: number; recvBufferSize: number }) {
    this.sink = o.intake.sink(this.stats);
    const p = parsersFor(o);
    this.parser = p.tokened ?? p.plain;
    this.what = `statsd udp ${o.host}:${o.port}`;
    this.claim = new Claim({ what: this.what, log: o.log, retryMs: o.retryMs, tryBind: () => this.bind(), onChange: (b) => (this.stats.bound = b) });
  }

  start(): Promise<void> {
    return this.claim.start();
  }

  /** The bound address, or null while standing by. */
  address(): net.AddressInfo | null {
    return this.socket ? (this.socket.address() as net.AddressInfo) : null;
  }

  private readonly onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    const st = this.stats;
    st.packets++;
    st.bytes += msg.length;
    const now = this.o.now();
    const sink = this.sink;
    sink.begin(now, null, rinfo);
    let lines = 0;
    try {
      lines = this.parser.parse(msg, 0, msg.length, sink);
    } catch (err) {
      failedRead(this.o.intake, 'udp', err);
    }
    st.lines += lines;
    this.o.intake.noteRead(now, sink.minute, lines);
  };

  private async bind(): Promise<boolean> {
    const { host, port, recvBufferSize } = this.o;
    const socket = dgram.createSocket({
      type: net.isIPv6(host) ? 'udp6' : 'udp4',
      // See claim.ts: replicas of one host all bind; the newest receives.
      reuseAddr: true,
      ...(recvBufferSize > 0 ? { recvBufferSize } : {}),
    });
    const ok = await new Promise<boolean>((resolve, reject) => {
      socket.once('error', (err: NodeJS.ErrnoException) => {
        socket.close();
        if (err.code === 'EADDRINUSE') resolve(false);
        else reject(err);
      });
      socket.bind(port, host, () => {
        socket.removeAllListeners('error');
        resolve(true);
      });
    });
    if (!ok) return false;
    socket.on('error', (err) => this.o.log.error({ err }, `${this.what}: socket error`));
    socket.on('message', this.onMessage);
    this.socket = socket;
    const actual = socket.getRecvBufferSize();
    // Linux reports twice what was set; less than asked means net.core.rmem_max capped it.
    if (recvBufferSize > 0 && actual < recvBufferSize) {
      this.o.log.warn({ asked: recvBufferSize, got: actual }, `${this.what}: receive buffer capped by the kernel (raise net.core.rmem_max)`);
    }
    this.o.log.info({ address: socket.address(), recvBuffer: actual }, `${this.what}: listening`);
    return true;
  }

  /** Stops reading: datagrams already read have been aggregated when this returns. */
  async stop(): Promise<void> {
    this.claim.stop();
    const s = this.socket;
    this.socket = null;
    this.stats.bound = false;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}

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
    const p = parsersFor(o);
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
