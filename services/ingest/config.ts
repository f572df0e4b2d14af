import path from 'node:path';
import { z } from 'zod';
import { baseConfigSchema, envBool } from '../kit/config.js';
import { WAL_SYNCS, type WalSync } from './durable.js';
import { READER_PRIORITIES } from './statsd/reader-priority.js';

const port = z.coerce.number().int().min(0).max(65535);

/** The statsd listeners (README: "statsd"). */
export const statsdConfigSchema = z.object({
  STATSD_UDP: envBool.default(true),
  STATSD_UDP_HOST: z.string().min(1).default('0.0.0.0'),
  STATSD_UDP_PORT: port.default(8125),
  /** SO_RCVBUF in bytes; 0 keeps the system default (net.core.rmem_default). */
  STATSD_UDP_RECV_BUFFER: z.coerce.number().int().min(0).default(0),
  /** The UDP reader thread's scheduling priority (reader-priority.ts); each falls back to the next one the system allows. */
  STATSD_UDP_READER_PRIORITY: z.enum(READER_PRIORITIES).default('realtime'),
  /** Bytes of datagrams the UDP reader thread may hold for the parsing thread (a ring, allocated once). */
  STATSD_UDP_QUEUE_BYTES: z.coerce.number().int().min(1 << 17).max(1 << 30).default(32 << 20),
  /**
   * A queue a burst touched past 2 MiB that has since held less than 1 MiB this long (ms) is
   * replaced by a fresh one, so the memory the burst touched goes back to the system (0: never).
   */
  STATSD_UDP_QUEUE_RELEASE_MS: z.coerce.number().int().min(0).default(10_000),
  /**
   * While datagrams come closer together than this (µs), the UDP reader thread naps this long
   * after each turn, so it wakes once for several of them rather than once for each (0: never).
   */
  STATSD_UDP_COALESCE_US: z.coerce.number().int().min(0).max(2000).default(100),
  STATSD_TCP: envBool.default(true),
  STATSD_TCP_HOST: z.string().min(1).default('0.0.0.0'),
  STATSD_TCP_PORT: port.default(8125),
  STATSD_UNIX: envBool.default(true),
  /** Relative paths are from the working directory. */
  STATSD_UNIX_PATH: z.string().min(1).default('.data/run/statsd.sock'),
  /** Octal file mode for the socket (e.g. 660); unset keeps the umask's. */
  STATSD_UNIX_MODE: z
    .string()
    .regex(/^0?[0-7]{3}$/, 'must be an octal file mode such as 660')
    .transform((s) => parseInt(s, 8))
    .optional(),
  /** Etsy's management interface (help, stats, counters, ...): local only unless told. */
  STATSD_MGMT: envBool.default(true),
  STATSD_MGMT_HOST: z.string().min(1).default('127.0.0.1'),
  STATSD_MGMT_PORT: port.default(8126),
  /** Longest line in bytes; a longer one is counted as too_long and skipped. */
  STATSD_MAX_LINE: z.coerce.number().int().min(64).max(1 << 20).default(8192),
  /** token: lines need a statsd token (statsgod's `<token>.` prefix or `AUTH <token>`). */
  STATSD_AUTH: z.enum(['none', 'token']).default('none'),
  /** The account lines go to without auth; the statsd listeners stay off without one. */
  STATSD_DEFAULT_ACCOUNT: z.coerce.number().int().min(1).optional(),
  /** How often a replica standing by for an address held by another tries to take it. */
  STATSD_BIND_RETRY_MS: z.coerce.number().int().min(10).default(1000),
  /** How often tokens in use are checked again: a revoked token stops working within this. */
  STATSD_TOKEN_RECHECK_SEC: z.coerce.number().int().min(1).default(60),
  /** Samples that may wait for a new stat or token to be looked up before more are dropped. */
  STATSD_MAX_PENDING_SAMPLES: z.coerce.number().int().min(0).default(500_000),
});
export type StatsdConfig = z.infer<typeof statsdConfigSchema>;

/** The write-ahead log (durable.ts): every accepted point is in the log before it is acknowledged. */
export const walConfigSchema = z.object({
  /** false: no log (a crash loses what was accepted since the last flush). */
  WAL: envBool.default(true),
  /** Where replicas keep their logs, one directory per replica index. */
  WAL_ROOT: z.string().min(1).default('.data/wal'),
  /** This replica's index on its host (npm start and the deploy agent set it). */
  REPLICA_INDEX: z.coerce.number().int().min(0).default(0),
  /** This replica's log directory; default WAL_ROOT/ingest-REPLICA_INDEX. */
  WAL_DIR: z.string().min(1).optional(),
  /**
   * What an acknowledgement (a Record reply, so a 2xx from api) waits for. interval: the
   * log's write, so a crash of the process loses nothing and a crash of the machine about
   * the last 100 ms (the fdatasync is started 100 ms after a write, as for statsd lines,
   * and takes what the disk takes); ack: the
   * fdatasync too, one per batch of calls (a thread-pool hop and a disk cache flush a call,
   * and the disk's flush latency, p99 ~3 ms on the development VM, in every reply).
   */
  WAL_SYNC: z.enum(WAL_SYNCS).default('interval'),
  /** Log bytes that may wait for MySQL (an outage); beyond it Record answers Unavailable, nothing applied. */
  WAL_MAX_BYTES: z.coerce.number().int().min(1 << 16).default(1 << 30),
  /** A new log segment starts after this many bytes; segments MySQL holds are deleted. */
  WAL_SEGMENT_BYTES: z.coerce.number().int().min(1 << 12).default(64 << 20),
});
export type WalConfig = z.infer<typeof walConfigSchema>;

export const ingestConfigSchema = baseConfigSchema.extend({
  /** How often aggregated buckets are written to MySQL. */
  FLUSH_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  /** Flushing takes at most this share of the time: a slow flush (many live stats) spaces out the next ones. */
  FLUSH_BUSY_SHARE: z.coerce.number().gt(0).max(1).default(0.2),
  /** ...but flushes are never further apart than this. */
  FLUSH_MAX_INTERVAL_MS: z.coerce.number().int().min(10).default(10_000),
  /**
   * How far V8 lets the heap grow past what the last full collection kept, in percent (V8's
   * --heap-growing-percent; 0 leaves V8's own factor, up to 4x). A flush of many live stats
   * leaves tens of MB of rows behind; with V8's factor they piled up to 420 MB over an 87 MB
   * live set (`--trace-gc`; README: "statsd benchmark"). 10 rather than 25: bench:ingest's
   * peak RSS 348 -> 314 MB in consecutive full runs, CPU per line no higher (3.22 -> 2.96 s per M).
   */
  HEAP_GROWING_PERCENT: z.coerce.number().int().min(0).max(300).default(10),
  /** Points older than this many days are refused (they would land past retention). */
  MAX_POINT_AGE_DAYS: z.coerce.number().int().min(1).default(365 * 2),
  /** Points this far in the future are refused (a client clock gone wrong). */
  MAX_POINT_FUTURE_SEC: z.coerce.number().int().min(0).default(600),
  ...statsdConfigSchema.shape,
  ...walConfigSchema.shape,
});
export type IngestConfig = z.infer<typeof ingestConfigSchema>;

/**
 * What build() takes: a parsed IngestConfig, or (tests that build a replica for its RPCs)
 * one without the statsd fields, which means no statsd listeners.
 */
/**
 * Tunings a test may leave out: without flush pacing flushes come every FLUSH_INTERVAL_MS
 * however long they take; without HEAP_GROWING_PERCENT V8 keeps its own heap growth.
 */
type Tunings = Pick<IngestConfig, 'FLUSH_BUSY_SHARE' | 'FLUSH_MAX_INTERVAL_MS' | 'HEAP_GROWING_PERCENT'>;
export type IngestBuildConfig = Omit<IngestConfig, keyof StatsdConfig | keyof WalConfig | keyof Tunings> & Partial<StatsdConfig> & Partial<WalConfig> & Partial<Tunings>;

/** The log's settings, or undefined for no log (WAL=false, or a test config without WAL_DIR/WAL_ROOT). */
export function walSettings(config: IngestBuildConfig): { dir: string; maxBytes: number; segmentBytes: number; sync: WalSync } | undefined {
  if (config.WAL === false || (config.WAL_DIR === undefined && config.WAL_ROOT === undefined)) return undefined;
  const dir = config.WAL_DIR ?? path.join(config.WAL_ROOT!, `ingest-${config.REPLICA_INDEX ?? 0}`);
  return { dir, maxBytes: config.WAL_MAX_BYTES ?? 1 << 30, segmentBytes: config.WAL_SEGMENT_BYTES ?? 64 << 20, sync: config.WAL_SYNC ?? 'interval' };
}

/** The statsd settings of a build config; a config without them has every listener off. */
export function statsdSettings(config: IngestBuildConfig): StatsdConfig {
  const off: StatsdConfig = { ...statsdConfigSchema.parse({}), STATSD_UDP: false, STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false };
  const given: Partial<StatsdConfig> = Object.fromEntries(Object.entries(config).filter(([k, v]) => Object.hasOwn(statsdConfigSchema.shape, k) && v !== undefined));
  return { ...off, ...given };
}
