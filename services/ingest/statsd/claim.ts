/**
 * Sharing one statsd address between the ingest replicas of a host.
 *
 * Every replica is configured alike (npm start and the deploy agent give all of them the
 * same environment), so all of them want UDP 8125, TCP 8125, TCP 8126 and the Unix socket.
 * Node 20 has no SO_REUSEPORT (dgram's and net's `reusePort` arrived in Node 22.12/23.1;
 * on Node 20 a second bind is EADDRINUSE), so the kernel cannot spread one port over
 * processes. Instead no replica is special: whoever binds an address first serves it, the
 * others stand by and try again every STATSD_BIND_RETRY_MS, so when the holder stops or dies
 * another takes over within that time.
 *
 * - UDP binds with SO_REUSEADDR: on Linux every replica binds at once and the kernel delivers
 *   each datagram to the most recent binder, so a replica that stops hands UDP to the next
 *   one without a gap (on systems where that is refused, the retry loop applies).
 * - TCP is the retry loop.
 * - The Unix socket is a path: a replica probes it (a live holder answers a connect), binds a
 *   private name beside it and renames that over the path (atomic; a stale file left by a
 *   crash is replaced, a regular file is never touched). Two replicas racing both rename and
 *   the last one wins; the other sees that the path is no longer its socket and stands by.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from '../../kit/log.js';

export interface ClaimOptions {
  /** For the log: "statsd udp 0.0.0.0:8125". */
  what: string;
  log: Logger;
  retryMs: number;
  /** true: bound; false: another process holds it; throws: cannot ever work (a bad address). */
  tryBind(): Promise<boolean>;
  /** While bound, checked every retryMs: false means the address was taken over. */
  stillHeld?(): boolean;
  /** Called after stillHeld() said false: let go of the server, keep live connections. */
  lost?(): void;
  onChange?(bound: boolean): void;
}

/** Holds an address bound, or stands by for it. */
export class Claim {
  bound = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private standingBy = false;

  constructor(private readonly o: ClaimOptions) {}

  /** First attempt; errors other than "in use" reject (a service must not start on a bad address). */
  async start(): Promise<void> {
    if (await this.o.tryBind()) this.held();
    else this.standBy();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private held(): void {
    this.bound = true;
    this.o.onChange?.(true);
    if (this.standingBy) this.o.log.info(`${this.o.what}: taken over, now serving`);
    this.standingBy = false;
    if (this.o.stillHeld) this.arm(() => this.check());
  }

  private check(): void {
    if (this.o.stillHeld!()) {
      this.arm(() => this.check());
      return;
    }
    this.o.log.warn(`${this.o.what}: another process took this address over`);
    this.bound = false;
    this.o.onChange?.(false);
    this.o.lost?.();
    this.standBy();
  }

  private standBy(): void {
    if (!this.standingBy) this.o.log.warn(`${this.o.what}: in use by another process (another replica?); standing by to take over`);
    this.standingBy = true;
    this.arm(() => {
      this.o.tryBind().then(
        (ok) => {
          if (this.stopped) return;
          if (ok) this.held();
          else this.standBy();
        },
        (err) => {
          this.o.log.error({ err }, `${this.o.what}: bind failed`);
          if (!this.stopped) this.standBy();
        },
      );
    });
  }

  private arm(fn: () => void): void {
    if (this.stopped) return;
    this.timer = setTimeout(fn, this.o.retryMs);
    this.timer.unref();
  }
}

/** Listens on `server`; false if the address is in use. */
export function listenOrInUse(server: net.Server, options: net.ListenOptions): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') resolve(false);
      else reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(true);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options);
  });
}

/** Whether something accepts connections on the Unix socket `path` now. */
export function unixSocketLive(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      s.destroy();
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') resolve(false);
      else reject(err);
    });
  });
}

/** The inode at `path` if it is a Unix socket, null if nothing is there; throws for anything else. */
export function socketInode(path: string): number | null {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  return st.ino;
}
