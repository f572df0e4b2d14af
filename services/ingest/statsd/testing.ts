// Test helpers for the statsd listeners: a real ingest replica on a test database, with every
// listener on an ephemeral port (and a Unix socket in a temporary directory).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import type { Registry } from 'prom-client';
import { connectDatabase } from '../../kit/db/client.js';
import { createMetrics } from '../../kit/metrics.js';
import { testBaseConfig, type TestDatabase } from '../../kit/testing/db.js';
import { namedRollups, type NamedRollupRow } from '../../kit/testing/rollups.js';
import { statsdConfigSchema, type StatsdConfig } from '../config.js';
import { build, type IngestReplica } from '../server.js';

export function tempSocketDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'osprey-sd-'));
}

/** Every listener on, on ephemeral ports; `overrides` win. */
export function statsdTestConfig(socketPath: string, overrides: Partial<StatsdConfig> = {}): StatsdConfig {
  return {
    ...statsdConfigSchema.parse({}),
    STATSD_UDP_HOST: '127.0.0.1',
    STATSD_UDP_PORT: 0,
    STATSD_TCP_HOST: '127.0.0.1',
    STATSD_TCP_PORT: 0,
    STATSD_UNIX_PATH: socketPath,
    STATSD_MGMT_HOST: '127.0.0.1',
    STATSD_MGMT_PORT: 0,
    STATSD_BIND_RETRY_MS: 50,
    ...overrides,
  };
}

export type StatsdTestReplica = IngestReplica & { registry: Registry };

export async function startStatsdReplica(tdb: TestDatabase, statsd: StatsdConfig, now?: () => number): Promise<StatsdTestReplica> {
  const registry = createMetrics('ingest');
  const r = await build({
    config: { ...testBaseConfig(tdb.url), FLUSH_INTERVAL_MS: 600_000, MAX_POINT_AGE_DAYS: 730, MAX_POINT_FUTURE_SEC: 600, ...statsd },
    log: pino({ level: 'silent' }),
    database: connectDatabase(tdb.url),
    metrics: registry,
    now,
  });
  return Object.assign(r, { registry });
}

/** Polls `cond` until true; fails naming `what` after `timeoutMs` (a bound, not a measurement). */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The value of one sample of a metric in a registry (0 when absent). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want));
  return hit ? hit.value : 0;
}

/** The 1m (or another) rollups by stat name and kind. */
export function rollupRows(tdb: TestDatabase, table: 'rollups_1m' | 'rollups_1h' | 'rollups_1d' = 'rollups_1m'): Promise<NamedRollupRow[]> {
  return namedRollups(tdb.database.pool, table);
}

/** A connected stream socket to a TCP port or a Unix socket path. */
export function connectStream(to: number | string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = typeof to === 'number' ? net.connect({ host: '127.0.0.1', port: to, noDelay: true }) : net.connect(to);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes and resolves once the bytes are handed to the kernel. */
export function write(s: net.Socket, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => s.write(data, (err) => (err ? reject(err) : resolve())));
}

/** Ends our side and waits for the server to close the connection. */
export function endAndWait(s: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    s.once('close', () => resolve());
    s.resume();
    s.end();
  });
}
