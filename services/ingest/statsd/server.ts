import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Registry } from 'prom-client';
import type { Logger } from '../../kit/log.js';
import type { StatsdConfig } from '../config.js';
import type { SampleTarget } from '../durable.js';
import type { StatResolver } from '../stat-resolver.js';
import { StatsdIntake, type ListenerStats } from './intake.js';
import { statsdParsers, StreamListener, UdpListener, type ReadBackpressure } from './listeners.js';
import { ManagementServer } from './management.js';
import { registerStatsdMetrics } from './metrics.js';

export interface StatsdDeps {
  config: StatsdConfig;
  target: SampleTarget;
  /** Stream connections stop reading while it is backlogged (the write-ahead log, when there is one). */
  backpressure?: ReadBackpressure;
  /** Told each stat's id and KIND as statsd learns it (Aggregator.noteKind: counters need no sketch). */
  noteKind?: (statId: number, kind: number) => void;
  stats: StatResolver;
  pool: Pool;
  log: Logger;
  metrics: Registry;
  now: () => number;
}

/** The statsd side of an ingest replica. Listeners that are off (or standing by) are null/unbound. */
export interface StatsdServer {
  readonly intake: StatsdIntake | null;
  readonly udp: UdpListener | null;
  readonly tcp: StreamListener | null;
  readonly unix: StreamListener | null;
  readonly management: ManagementServer | null;
  /**
   * Graceful stop: closes the sockets (stream clients get `graceMs` to finish sending), then
   * waits for the samples still waiting on a lookup to reach the aggregator.
   */
  stop(graceMs: number): Promise<void>;
}

const NONE: StatsdServer = { intake: null, udp: null, tcp: null, unix: null, management: null, stop: async () => {} };

export async function startStatsd(d: StatsdDeps): Promise<StatsdServer> {
  const c = d.config;
  const log = d.log.child({ component: 'statsd' });
  if (!c.STATSD_UDP && !c.STATSD_TCP && !c.STATSD_UNIX && !c.STATSD_MGMT) return NONE;
  const tokenAuth = c.STATSD_AUTH === 'token';
  if (!tokenAuth) {
    if (c.STATSD_DEFAULT_ACCOUNT === undefined) {
      log.warn('statsd listeners are off: set STATSD_DEFAULT_ACCOUNT (the account lines go to) or STATSD_AUTH=token');
      return NONE;
    }
    const [rows] = await d.pool.query<RowDataPacket[]>('SELECT id FROM accounts WHERE id = ?', [c.STATSD_DEFAULT_ACCOUNT]);
    if (rows.length === 0) throw new Error(`STATSD_DEFAULT_ACCOUNT=${c.STATSD_DEFAULT_ACCOUNT}: no such account`);
  }
  const intake = new StatsdIntake({
    target: d.target,
    stats: d.stats,
    pool: d.pool,
    log,
    tokenAuth,
    defaultAccount: c.STATSD_DEFAULT_ACCOUNT,
    maxPending: c.STATSD_MAX_PENDING_SAMPLES,
    tokenRecheckMs: c.STATSD_TOKEN_RECHECK_SEC * 1000,
    now: d.now,
    onResolved: d.noteKind,
  });
  const parsers = statsdParsers(c.STATSD_MAX_LINE, tokenAuth);
  const base = { intake, parsers, backpressure: d.backpressure, log, maxLineLength: c.STATSD_MAX_LINE, retryMs: c.STATSD_BIND_RETRY_MS, now: d.now };
  const udp = c.STATSD_UDP ? new UdpListener({ ...base, host: c.STATSD_UDP_HOST, port: c.STATSD_UDP_PORT, recvBufferSize: c.STATSD_UDP_RECV_BUFFER, queueBytes: c.STATSD_UDP_QUEUE_BYTES, queueReleaseMs: c.STATSD_UDP_QUEUE_RELEASE_MS, coalesceUs: c.STATSD_UDP_COALESCE_US, readerPriority: c.STATSD_UDP_READER_PRIORITY }) : null;
  const tcp = c.STATSD_TCP ? new StreamListener({ ...base, address: { kind: 'tcp', host: c.STATSD_TCP_HOST, port: c.STATSD_TCP_PORT } }) : null;
  const unix = c.STATSD_UNIX ? new StreamListener({ ...base, address: { kind: 'unix', path: c.STATSD_UNIX_PATH, mode: c.STATSD_UNIX_MODE } }) : null;
  const management = c.STATSD_MGMT ? new ManagementServer({ host: c.STATSD_MGMT_HOST, port: c.STATSD_MGMT_PORT, intake, log, retryMs: c.STATSD_BIND_RETRY_MS, now: d.now }) : null;
  const listenerStats: ListenerStats[] = [udp, tcp, unix].filter((l) => l !== null).map((l) => l.stats);
  registerStatsdMetrics(d.metrics, () => listenerStats, intake);

  const stopAll = async (graceMs: number) => {
    await Promise.all([udp?.stop(), tcp?.stop(graceMs), unix?.stop(graceMs), management?.stop()]);
    if (!(await intake.settle(graceMs))) log.warn('statsd lookups did not finish before the shutdown deadline');
    intake.close();
  };
  try {
    // One at a time: a bad address fails the start with its own error.
    for (const l of [udp, tcp, unix, management]) await l?.start();
  } catch (err) {
    await stopAll(0);
    throw err;
  }
  return { intake, udp, tcp, unix, management, stop: stopAll };
}
