import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { envOf, nodeArgsOf } from '../../deploy/services.js';

/**
 * The local stack as real processes: what `npm start`, the end-to-end tests, the
 * benchmarks and the chaos run share. Each replica is its own process
 * (`node --import tsx services/<name>/main.ts`); public HTTP services run one
 * node:cluster process whose workers are the replicas.
 */
export interface ServiceSpec {
  name: string;
  /** rpc: one process per replica; http: one cluster process with `replicas` workers. */
  kind: 'rpc' | 'http';
  replicas: number;
  env?: Record<string, string>;
  /** Extra node flags before the script (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
}

export interface RunningProcess {
  service: string;
  index: number;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** The last OUTPUT_TAIL bytes of its stdout and stderr when the stack's stdio is 'pipe', else ''. */
  output(): string;
}

export interface Stack {
  databaseUrl: string;
  serviceToken: string;
  processes: RunningProcess[];
  /** Public ports of http services, by name. */
  ports: Record<string, number>;
  /** Resolves when every replica of every service is registered. */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGTERM everything and wait; SIGKILL what is still alive after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** Starts one more replica process of an rpc service. */
  spawnReplica(service: string): RunningProcess;
  /** Starts a replica again in the place of one that exited: same index, same WAL_DIR. */
  restart(p: RunningProcess): RunningProcess;
  /** Every process's kept output (stdio 'pipe'), headed by its name: for a failing test's message. */
  tail(): string;
}

/** How much of each process's output a 'pipe' stack keeps (its last bytes). */
const OUTPUT_TAIL = 16 * 1024;

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, host, r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export async function startStack(opts: {
  databaseUrl: string;
  services: ServiceSpec[];
  /** Fixed public ports by service name; others get free ports. */
  ports?: Record<string, number>;
  env?: Record<string, string>;
  /** Where child output goes: inherit (npm start), ignore, or pipe (tests: the last bytes are kept, see tail()). */
  stdio?: 'inherit' | 'ignore' | 'pipe';
}): Promise<Stack> {
  const serviceToken = randomBytes(24).toString('base64url');
  // Ingest's write-ahead logs: npm start keeps them in .data/wal (given in env); any other
  // stack (tests, benchmarks) gets a directory of its own, so stacks never share a log.
  const ownWalRoot = opts.env?.WAL_ROOT ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'osprey-wal-'));
  const ports: Record<string, number> = {};
  for (const s of opts.services) if (s.kind === 'http') ports[s.name] = opts.ports?.[s.name] ?? (await freePort());
  const processes: RunningProcess[] = [];
  const counters = new Map<string, number>();

  const spawnOne = (spec: ServiceSpec, reuse?: number): RunningProcess => {
    const index = reuse ?? counters.get(spec.name) ?? 0;
    if (reuse === undefined) counters.set(spec.name, index + 1);
    const env: Record<string, string> = {
      ...envOf(spec.name),
      ...(process.env as Record<string, string>),
      // Which replica this is on this host: ingest keeps its write-ahead log per index.
      REPLICA_INDEX: String(index),
      ...(ownWalRoot ? { WAL_ROOT: ownWalRoot } : {}),
      DATABASE_URL: opts.databaseUrl,
      SERVICE_TOKEN: serviceToken,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      ...opts.env,
      ...spec.env,
    };
    if (spec.kind === 'http') {
      env.PORT = String(ports[spec.name]);
      env[`${spec.name.toUpperCase()}_WORKERS`] = String(spec.replicas);
    }
    const child = spawn(process.execPath, [...nodeArgsOf(spec.name), ...(spec.nodeArgs ?? []), '--import', 'tsx', path.join(ROOT, 'services', spec.name, 'main.ts')], {
      cwd: ROOT,
      env,
      stdio: opts.stdio ?? 'ignore',
    });
    // 'close', not 'exit': with stdio 'pipe' the output is complete by then.
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    let kept = '';
    const keep = (b: Buffer) => {
      kept += b.toString('utf8');
      if (kept.length > 2 * OUTPUT_TAIL) kept = kept.slice(-OUTPUT_TAIL);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const p = { service: spec.name, index, child, exited, output: () => kept.slice(-OUTPUT_TAIL) };
    processes.push(p);
    return p;
  };

  for (const spec of opts.services) {
    if (spec.kind === 'http') spawnOne(spec);
    else for (let i = 0; i < spec.replicas; i++) spawnOne(spec);
  }

  return {
    databaseUrl: opts.databaseUrl,
    serviceToken,
    processes,
    ports,
    spawnReplica(service) {
      const spec = opts.services.find((s) => s.name === service);
      if (!spec || spec.kind !== 'rpc') throw new Error(`${service} is not an rpc service of this stack`);
      return spawnOne(spec);
    },
    restart(p) {
      const spec = opts.services.find((s) => s.name === p.service)!;
      if (p.child.exitCode === null && p.child.signalCode === null) throw new Error(`${p.service}-${p.index} is still running`);
      return spawnOne(spec, p.index);
    },
    tail() {
      return processes
        .map((p) => {
          const how = p.child.exitCode !== null ? `exited ${p.child.exitCode}` : p.child.signalCode ? `killed by ${p.child.signalCode}` : 'running';
          return `--- ${p.service}-${p.index} (pid ${p.child.pid}, ${how}) ---\n${p.output() || '(no output kept)\n'}`;
        })
        .join('');
    },
    async ready(timeoutMs = 60_000) {
      const conn = await mysql.createConnection({ uri: opts.databaseUrl });
      try {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT service, COUNT(*) AS n FROM service_instances GROUP BY service');
          const have = new Map(rows.map((r) => [String(r.service), Number(r.n)]));
          const missing = opts.services.filter((s) => (have.get(s.name) ?? 0) < s.replicas);
          if (missing.length === 0) return;
          const dead = processes.find((p) => p.child.exitCode !== null);
          if (dead) throw new Error(`${dead.service} replica exited with code ${dead.child.exitCode} while starting`);
          if (Date.now() > until) throw new Error(`stack not ready after ${timeoutMs} ms: waiting for ${missing.map((s) => s.name).join(', ')}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await conn.end();
      }
    },
    async stop(graceMs = 15_000) {
      const live = processes.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
      for (const p of live) p.child.kill('SIGTERM');
      const timer = setTimeout(() => {
        for (const p of live) if (p.child.exitCode === null) p.child.kill('SIGKILL');
      }, graceMs);
      await Promise.all(live.map((p) => p.exited));
      clearTimeout(timer);
      if (ownWalRoot) fs.rmSync(ownWalRoot, { recursive: true, force: true });
    },
  };
}
