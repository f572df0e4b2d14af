/**
 * What the agent can run, one line per service. Adding a service is adding a line here.
 *
 * - `entry`: the compiled main module, relative to a release's `dist/`.
 * - `kind`: `rpc` (Connect server: health is grpc.health.v1 on its RPC port) or `http`
 *   (public Hono server: health is GET /healthz on its public port and on its ops port).
 * - `basePort`: the host's port plan. Replica i listens on RPC_PORT = basePort + 2i and
 *   OPS_PORT = basePort + 2i + 1, so the agent always knows where to check a replica and two
 *   releases of one replica never fight over a random port. Keep ranges 100 apart.
 * - `publicPort` + `workersVar` (http only): the service runs as ONE process per host whose
 *   node:cluster workers share `publicPort`; `osprey:replicas` sets `workersVar` instead of
 *   the number of processes, because processes cannot share the public port.
 * - `env`: defaults for this service; the host's env file and the port plan win over it.
 * - `nodeArgs`: V8/node flags the service is started with, before its entry (everywhere:
 *   the agent's units, `npm start`, the benchmarks), for what cannot be set once running.
 *
 */
export const SERVICES = {
  // The api's garbage is a request's (about 11 KB of it at 5,000 req/s) and almost none of it
  // survives a scavenge, so V8 does not grow back a young generation it shrank while the replica
  // was idle: after an idle spell (bench:http, --trace-gc) the api ran 5,000 req/s on a
  // 1-2 MB semi-space, 180 scavenges in 10 s (163 ms of pauses, the first ones up to 8 ms). Held
  // at 16 MB (V8's own maximum here, which a saturated api reaches anyway): 44 scavenges of
  // ~1.25 ms. The cost is the idle replica's memory: the young generation no longer shrinks.
  api: { entry: 'services/api/main.js', kind: 'http', basePort: 7000, publicPort: 8088, workersVar: 'API_WORKERS', env: {}, nodeArgs: ['--min-semi-space-size=16'] },
  // Ingest's garbage is short-lived (a line's, a flush's rows): a 4 MB semi-space (V8's
  // default grows to 16) took ~30 MB off its peak RSS with 100,000 live stats, with flushes
  // and the parsing path no slower (bench:ingest, scripts/bench/flush.ts, pipeline.ts). It is
  // also its minimum, for the api's reason below: after idle, Record calls at 5,000/s ran on
  // a ~1 MB one (227 scavenges in 10 s against 113 held at 4 MB).
  // The garbage collector works on the thread that needs it only (--single-threaded-gc). The
  // suspected cause, not shown directly: V8's helper threads serve both the parsing thread's
  // heap and the real-time UDP reader thread's, at normal priority, so a reader collection
  // that joined a helper's task waited behind the parsing thread and MariaDB on the same core,
  // and the kernel dropped datagrams in bursts meanwhile. Measured: bench:ingest
  // --servers=osprey --tcp=false, 1 line a datagram: 8 runs without 32,500-134,900 lines/s,
  // 2 with 123,643 and 112,489; 20 lines: 1 run without 210,933 (4.4 CPU s per M lines), 2 with
  // 632,807 and 664,380 (3.6, 2.5). Few runs on a noisy machine: see the README.
  // --expose-gc: the UDP reader thread, having moved to a fresh queue after a burst, collects
  // its small heap at once so the old queue's memory (up to STATSD_UDP_QUEUE_BYTES) goes back
  // (services/ingest/statsd/listeners.ts); nothing else calls gc().
  // MALLOC_MMAP_THRESHOLD_ (read by glibc at start, so it is env, not a flag): blocks of 128 KiB
  // and more are always mmapped and unmapped when freed. glibc otherwise raises the threshold
  // to each freed block's size, and the aggregator's columns (a fresh set each flush window,
  // 8-16 MB) came from its arena and stayed there. With it, a flush's taken columns go back to
  // the system when the flush is done: scripts/bench/flush.ts --rounds 6 --no-prefill, peak
  // RSS 171 and 166 MB against 180-185 copying the columns into the default arena.
  ingest: {
    entry: 'services/ingest/main.js',
    kind: 'rpc',
    basePort: 7100,
    env: { MALLOC_MMAP_THRESHOLD_: '131072' },
    nodeArgs: ['--min-semi-space-size=4', '--max-semi-space-size=4', '--single-threaded-gc', '--expose-gc'],
  },
  graphing: { entry: 'services/graphing/main.js', kind: 'rpc', basePort: 7200, env: {} },
  web: { entry: 'services/web/main.js', kind: 'http', basePort: 7500, publicPort: 8080, workersVar: 'WEB_WORKERS', env: {} },
  alerting: { entry: 'services/alerting/main.js', kind: 'rpc', basePort: 7300, env: {} },
  reporting: { entry: 'services/reporting/main.js', kind: 'rpc', basePort: 7400, env: {} },
} as const satisfies Record<string, ServiceDef>;

export type ServiceName = keyof typeof SERVICES;

export interface ServiceDef {
  entry: string;
  kind: 'rpc' | 'http';
  basePort: number;
  publicPort?: number;
  workersVar?: string;
  env: Record<string, string>;
  nodeArgs?: readonly string[];
}

/** A service's own environment defaults (see `env` above): every launcher starts it with them. */
export function envOf(name: string): Record<string, string> {
  return { ...(serviceDef(name)?.env ?? {}) };
}

/** The node flags a service starts with (see `nodeArgs` above). */
export function nodeArgsOf(name: string): string[] {
  return [...(serviceDef(name)?.nodeArgs ?? [])];
}

export function serviceDef(name: string): ServiceDef | undefined {
  return Object.hasOwn(SERVICES, name) ? (SERVICES as Record<string, ServiceDef>)[name] : undefined;
}

export const SERVICE_NAMES = Object.keys(SERVICES) as ServiceName[];

/** The most processes of one service a host runs (keeps the port ranges apart). */
export const MAX_REPLICAS_PER_HOST = 50;

export interface Ports {
  rpc: number;
  ops: number;
  /** http services: the public port all workers share. */
  public?: number;
}

/** `offset` shifts the whole plan (OSPREY_PORT_OFFSET: a simulated fleet beside a real stack). */
export function portsOf(def: ServiceDef, index: number, offset = 0): Ports {
  const base = def.basePort + offset + 2 * index;
  return { rpc: base, ops: base + 1, ...(def.publicPort ? { public: def.publicPort + offset } : {}) };
}

/** Tags → what a host runs: `osprey:roles` = "api,ingest", `osprey:replicas` = "ingest=2,api=4". */
export interface HostRoles {
  /**
   * service → replicas on this host (for clustered http services: workers in its one
   * process); undefined when `osprey:replicas` does not say (one process; a clustered
   * service keeps its own default worker count).
   */
  services: Map<string, number | undefined>;
  /** Roles the tags name that this release does not know (reported, never started). */
  unknown: string[];
}

export const ROLES_TAG = 'osprey:roles';
export const REPLICAS_TAG = 'osprey:replicas';

export function parseRoles(tags: Record<string, string | undefined>): HostRoles {
  const replicas = new Map<string, number>();
  for (const part of (tags[REPLICAS_TAG] ?? '').split(',')) {
    const m = /^\s*([a-z][a-z0-9-]*)\s*=\s*(\d+)\s*$/.exec(part);
    if (m) replicas.set(m[1], Math.min(Number(m[2]), MAX_REPLICAS_PER_HOST));
  }
  const services = new Map<string, number | undefined>();
  const unknown: string[] = [];
  for (const raw of (tags[ROLES_TAG] ?? '').split(',')) {
    const role = raw.trim();
    if (!role) continue;
    if (!serviceDef(role)) {
      unknown.push(role);
      continue;
    }
    const n = replicas.get(role);
    if (n !== 0) services.set(role, n);
  }
  return { services, unknown };
}

/** How many processes a host runs for a service (clustered services: one). */
export function processCount(def: ServiceDef, replicas: number | undefined): number {
  return def.workersVar ? 1 : (replicas ?? 1);
}

