import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { httpOk } from '../agent/health.js';

export interface LoadTarget {
  name: string;
  /** Base URL of the host's api, e.g. http://127.0.0.11:8088. */
  url: string;
  /** Its load-balancer health URL (the agent's /lb/api): 503 while draining or down. */
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
  retried: number;
  byTarget: Record<string, number>;
}

/**
 * Sends StatHat /ez points the way a client behind a health-checked load balancer does:
 *  - the pool is every host's api, minus those whose health URL says out of service
 *    (polled every 100 ms, as an LB's target health);
 *  - every request opens its own connection (no keep-alive), so a server that is going
 *    away can only refuse a connection, not drop a request written to an idle socket;
 *  - a refused connection (ECONNREFUSED: the request never left) goes to the next host.
 *    Nothing else is retried: a reset or timeout after the request was sent may have been
 *    counted, and is a failure.
 */
export class LoadGenerator {
  readonly stats: LoadStats = { ok: 0, failures: [], retried: 0, byTarget: {} };
  private running = false;
  private readonly inRotation = new Set<string>();
  private loops: Promise<void>[] = [];
  private next = 0;
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly opts: {
      targets: LoadTarget[];
      ezkey: string;
      stat: string;
      concurrency: number;
      /** Pause per worker between requests. */
      pauseMs: number;
    },
  ) {
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
   * Runs `fn` at a moment when no request to `target` is open (checked and run in one
   * tick, so none can start in between). A process killed at that moment fails nobody; a
   * request in flight to a process that is SIGKILLed is lost to its client whatever the
   * deploy tooling does (/ez is not idempotent, so it cannot be retried safely).
   */
  async whenIdle(target: string, fn: () => void): Promise<void> {
    for (;;) {
      if (!this.inFlight.get(target)) return fn();
      await new Promise((resolve) => setImmediate(resolve));
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
      if (this.inRotation.has(t.name) && !skip.has(t.name)) return t;
    }
    return undefined;
  }

  private async worker(): Promise<void> {
    const body = new URLSearchParams({ ezkey: this.opts.ezkey, stat: this.opts.stat, count: '1' }).toString();
    while (this.running) {
      const tried = new Set<string>();
      for (let attempt = 0; ; attempt++) {
        const target = this.pick(tried);
        if (!target) {
          // Every host is out or refused: wait for the pool to change, as an LB queue would.
          if (attempt > 300) {
            this.stats.failures.push({ at: Date.now(), target: '(none)', error: 'no api host took the request in 30 s' });
            break;
          }
          tried.clear();
          await sleep(100);
          continue;
        }
        this.inFlight.set(target.name, (this.inFlight.get(target.name) ?? 0) + 1);
        const r = await post(`${target.url}/ez`, body).finally(() => this.inFlight.set(target.name, this.inFlight.get(target.name)! - 1));
        if (r === 'refused') {
          tried.add(target.name);
          this.stats.retried++;
          continue;
        }
        if (r === 'ok') {
          this.stats.ok++;
          this.stats.byTarget[target.name] = (this.stats.byTarget[target.name] ?? 0) + 1;
        } else {
          this.stats.failures.push({ at: Date.now(), target: target.name, error: r });
        }
        break;
      }
      await sleep(this.opts.pauseMs);
    }
  }
}

/** 'ok' for a 2xx, 'refused' when the connection was refused, else what went wrong. */
function post(url: string, body: string): Promise<'ok' | 'refused' | string> {
  return new Promise((resolve) => {
    const req = http.request(
      url,
      { method: 'POST', agent: false, timeout: 15_000, headers: { connection: 'close', 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => {
          const status = res.statusCode ?? 0;
          resolve(status >= 200 && status < 300 ? 'ok' : `HTTP ${status}: ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`);
        });
        res.once('error', (err) => resolve(`response: ${err.message}`));
      },
    );
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : `${err.code ?? ''} ${err.message}`));
    req.end(body);
  });
}
