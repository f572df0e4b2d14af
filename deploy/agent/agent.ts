import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../services/kit/log.js';
import { RELEASE_NAME, verifyRelease } from '../release.js';
import { nodeArgsOf, parseRoles, portsOf, processCount, serviceDef, SERVICE_NAMES } from '../services.js';
import type { Backend, UnitSpec, UnitStatus } from './backend.js';
import { replicaHealthy } from './health.js';
import type { Tags, TagSource } from './tags.js';

export interface AgentDeps {
  home: string;
  tags: TagSource;
  backend: Backend;
  log: Logger;
  node: string;
  hosts: { bind: string; advertise: string; public: string };
  /** KEY=VALUE lines given to every service (DATABASE_URL, SERVICE_TOKEN ...). */
  envFile: string;
  /** Added to every port of the plan. */
  portOffset?: number;
  healthTimeoutMs: number;
  settleMs: number;
  drainMs: number;
  verify: boolean;
  /** Replaceable for tests of the agent's own logic; the default asks the replica. */
  healthy?: (service: string, host: string, ports: UnitSpec['ports']) => Promise<boolean>;
}

export interface ConvergeResult {
  ok: boolean;
  /** The release the host runs after this converge. */
  release?: string;
  /** Set when the host went back to its last good release because `rolledBackFrom` failed. */
  rolledBackFrom?: string;
  actions: string[];
  error?: string;
}

interface AgentState {
  /** The last release every replica on this host passed its health check on. */
  good?: string;
  failed: Record<string, string>;
  /** Releases whose files were checked against their manifest on this host. */
  verified: string[];
  /** Last tags read, used when the metadata service cannot be reached. */
  tags?: Tags;
}

class UnhealthyError extends Error {
  constructor(
    message: string,
    readonly actions: string[],
  ) {
    super(message);
  }
}

/**
 * Makes the host run what its tags name on the release `current` points to. Everything
 * that changes processes goes through one queue, so a timer tick and an operator's deploy
 * never interleave. Replicas are changed one at a time: start, pass the health check,
 * settle, then the next; a replica failing its check on a new release sends the whole
 * host back to the last release that was good.
 */
export class Agent {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly draining = new Set<string>();
  private busy = false;
  private queued = 0;
  private readonly healthy: NonNullable<AgentDeps['healthy']>;

  constructor(private readonly deps: AgentDeps) {
    this.healthy = deps.healthy ?? ((service, host, ports) => replicaHealthy(service, host, ports));
  }

  get releasesDir(): string {
    return path.join(this.deps.home, 'releases');
  }

  private get currentLink(): string {
    return path.join(this.deps.home, 'current');
  }

  private get stateFile(): string {
    return path.join(this.deps.home, 'state', 'agent.json');
  }

  async currentRelease(): Promise<string | undefined> {
    try {
      return path.basename(await fs.readlink(this.currentLink));
    } catch {
      return undefined;
    }
  }

  /** A new symlink renamed over the old one: readers see the old or the new, never neither. */
  private async switchCurrent(release: string): Promise<void> {
    const tmp = `${this.currentLink}.${randomBytes(4).toString('hex')}`;
    await fs.symlink(path.join('releases', release), tmp);
    await fs.rename(tmp, this.currentLink);
  }

  /** Runs `fn` after everything queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    this.queued++;
    const run = this.queue.then(async () => {
      this.busy = true;
      try {
        return await fn();
      } finally {
        this.busy = false;
        this.queued--;
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** Something is converging or waiting to: a timer tick can skip its turn. */
  get pending(): boolean {
    return this.queued > 0;
  }

  /** Timer and on-demand entry: make the host match its tags and `current`. */
  converge(): Promise<ConvergeResult> {
    return this.serial(() => this.convergeNow());
  }

  /** Switch `current` to `release` (already copied into releases/) and converge. */
  activate(release: string): Promise<ConvergeResult> {
    return this.serial(async () => {
      if (!RELEASE_NAME.test(release)) return { ok: false, actions: [], error: `"${release}" is not a release name` };
      const dir = path.join(this.releasesDir, release);
      try {
        await fs.access(path.join(dir, 'manifest.json'));
      } catch {
        return { ok: false, actions: [], error: `release ${release} is not on this host (${dir})` };
      }
      const state = await this.loadState();
      // Releases are immutable: one check per release and host is enough.
      if (this.deps.verify && !state.verified.includes(release)) {
        const problems = await verifyRelease(dir);
        if (problems.length > 0) return { ok: false, actions: [], error: `release ${release} does not match its manifest: ${problems.slice(0, 5).join(', ')}` };
        state.verified = [...state.verified.slice(-9), release];
        await this.saveState(state);
      }
      if ((await this.currentRelease()) !== release) {
        this.deps.log.info({ release }, 'switching current');
        await this.switchCurrent(release);
      }
      return this.convergeNow();
    });
  }

  private async convergeNow(): Promise<ConvergeResult> {
    const release = await this.currentRelease();
    if (!release) return { ok: true, actions: [], error: 'no release yet: nothing to run' };
    const state = await this.loadState();
    try {
      const actions = await this.apply(release, state);
      if (state.good !== release) {
        state.good = release;
        await this.saveState(state);
      }
      return { ok: true, release, actions };
    } catch (err) {
      if (!(err instanceof UnhealthyError)) throw err;
      const good = state.good;
      if (!good || good === release) {
        this.deps.log.error({ err: err.message, release }, 'converge failed; no other release to go back to');
        return { ok: false, release, actions: err.actions, error: err.message };
      }
      this.deps.log.error({ err: err.message, release, good }, 'release failed its health check: rolling the host back');
      state.failed[release] = err.message;
      await this.saveState(state);
      await this.switchCurrent(good);
      try {
        const back = await this.apply(good, state);
        return { ok: false, release: good, rolledBackFrom: release, actions: [...err.actions, ...back.map((a) => `rollback: ${a}`)], error: err.message };
      } catch (err2) {
        const msg = err2 instanceof Error ? err2.message : String(err2);
        return { ok: false, release: good, rolledBackFrom: release, actions: err.actions, error: `${err.message}; and the rollback failed: ${msg}` };
      }
    }
  }

  /** The units the tags ask for on `release`. */
  async desiredUnits(release: string, state: AgentState): Promise<UnitSpec[]> {
    let tags: Tags;
    try {
      tags = await this.deps.tags.read();
      if (JSON.stringify(tags) !== JSON.stringify(state.tags)) {
        this.deps.log.info({ tags }, 'tags changed');
        state.tags = tags;
        await this.saveState(state);
      }
    } catch (err) {
      // A metadata hiccup must not stop every service: keep running what the last tags said.
      if (!state.tags) throw new Error(`cannot read tags (${this.deps.tags.description}): ${(err as Error).message}`);
      this.deps.log.warn({ err: (err as Error).message }, 'cannot read tags; using the last ones read');
      tags = state.tags;
    }
    const roles = parseRoles(tags);
    if (roles.unknown.length > 0) this.deps.log.warn({ unknown: roles.unknown }, 'tags name services this release does not have');
    const baseEnv = await readEnvFile(this.deps.envFile);
    const units: UnitSpec[] = [];
    for (const service of SERVICE_NAMES) {
      if (!roles.services.has(service)) continue;
      const replicas = roles.services.get(service);
      const def = serviceDef(service)!;
      for (let index = 0; index < processCount(def, replicas); index++) {
        const name = `${service}-${index}`;
        const ports = portsOf(def, index, this.deps.portOffset ?? 0);
        const cwd = path.join(this.releasesDir, release);
        const env: Record<string, string> = {
          ...def.env,
          ...baseEnv,
          RPC_HOST: this.deps.hosts.bind,
          RPC_ADVERTISE_HOST: this.deps.hosts.advertise,
          RPC_PORT: String(ports.rpc),
          OPS_PORT: String(ports.ops),
          OSPREY_RELEASE: release,
          OSPREY_UNIT: name,
          // Ingest's write-ahead log lives outside the release, per replica index, so a
          // replica restarted on a new release replays what its predecessor accepted.
          REPLICA_INDEX: String(index),
          WAL_ROOT: path.join(this.deps.home, 'data', 'wal'),
        };
        if (ports.public) Object.assign(env, { HOST: this.deps.hosts.public, PORT: String(ports.public) });
        if (def.workersVar && replicas !== undefined) env[def.workersVar] = String(replicas);
        const entry = path.join(cwd, 'dist', def.entry);
        const nodeArgs = nodeArgsOf(service);
        const hash = createHash('sha256')
          // nodeArgs only when there are any: units of services without flags keep the hash they had.
          .update(JSON.stringify({ entry, ...(nodeArgs.length > 0 ? { nodeArgs } : {}), cwd, env: Object.entries(env).sort(([a], [b]) => (a < b ? -1 : 1)) }))
          .digest('hex')
          .slice(0, 16);
        units.push({ name, service, index, release, cwd, entry, nodeArgs, env, ports, hash });
      }
    }
    return units;
  }

  private async apply(release: string, state: AgentState): Promise<string[]> {
    const desired = await this.desiredUnits(release, state);
    const running = new Map((await this.deps.backend.list()).map((u) => [u.spec.name, u]));
    const actions: string[] = [];
    const fail = (msg: string) => new UnhealthyError(msg, actions);

    // New replicas first, so a role moving between services never leaves a gap here.
    for (const spec of desired) {
      if (running.has(spec.name)) continue;
      this.deps.log.info({ unit: spec.name, release }, 'starting');
      await this.deps.backend.start(spec);
      actions.push(`start ${spec.name} on ${release}`);
      const problem = await this.waitHealthy(spec);
      if (problem) throw fail(problem);
    }
    // Then replace what runs another release or configuration, one replica at a time.
    for (const spec of desired) {
      const now = running.get(spec.name);
      if (!now || now.spec.hash === spec.hash) continue;
      this.deps.log.info({ unit: spec.name, from: now.spec.release, to: release }, 'restarting');
      await this.stopUnit(now);
      await this.deps.backend.start(spec);
      actions.push(now.spec.release === release ? `restart ${spec.name} (configuration)` : `restart ${spec.name} ${now.spec.release} -> ${release}`);
      const problem = await this.waitHealthy(spec);
      if (problem) throw fail(problem);
    }
    // Last, stop what the tags no longer name.
    const wanted = new Set(desired.map((s) => s.name));
    for (const [name, unit] of running) {
      if (wanted.has(name)) continue;
      this.deps.log.info({ unit: name }, 'stopping: no longer in the tags');
      await this.stopUnit(unit);
      actions.push(`stop ${name}`);
    }
    if (actions.length > 0) this.deps.log.info({ release, actions }, 'converged');
    return actions;
  }

  private async stopUnit(unit: UnitStatus): Promise<void> {
    const def = serviceDef(unit.spec.service);
    if (def?.kind === 'http' && unit.state === 'running' && this.deps.drainMs > 0) {
      this.draining.add(unit.spec.name);
      await sleep(this.deps.drainMs);
    }
    try {
      await this.deps.backend.stop(unit.spec.name);
    } finally {
      this.draining.delete(unit.spec.name);
    }
  }

  /** undefined when healthy; else why not. */
  private async waitHealthy(spec: UnitSpec): Promise<string | undefined> {
    const deadline = Date.now() + this.deps.healthTimeoutMs;
    for (;;) {
      if (await this.healthy(spec.service, this.deps.hosts.advertise, spec.ports)) {
        if (this.deps.settleMs > 0) await sleep(this.deps.settleMs);
        return undefined;
      }
      const status = (await this.deps.backend.list()).find((u) => u.spec.name === spec.name);
      if (status && status.exitsSinceStart > 0) return `${spec.name} on ${spec.release} exited while starting (see its log)`;
      if (Date.now() > deadline) return `${spec.name} on ${spec.release} did not pass its health check in ${this.deps.healthTimeoutMs} ms`;
      await sleep(200);
    }
  }

  /** Run the release's migrations against DATABASE_URL from the env file. */
  async migrate(release: string): Promise<{ ok: boolean; output: string }> {
    if (!RELEASE_NAME.test(release)) return { ok: false, output: `"${release}" is not a release name` };
    const dir = path.join(this.releasesDir, release);
    const env = await readEnvFile(this.deps.envFile);
    return new Promise((resolve) => {
      execFile(this.deps.node, [path.join(dir, 'dist/deploy/migrate.js')], { cwd: dir, env, timeout: 300_000 }, (err, stdout, stderr) => {
        resolve({ ok: !err, output: `${stdout}${stderr}`.trim() });
      });
    });
  }

  /** Whether `service` on this host should get new connections (for a load balancer). */
  async inService(service: string): Promise<boolean> {
    const units = (await this.deps.backend.list()).filter((u) => u.spec.service === service);
    if (units.length === 0 || units.some((u) => this.draining.has(u.spec.name))) return false;
    const checks = await Promise.all(units.map((u) => (u.state === 'running' ? this.healthy(service, this.deps.hosts.advertise, u.spec.ports) : false)));
    return checks.some(Boolean);
  }

  async status() {
    const state = await this.loadState();
    const units = await this.deps.backend.list();
    const health = await Promise.all(units.map((u) => (u.state === 'running' ? this.healthy(u.spec.service, this.deps.hosts.advertise, u.spec.ports) : false)));
    return {
      release: await this.currentRelease(),
      good: state.good,
      failed: state.failed,
      // Live, so a deploy plans with what the tags say now (even before a first release).
      tags: await this.deps.tags.read().catch(() => state.tags ?? {}),
      backend: this.deps.backend.kind,
      advertise: this.deps.hosts.advertise,
      converging: this.busy,
      units: units.map((u, i) => ({
        name: u.spec.name,
        service: u.spec.service,
        release: u.spec.release,
        state: this.draining.has(u.spec.name) ? 'draining' : u.state,
        pid: u.pid,
        restarts: u.restarts,
        healthy: health[i],
        ports: u.spec.ports,
      })),
    };
  }

  private async loadState(): Promise<AgentState> {
    try {
      const s = JSON.parse(await fs.readFile(this.stateFile, 'utf8')) as Partial<AgentState>;
      return { ...s, failed: s.failed ?? {}, verified: s.verified ?? [] };
    } catch {
      return { failed: {}, verified: [] };
    }
  }

  private async saveState(state: AgentState): Promise<void> {
    await fs.mkdir(path.dirname(this.stateFile), { recursive: true });
    const tmp = `${this.stateFile}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(state, null, 2) + '\n');
    await fs.rename(tmp, this.stateFile);
  }
}

export type AgentStatus = Awaited<ReturnType<Agent['status']>>;

/** KEY=VALUE lines; `#` comments; values may be quoted. A missing file is no variables. */
export async function readEnvFile(file: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return {};
    throw err;
  }
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    let v = m[2];
    if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) {
      v = v.startsWith('"') ? (JSON.parse(v) as string) : v.slice(1, -1);
    }
    env[m[1]] = v;
  }
  return env;
}
