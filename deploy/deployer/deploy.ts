import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentStatus, ConvergeResult } from '../agent/agent.js';
import { readManifest, type Manifest } from '../release.js';
import { parseRoles, processCount, serviceDef, SERVICE_NAMES, type HostRoles } from '../services.js';
import { agentFor as defaultAgentFor, copyRelease, type HostAgent } from './hosts.js';
import type { Host } from './inventory.js';

export interface DeployOptions {
  releaseDir: string;
  /** Every host of the fleet (the plan counts replicas across all of them). */
  hosts: Host[];
  /** --hosts: only these (by name). */
  only?: string[];
  /** --role: only hosts whose tags name this role. */
  role?: string;
  /** --canary N: N hosts first, all healthy, then the rest. */
  canary?: number;
  dryRun?: boolean;
  /** Go ahead with an under-replicated plan, and past the last-healthy-replica guard. */
  force?: boolean;
  /** Run the release's migrations (on the first host) before any replica restarts. */
  migrate?: boolean;
  /** How long to wait for another replica to become healthy before touching a host. */
  guardWaitMs?: number;
  out?: (line: string) => void;
  agentFor?: (host: Host) => HostAgent;
}

export interface PlannedHost {
  host: Host;
  roles: HostRoles;
  /** What the host's agent reports it runs now (undefined: not reachable or nothing yet). */
  current?: string;
  /** Units that restart (all of the host's units when it changes release). */
  restarts: string[];
  changes: boolean;
}

export interface Plan {
  release: string;
  manifest: Manifest;
  targets: PlannedHost[];
  canary: PlannedHost[];
  rest: PlannedHost[];
  untouched: string[];
  /** Why the plan is refused without --force. */
  problems: string[];
}

export interface DeployResult {
  ok: boolean;
  /** 0 done; 2 bad arguments; 3 refused plan; 4 a host failed (and rolled back); 5 guard. */
  exitCode: number;
  plan?: Plan;
  results: Array<{ host: string; result: ConvergeResult }>;
  error?: string;
}

function unitNames(roles: HostRoles): string[] {
  const names: string[] = [];
  for (const service of SERVICE_NAMES) {
    if (!roles.services.has(service)) continue;
    const n = processCount(serviceDef(service)!, roles.services.get(service));
    for (let i = 0; i < n; i++) names.push(`${service}-${i}`);
  }
  return names;
}

export async function makePlan(opts: DeployOptions): Promise<Plan> {
  const manifest = await readManifest(opts.releaseDir);
  const release = path.basename(opts.releaseDir);
  if (manifest.timestamp !== release) throw new Error(`${opts.releaseDir}: manifest says release ${manifest.timestamp}`);
  const agentFor = opts.agentFor ?? defaultAgentFor;
  const statuses = await Promise.all(opts.hosts.map((h) => agentFor(h).status().catch(() => undefined)));
  const all = opts.hosts.map((host, i) => {
    const status = statuses[i];
    const roles = parseRoles(host.tags ?? status?.tags ?? {});
    const restarts = unitNames(roles);
    const changes = status?.release !== release || status.units.some((u) => !u.healthy || u.release !== release) || status.units.length !== restarts.length;
    return { host, roles, current: status?.release, restarts: changes ? restarts : [], changes };
  });

  if (opts.only?.length) {
    const unknown = opts.only.filter((n) => !opts.hosts.some((h) => h.name === n));
    if (unknown.length > 0) throw new Error(`--hosts names unknown hosts: ${unknown.join(', ')}`);
  }
  let targets = all.filter((p) => !opts.only?.length || opts.only.includes(p.host.name));
  if (opts.role) {
    const role = opts.role;
    targets = targets.filter((p) => p.roles.services.has(role) || p.roles.unknown.includes(role));
    if (targets.length === 0) throw new Error(`no targeted host has the role "${role}"`);
  }

  // A rolling restart of a service with one replica in the whole fleet is an outage.
  const problems: string[] = [];
  const affected = new Set(targets.filter((t) => t.changes).flatMap((t) => [...t.roles.services.keys()]));
  for (const service of affected) {
    const def = serviceDef(service)!;
    const on = all.filter((p) => p.roles.services.has(service));
    const processes = on.reduce((n, p) => n + processCount(def, p.roles.services.get(service)), 0);
    if (processes < 2) {
      problems.push(`${service} has ${processes} replica process${processes === 1 ? '' : 'es'} in the fleet (${on.map((p) => p.host.name).join(', ') || 'none'}): restarting it would leave none; give it a second replica or use --force`);
    }
  }

  const changing = targets.filter((t) => t.changes);
  const canary = changing.slice(0, Math.max(0, opts.canary ?? 0));
  const rest = targets.filter((t) => !canary.includes(t));
  return {
    release,
    manifest,
    targets,
    canary,
    rest,
    untouched: all.filter((p) => !targets.includes(p)).map((p) => p.host.name),
    problems,
  };
}

export function describePlan(plan: Plan): string[] {
  const m = plan.manifest;
  const lines = [`release ${plan.release} (commit ${m.commit.slice(0, 12)}${m.dirty ? ', built from a dirty tree' : ''})`];
  for (const t of [...plan.canary, ...plan.rest]) {
    const roles = [...t.roles.services].map(([s, n]) => (n === undefined ? s : `${s}=${n}`)).join(',') || '(no roles)';
    const tag = plan.canary.includes(t) ? ' [canary]' : '';
    const unknown = t.roles.unknown.length > 0 ? ` (roles this release does not have: ${t.roles.unknown.join(',')})` : '';
    lines.push(
      t.changes
        ? `  ${t.host.name} ${t.host.address} roles ${roles}${unknown}: ${t.current ?? '(none)'} -> ${plan.release}, restarts ${t.restarts.join(', ') || 'nothing'}${tag}`
        : `  ${t.host.name} ${t.host.address} roles ${roles}: on ${plan.release} and healthy already, nothing to do`,
    );
  }
  if (plan.untouched.length > 0) lines.push(`  not targeted: ${plan.untouched.join(', ')}`);
  const order = [...plan.canary.map((t) => t.host.name), ...plan.rest.filter((t) => t.changes).map((t) => t.host.name)];
  lines.push(
    `steps: copy to ${plan.targets.filter((t) => t.changes).length} host(s); ${plan.canary.length > 0 ? `canary ${plan.canary.map((t) => t.host.name).join(', ')}, then ` : ''}one host at a time: ${order.join(', ') || 'none'}`,
  );
  for (const p of plan.problems) lines.push(`REFUSED: ${p}`);
  return lines;
}

export async function runDeploy(opts: DeployOptions): Promise<DeployResult> {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const agentFor = opts.agentFor ?? defaultAgentFor;
  const results: DeployResult['results'] = [];
  let plan: Plan;
  try {
    plan = await makePlan(opts);
  } catch (err) {
    return { ok: false, exitCode: 2, results, error: (err as Error).message };
  }
  for (const line of describePlan(plan)) out(line);
  if (opts.dryRun) return { ok: plan.problems.length === 0 || !!opts.force, exitCode: plan.problems.length > 0 && !opts.force ? 3 : 0, plan, results };
  if (plan.problems.length > 0 && !opts.force) return { ok: false, exitCode: 3, plan, results, error: 'plan refused' };

  const changing = plan.targets.filter((t) => t.changes);
  // Copying changes nothing a host runs, so it goes to several hosts at once.
  const copied = await inBatches(changing, COPY_CONCURRENCY, (t) => copyRelease(t.host, opts.releaseDir));
  changing.forEach((t, i) => out(`${t.host.name}: release ${copied[i]}`));
  if (opts.migrate !== false && changing.length > 0) {
    const first = plan.canary[0] ?? changing[0];
    const m = await agentFor(first.host).migrate(plan.release);
    out(`${first.host.name}: migrations ${m.ok ? 'applied' : 'FAILED'}${m.output ? `: ${m.output}` : ''}`);
    if (!m.ok) return { ok: false, exitCode: 4, plan, results, error: `migrations failed on ${first.host.name}` };
  }

  const step = async (t: PlannedHost): Promise<DeployResult | undefined> => {
    const guard = await waitForOtherReplicas(t.host, opts, agentFor);
    if (guard) {
      if (!opts.force) return { ok: false, exitCode: 5, plan, results, error: guard };
      out(`${t.host.name}: --force: ${guard}`);
    }
    out(`${t.host.name}: activating ${plan.release}`);
    const result = await agentFor(t.host).activate(plan.release);
    results.push({ host: t.host.name, result });
    for (const a of result.actions) out(`${t.host.name}:   ${a}`);
    if (!result.ok) {
      const why = result.rolledBackFrom ? `failed and rolled back to ${result.release}: ${result.error}` : `failed: ${result.error}`;
      out(`${t.host.name}: ${why}`);
      return { ok: false, exitCode: 4, plan, results, error: `${t.host.name} ${why}` };
    }
    out(`${t.host.name}: on ${result.release}, healthy`);
    return undefined;
  };

  for (const t of plan.canary) {
    const failed = await step(t);
    if (failed) return failed;
  }
  if (plan.canary.length > 0) {
    for (const t of plan.canary) {
      const s = await agentFor(t.host).status();
      const sick = s.units.filter((u) => !u.healthy).map((u) => u.name);
      if (s.release !== plan.release || sick.length > 0) {
        return { ok: false, exitCode: 4, plan, results, error: `canary ${t.host.name} is not healthy on ${plan.release} (${sick.join(', ') || s.release})` };
      }
    }
    out(`canary healthy: continuing with ${plan.rest.filter((t) => t.changes).length} host(s)`);
  }
  for (const t of plan.rest) {
    if (!t.changes) continue;
    const failed = await step(t);
    if (failed) return failed;
  }
  out(`done: ${plan.release} on ${plan.targets.map((t) => t.host.name).join(', ')}`);
  return { ok: true, exitCode: 0, plan, results };
}

/** Hosts a release is copied to at once (rsync over ssh each: the operator's uplink is shared). */
const COPY_CONCURRENCY = 8;

/** fn over items, at most `limit` at a time; results in the order of items. */
async function inBatches<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Before a host restarts its replicas, each service it serves healthily must have another
 * healthy replica: on another host, or a second process on this one (the agent restarts
 * one process at a time; a clustered service is one process per host). Waits for that up
 * to guardWaitMs; answers why not, or undefined.
 */
async function waitForOtherReplicas(host: Host, opts: DeployOptions, agentFor: (h: Host) => HostAgent): Promise<string | undefined> {
  const deadline = Date.now() + (opts.guardWaitMs ?? 60_000);
  for (;;) {
    const statuses = await Promise.all(opts.hosts.map((h) => agentFor(h).status().then((s) => [h, s] as const, () => [h, undefined] as const)));
    const mine = statuses.find(([h]) => h === host)?.[1];
    const lonely: string[] = [];
    const healthyHere = (mine?.units ?? []).filter((u) => u.healthy);
    for (const service of new Set(healthyHere.map((u) => u.service))) {
      const elsewhere = statuses.filter(([h, s]) => h !== host && s).reduce((n, [, s]) => n + (s as AgentStatus).units.filter((u) => u.service === service && u.healthy).length, 0);
      const localSpare = healthyHere.filter((u) => u.service === service).length - 1;
      if (elsewhere + localSpare < 1) lonely.push(service);
    }
    if (lonely.length === 0) return undefined;
    if (Date.now() > deadline) return `${host.name} holds the last healthy replica of ${lonely.join(', ')}: not restarting it`;
    await sleep(1000);
  }
}
