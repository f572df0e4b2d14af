import http from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpOk } from '../agent/health.js';

export interface LoadTarget {
  name: string;
  /** Base URL of the host's public service, e.g. http://127.0.0.11:8088. */
  url: string;
  /** Its load-balancer health URL (the agent's /lb/<service>): 503 while draining or down. */
  lb: string;
}

export interface LoadFailure {
  at: number;
  target: string;
  error: string;
}

export interface LoadStats {
  ok: number;
  failures: LoadFailure[];
  /** Requests moved to another host after a refused connection (nothing was sent). */
  refused: number;
  /**
   * Requests sent again to another host after their connection was reset before a whole
   * answer came back. Only traffic built with `retryResets` (idempotent reads) does this;
   * for the rest a reset is a failure.
   */
  resetRetried: number;
  byTarget: Record<string, number>;
}

/** One try of one request: what the caller may do next depends on which it was. */
export type Attempt =
  | { kind: 'ok' }
  /** ECONNREFUSED: the request never left; any request may go to the next host. */
  | { kind: 'refused' }
  /** The connection broke after the request was (maybe) sent: it may have been applied. */
  | { kind: 'reset'; error: string }
  | { kind: 'failed'; error: string };

export interface LoadOptions {
  /** Names the traffic in failures ("ez", "graph"). */
  name: string;
  targets: LoadTarget[];
  concurrency: number;
  /** Pause per worker between requests. */
  pauseMs: number;
  send(target: LoadTarget): Promise<Attempt>;
  /**
   * Send a request whose connection was reset to another host. Only for idempotent
   * requests: the first host may have run it, and running it twice must not matter.
   */
  retryResets: boolean;
}

/**
 * Sends requests the way a client behind a health-checked load balancer does:
 *  - the pool is every target, minus those whose health URL says out of service (polled
 *    every 100 ms, as an LB's target health), minus those held by killWhenIdle;
 *  - every request opens its own connection (no keep-alive), so a server that is going
 *    away can only refuse a connection, not drop a request written to an idle socket;
 *  - a refused connection (the request never left) goes to the next host; a reset goes to
 *    the next host only when `retryResets` (a GET). Nothing else is retried: a /ez reset or
 *    timeout after the request was sent may have been counted, and is a failure.
 */
export class LoadGenerator {
  readonly stats: LoadStats = { ok: 0, failures: [], refused: 0, resetRetried: 0, byTarget: {} };
  private running = false;
  private readonly inRotation = new Set<string>();
  private readonly held = new Set<string>();
  private loops: Promise<void>[] = [];
  private next = 0;
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly opts: LoadOptions) {
    for (const t of opts.targets) this.inRotation.add(t.name);
  }

  start(): void {
    this.running = true;
    this.loops.push(this.pollHealth());
    for (let i = 0; i < this.opts.concurrency; i++) this.loops.push(this.worker());
  }

  async stop(): Promise<LoadStats> {
    this.running = false;
    await Promise.all(this.loops);
    return this.stats;
  }

  /**
   * Kills `pid` (the process serving `target`) at a moment when no request to `target` is
   * open, and sends no new request there until the process and its children are gone.
   *
   * Why both halves: a request in flight to a SIGKILLed process is lost to its client
   * whatever the deploy tooling does (/ez is not idempotent, so it cannot be retried
   * safely), so the kill waits for a quiet moment; and between kill(2) and the process
   * actually dying its listening socket still accepts connections into the kernel's
   * backlog, which are then reset (the CI failure `ECONNRESET` on h3). So from the moment
   * it decides, the target is out of the pool; it comes back once kill(pid, 0) says ESRCH
   * (exited and reaped: its sockets are closed, so a new connection is refused, not reset),
   * and from then on the LB health URL decides, as for any host. That is what a balancer
   * with health checks does around a host it knows is going down. A node:cluster primary's
   * workers hold the listening socket too (they accept their own connections): they exit
   * when their primary's channel closes, a few milliseconds after it, and until then the
   * socket still takes connections that their exit resets; so the children, taken before
   * the kill, must be gone as well.
   */
  async killWhenIdle(target: string, pid: number, signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 30_000): Promise<void> {
    this.held.add(target);
    try {
      // Held: no new request to target starts (pick and the in-flight count share a tick).
      while (this.inFlight.get(target)) await sleep(2);
      const tree = [pid, ...descendantsOf(pid)];
      process.kill(pid, signal);
      const deadline = Date.now() + timeoutMs;
      for (const p of tree) {
        while (processExists(p)) {
          if (Date.now() > deadline) throw new Error(`process ${p} (${p === pid ? 'killed' : `a child of ${pid}`}) still exists ${timeoutMs} ms after ${signal}`);
          await sleep(5);
        }
      }
    } finally {
      this.held.delete(target);
    }
  }

  private async pollHealth(): Promise<void> {
    while (this.running) {
      await Promise.all(
        this.opts.targets.map(async (t) => {
          if (await httpOk(t.lb, 500)) this.inRotation.add(t.name);
          else this.inRotation.delete(t.name);
        }),
      );
      await sleep(100);
    }
  }

  private pick(skip: Set<string>): LoadTarget | undefined {
    const all = this.opts.targets;
    for (let i = 0; i < all.length; i++) {
      const t = all[this.next++ % all.length];
      if (this.inRotation.has(t.name) && !this.held.has(t.name) && !skip.has(t.name)) return t;
    }
    return undefined;
  }

  private async worker(): Promise<void> {
    while (this.running) {
      const tried = new Set<string>();
      for (let attempt = 0; ; attempt++) {
        const target = this.pick(tried);
        if (!target) {
          // Every host is out or refused: wait for the pool to change, as an LB queue would.
          if (attempt > 300) {
            this.stats.failures.push({ at: Date.now(), target: '(none)', error: `${this.opts.name}: no host took the request in 30 s` });
            break;
          }
          tried.clear();
          await sleep(100);
          continue;
        }
        this.inFlight.set(target.name, (this.inFlight.get(target.name) ?? 0) + 1);
        const r = await this.opts.send(target).finally(() => this.inFlight.set(target.name, this.inFlight.get(target.name)! - 1));
        if (r.kind === 'refused') {
          tried.add(target.name);
          this.stats.refused++;
          continue;
        }
        if (r.kind === 'reset' && this.opts.retryResets) {
          tried.add(target.name);
          this.stats.resetRetried++;
          continue;
        }
        if (r.kind === 'ok') {
          this.stats.ok++;
          this.stats.byTarget[target.name] = (this.stats.byTarget[target.name] ?? 0) + 1;
        } else {
          this.stats.failures.push({ at: Date.now(), target: target.name, error: `${this.opts.name}: ${r.error}` });
        }
        break;
      }
      await sleep(this.opts.pauseMs);
    }
  }
}

/** Every process below `pid` (from /proc: each process's parent is field 4 of its stat). */
function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue; // exited meanwhile
    }
    // The command name (field 2) is in parentheses and may hold spaces: fields after its ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** kill(pid, 0): true while the process exists (a zombie not yet reaped counts). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** StatHat /ez points (`count=1` each) to an api host: POST, never sent twice. */
export function ezTraffic(o: { targets: LoadTarget[]; ezkey: string; stat: string; concurrency: number; pauseMs: number }): LoadGenerator {
  const body = new URLSearchParams({ ezkey: o.ezkey, stat: o.stat, count: '1' }).toString();
  return new LoadGenerator({
    name: 'ez',
    targets: o.targets,
    concurrency: o.concurrency,
    pauseMs: o.pauseMs,
    retryResets: false,
    send: (t) => request(`${t.url}/ez`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) }, body }),
  });
}

/**
 * Graph reads through the web tier (`path`, e.g. /api/v1/stats/12/series?tf=1h, with a
 * bearer token), so every request also crosses web -> graphing. A read changes nothing, so
 * after a reset it goes to another web host, as a browser or an LB retries an idempotent
 * GET; a non-2xx answer, a timeout or an answer that fails `check` is a failure.
 */
export function graphTraffic(o: {
  targets: LoadTarget[];
  path: string;
  token: string;
  concurrency: number;
  pauseMs: number;
  /** Why a 200 answer is wrong, or undefined. */
  check: (body: unknown) => string | undefined;
}): LoadGenerator {
  return new LoadGenerator({
    name: 'graph',
    targets: o.targets,
    concurrency: o.concurrency,
    pauseMs: o.pauseMs,
    retryResets: true,
    send: async (t) => {
      const r = await request(`${t.url}${o.path}`, { method: 'GET', headers: { authorization: `Bearer ${o.token}` } }, true);
      if (r.kind !== 'ok') return r;
      let parsed: unknown;
      try {
        parsed = JSON.parse(r.body);
      } catch {
        return { kind: 'failed', error: `not JSON: ${r.body.slice(0, 200)}` };
      }
      const problem = o.check(parsed);
      return problem ? { kind: 'failed', error: problem } : { kind: 'ok' };
    },
  });
}

/** One request on its own connection, classified for the caller's retry rule. */
function request(url: string, o: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }, keepBody: true): Promise<Exclude<Attempt, { kind: 'ok' }> | { kind: 'ok'; body: string }>;
function request(url: string, o: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }): Promise<Attempt>;
function request(url: string, o: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }, keepBody = false): Promise<Attempt | { kind: 'ok'; body: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (a: Attempt | { kind: 'ok'; body: string }) => {
      if (!settled) {
        settled = true;
        resolve(a);
      }
    };
    const req = http.request(url, { method: o.method, agent: false, timeout: 15_000, headers: { connection: 'close', ...o.headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => {
        const status = res.statusCode ?? 0;
        const body = Buffer.concat(chunks).toString('utf8');
        if (status < 200 || status >= 300) done({ kind: 'failed', error: `HTTP ${status}: ${body.slice(0, 200)}` });
        else done(keepBody ? { kind: 'ok', body } : { kind: 'ok' });
      });
      res.once('error', (err: NodeJS.ErrnoException) => done({ kind: 'reset', error: `response: ${err.code ?? ''} ${err.message}` }));
      res.once('aborted', () => done({ kind: 'reset', error: 'response aborted' }));
    });
    req.once('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done({ kind: 'refused' });
      else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') done({ kind: 'reset', error: `${err.code} ${err.message}` });
      else done({ kind: 'failed', error: `${err.code ?? ''} ${err.message}` });
    });
    req.end(o.body);
  });
}
