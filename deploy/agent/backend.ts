import type { Ports } from '../services.js';

/** One process the agent runs: a replica of a service (clustered services: all its workers). */
export interface UnitSpec {
  /** `ingest-0`, `api-0`: unique on the host. */
  name: string;
  service: string;
  index: number;
  release: string;
  /** The release directory (working directory of the process). */
  cwd: string;
  /** Absolute path of the main module. */
  entry: string;
  /** node flags before the entry (the service's `nodeArgs`; absent in units recorded before they existed). */
  nodeArgs?: string[];
  env: Record<string, string>;
  ports: Ports;
  /** Hash of everything above that affects the process: a different hash means restart. */
  hash: string;
}

export interface UnitStatus {
  spec: UnitSpec;
  /** running: the process is up; backoff: it died and waits to be started again. */
  state: 'running' | 'backoff' | 'stopped' | 'unknown';
  pid?: number;
  /** Times the backend started it again after it died. */
  restarts: number;
  /** Deaths since the last start() by the agent (health checks fail fast on these). */
  exitsSinceStart: number;
}

/** How processes are run: systemd units where systemd runs, else the agent itself. */
export interface Backend {
  readonly kind: 'systemd' | 'process';
  /** Start (or replace) a unit; returns once the process was launched, not when healthy. */
  start(spec: UnitSpec): Promise<void>;
  /** Graceful stop (SIGTERM, then SIGKILL after the stop timeout); forgets the unit. */
  stop(name: string): Promise<void>;
  list(): Promise<UnitStatus[]>;
  /** The agent is exiting. */
  close(): Promise<void>;
}
