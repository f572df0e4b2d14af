/**
 * HTTP/1.1 load generator for `npm run bench:http`, run as its own process pinned to the
 * core the servers do not use. Raw keep-alive sockets and a minimal response parser keep
 * it cheaper per request than any server it drives, so it is not the bottleneck.
 *
 *   closed: `connections` sockets, each sends its next request when the last is answered
 *           (saturation throughput, like wrk).
 *   open:   requests are due at a fixed rate whatever the server does; each latency is
 *           measured from the moment the request was due, so a stalled server shows up
 *           in the percentiles (no coordinated omission). Sockets are added when all are
 *           busy; requests wait for a socket when `maxConnections` is reached.
 *
 * Input: one JSON argument (LoadSpec). Output: one JSON line (LoadResult) on stdout.
 * After the duration no new request is sent and every one in flight is waited for, so
 * the 2xx count is exact.
 */
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { ownCpuMs } from './machine.js';

export interface LoadSpec {
  mode: 'closed' | 'open';
  host: string;
  port: number;
  /** The request, whole: request line, headers and body. */
  request: string;
  durationMs: number;
  /** closed: sockets; open: sockets opened up front. */
  connections: number;
  /** open: requests per second. */
  rate?: number;
  maxConnections?: number;
  /** open: write each answered request's "due ms, latency µs" (ms since the start) to this file, one line each. */
  traceFile?: string;
}

export interface LoadResult {
  sent: number;
  ok: number;
  statuses: Record<string, number>;
  errors: number;
  elapsedMs: number;
  /** Latencies in microseconds: p50, p90, p99, max. */
  latencyUs: { p50: number; p90: number; p99: number; max: number };
  /**
   * Open loop: how late the generator itself wrote each request after it was due, in
   * microseconds. Part of every latency above; when its tail nears theirs, the tail is the
   * machine's (the generator's core stalled), not the server's.
   */
  lateUs?: { p50: number; p90: number; p99: number; max: number };
  /** Open loop: the share of answered requests that took over 2 ms and over 5 ms (the targets' bounds). */
  over?: { ms2: number; ms5: number };
  maxConnectionsUsed: number;
  /** The generator's own CPU time, start-up included, in ms. */
  cpuMs?: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

class Conn {
  private buf: Buffer | undefined;
  busy = false;
  onResponse: (status: number) => void = () => {};
  onClose: () => void = () => {};

  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.read(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.onClose());
  }

  private read(chunk: Buffer): void {
    let b = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const end = b.indexOf(CRLFCRLF);
      if (end < 0) break;
      const head = b.toString('latin1', 0, end);
      const status = Number(head.slice(9, 12));
      let bodyEnd = end + 4;
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      if (cl) bodyEnd += Number(cl[1]);
      else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
        const last = b.indexOf('\r\n0\r\n\r\n', end + 2);
        if (last < 0) break;
        bodyEnd = last + 7;
      }
      if (b.length < bodyEnd) break;
      b = b.subarray(bodyEnd);
      this.busy = false;
      this.onResponse(status);
    }
    this.buf = b.length > 0 ? b : undefined;
  }
}

function connect(host: string, port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => {
      s.off('error', reject);
      resolve(new Conn(s));
    });
    s.once('error', reject);
  });
}

function percentiles(samples: Float64Array, n: number) {
  const a = samples.subarray(0, n).sort();
  const at = (q: number) => (n === 0 ? 0 : Math.round(a[Math.min(n - 1, Math.floor(q * n))]));
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: n === 0 ? 0 : Math.round(a[n - 1]) };
}

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const req = Buffer.from(spec.request);
  const statuses: Record<string, number> = {};
  let ok = 0;
  let sent = 0;
  let errors = 0;
  let done = 0;
  const lat = new Float64Array(spec.mode === 'open' ? Math.ceil(((spec.rate ?? 1000) * spec.durationMs) / 1000) + 16 : 2_000_000);
  let nLat = 0;
  const count = (status: number) => {
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status >= 200 && status < 300) ok++;
    done++;
  };
  const now = () => performance.now();
  const conns: Conn[] = [];
  for (let i = 0; i < spec.connections; i++) conns.push(await connect(spec.host, spec.port));
  const start = now();
  const stopAt = start + spec.durationMs;

  if (spec.mode === 'closed') {
    await new Promise<void>((resolve) => {
      let open = conns.length;
      for (const c of conns) {
        let sentAt = 0;
        const fire = () => {
          if (now() >= stopAt) {
            c.socket.end();
            if (--open === 0) resolve();
            return;
          }
          sentAt = now();
          sent++;
          c.busy = true;
          c.socket.write(req);
        };
        c.onResponse = (status) => {
          if (nLat < lat.length) lat[nLat++] = (now() - sentAt) * 1000;
          count(status);
          fire();
        };
        c.onClose = () => {
          if (c.busy) {
            errors++;
            c.busy = false;
            if (--open === 0) resolve();
          }
        };
        fire();
      }
    });
    return { sent, ok, statuses, errors, elapsedMs: now() - start, latencyUs: percentiles(lat, nLat), maxConnectionsUsed: conns.length };
  }

  // Open loop.
  const rate = spec.rate ?? 1000;
  const maxConns = spec.maxConnections ?? 512;
  const total = Math.floor((rate * spec.durationMs) / 1000);
  const idle: Conn[] = [...conns];
  const waiting: number[] = []; // due times of requests with no socket yet
  let opening = 0;
  const dueTimes = new Map<Conn, number>();
  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => (finish = r));

  const late = new Float64Array(lat.length);
  const traced: string[] = [];
  let nLate = 0;
  const dispatch = (c: Conn, due: number) => {
    if (nLate < late.length) late[nLate++] = (now() - due) * 1000;
    dueTimes.set(c, due);
    c.busy = true;
    sent++;
    c.socket.write(req);
  };
  const setUp = (c: Conn) => {
    c.onResponse = (status) => {
      const due = dueTimes.get(c)!;
      lat[nLat++] = (now() - due) * 1000;
      if (spec.traceFile) traced.push(`${(due - start).toFixed(3)} ${Math.round(lat[nLat - 1])}`);
      count(status);
      const next = waiting.shift();
      if (next !== undefined) dispatch(c, next);
      else idle.push(c);
      if (done + errors === total) finish();
    };
    c.onClose = () => {
      if (c.busy) {
        c.busy = false;
        errors++;
        if (done + errors === total) finish();
      }
      const i = idle.indexOf(c);
      if (i >= 0) idle.splice(i, 1);
      conns.splice(conns.indexOf(c), 1);
    };
  };
  for (const c of conns) setUp(c);

  let i = 0;
  const tick = () => {
    const t = now();
    while (i < total && start + (i * 1000) / rate <= t) {
      const due = start + (i * 1000) / rate;
      i++;
      const c = idle.pop();
      if (c) dispatch(c, due);
      else {
        waiting.push(due);
        if (conns.length + opening < maxConns) {
          opening++;
          connect(spec.host, spec.port).then(
            (nc) => {
              opening--;
              conns.push(nc);
              setUp(nc);
              const next = waiting.shift();
              if (next !== undefined) dispatch(nc, next);
              else idle.push(nc);
            },
            () => {
              opening--;
            },
          );
        }
      }
    }
    // Spin (the generator has its own core): a timer would add up to a millisecond of
    // lateness that is the generator's, not the server's.
    if (i < total) setImmediate(tick);
  };
  setImmediate(tick);
  if (total > 0) await finished;
  const elapsedMs = now() - start;
  const used = conns.length;
  for (const c of conns) c.socket.end();
  if (spec.traceFile) writeFileSync(spec.traceFile, traced.join('\n') + '\n');
  let over2 = 0;
  let over5 = 0;
  for (let k = 0; k < nLat; k++) {
    if (lat[k] > 2000) over2++;
    if (lat[k] > 5000) over5++;
  }
  const over = { ms2: over2 / Math.max(1, nLat), ms5: over5 / Math.max(1, nLat) };
  return { sent, ok, statuses, errors, elapsedMs, latencyUs: percentiles(lat, nLat), lateUs: percentiles(late, nLate), over, maxConnectionsUsed: used };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const spec = JSON.parse(process.argv[2]) as LoadSpec;
  runLoad(spec).then(
    (r) => {
      process.stdout.write(JSON.stringify({ ...r, cpuMs: ownCpuMs() }) + '\n');
      process.exit(0);
    },
    (err) => {
      process.stderr.write(String(err?.stack ?? err) + '\n');
      process.exit(1);
    },
  );
}
