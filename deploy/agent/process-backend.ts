import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../services/kit/log.js';
import type { Backend, UnitSpec, UnitStatus } from './backend.js';

export interface ProcessBackendOptions {
  node: string;
  logDir: string;
  stopTimeoutMs: number;
  log: Logger;
  /** First delay before starting a crashed process again; doubles per crash up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A process that ran this long before dying starts again after backoffMs, not longer. */
  resetAfterMs?: number;
}

interface Supervised {
  spec: UnitSpec;
  child?: ChildProcess;
  state: 'running' | 'backoff' | 'stopping';
  restarts: number;
  exitsSinceStart: number;
  backoffMs: number;
  startedAt: number;
  timer?: NodeJS.Timeout;
  exited?: Promise<void>;
}

/**
 * Supervises services as child processes where there is no systemd: each in its own
 * process group (so a stop reaches node:cluster workers too), output appended to
 * <logDir>/<unit>.log, restarted after a crash with exponential backoff. When the agent
 * exits, it stops its children: nothing would supervise them otherwise.
 */
export class ProcessBackend implements Backend {
  readonly kind = 'process' as const;
  private readonly units = new Map<string, Supervised>();

  constructor(private readonly opts: ProcessBackendOptions) {
    fs.mkdirSync(opts.logDir, { recursive: true });
  }

  async start(spec: UnitSpec): Promise<void> {
    if (this.units.has(spec.name)) await this.stop(spec.name);
    const unit: Supervised = { spec, state: 'running', restarts: 0, exitsSinceStart: 0, backoffMs: this.opts.backoffMs ?? 250, startedAt: 0 };
    this.units.set(spec.name, unit);
    this.launch(unit);
  }

  private launch(unit: Supervised): void {
    const { spec } = unit;
    const out = fs.openSync(path.join(this.opts.logDir, `${spec.name}.log`), 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.opts.node, [...(spec.nodeArgs ?? []), spec.entry], { cwd: spec.cwd, env: spec.env, detached: true, stdio: ['ignore', out, out] });
    } finally {
      fs.closeSync(out);
    }
    unit.child = child;
    unit.state = 'running';
    unit.startedAt = Date.now();
    unit.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('error', (err) => this.opts.log.error({ err, unit: spec.name }, 'could not start'));
    child.once('exit', (code, signal) => {
      if (unit.child !== child) return;
      unit.child = undefined;
      if (unit.state === 'stopping' || this.units.get(spec.name) !== unit) return;
      unit.exitsSinceStart++;
      const ranMs = Date.now() - unit.startedAt;
      if (ranMs >= (this.opts.resetAfterMs ?? 10_000)) unit.backoffMs = this.opts.backoffMs ?? 250;
      this.opts.log.warn({ unit: spec.name, release: spec.release, code, signal, ranMs, backoffMs: unit.backoffMs }, 'process died; starting it again after backoff');
      unit.state = 'backoff';
      unit.timer = setTimeout(() => {
        unit.timer = undefined;
        if (this.units.get(spec.name) !== unit || unit.state !== 'backoff') return;
        unit.restarts++;
        this.launch(unit);
      }, unit.backoffMs);
      unit.backoffMs = Math.min(unit.backoffMs * 2, this.opts.maxBackoffMs ?? 10_000);
    });
  }

  async stop(name: string): Promise<void> {
    const unit = this.units.get(name);
    if (!unit) return;
    unit.state = 'stopping';
    if (unit.timer) clearTimeout(unit.timer);
    const child = unit.child;
    if (child?.pid && child.exitCode === null && child.signalCode === null) {
      // The main process only: a cluster primary stops its own workers gracefully.
      child.kill('SIGTERM');
      const killer = setTimeout(() => {
        this.opts.log.warn({ unit: name }, 'graceful stop timed out; killing the process group');
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, this.opts.stopTimeoutMs);
      await unit.exited;
      clearTimeout(killer);
    }
    // Orphans of a primary that died (workers) go with the group.
    if (child?.pid) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // no group left: the normal case
      }
    }
    if (this.units.get(name) === unit) this.units.delete(name);
  }

  async list(): Promise<UnitStatus[]> {
    return [...this.units.values()].map((u) => ({
      spec: u.spec,
      state: u.state === 'stopping' ? 'running' : u.state,
      pid: u.child?.pid,
      restarts: u.restarts,
      exitsSinceStart: u.exitsSinceStart,
    }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.units.keys()].map((name) => this.stop(name)));
  }
}
