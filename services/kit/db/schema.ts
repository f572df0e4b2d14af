// The one schema module every service uses. drizzle-kit generates the migrations in
// ./migrations from this file (`npm run db:generate`); never edit a migration by hand.
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  customType,
  double,
  index,
  int,
  mysqlTable,
  primaryKey,
  timestamp,
  tinyint,
  uniqueIndex,
  varchar,
  char,
} from 'drizzle-orm/mysql-core';

/** Binary blobs (sketches) as Buffers. */
export const blob = customType<{ data: Buffer; driverData: Buffer }>({
  dataType() {
    return 'mediumblob';
  },
});

const createdAt = () => timestamp('created_at', { mode: 'date', fsp: 3 }).notNull().default(sql`CURRENT_TIMESTAMP(3)`);

export const accounts = mysqlTable('accounts', {
  id: int('id', { unsigned: true }).autoincrement().primaryKey(),
  email: varchar('email', { length: 255 }).notNull(),
  ezkey: varchar('ezkey', { length: 64 }).notNull(),
  /** The previous ezkey after a rotation: it keeps working so clients can be moved over. */
  ezkeyBackup: varchar('ezkey_backup', { length: 64 }),
  createdAt: createdAt(),
}, (t) => [
  uniqueIndex('accounts_email').on(t.email),
  uniqueIndex('accounts_ezkey').on(t.ezkey),
  uniqueIndex('accounts_ezkey_backup').on(t.ezkeyBackup),
]);

/** Metric kinds as stored; the numbers match proto osprey.v1.MetricKind. */
export const KIND = { counter: 1, value: 2, gauge: 3, set: 4 } as const;
export type KindName = keyof typeof KIND;
export const KIND_NAME: Record<number, KindName> = { 1: 'counter', 2: 'value', 3: 'gauge', 4: 'set' };

export const stats = mysqlTable('stats', {
  id: int('id', { unsigned: true }).autoincrement().primaryKey(),
  accountId: int('account_id', { unsigned: true }).notNull(),
  name: varchar('name', { length: 255 }).notNull(),
  kind: tinyint('kind', { unsigned: true }).notNull(),
  public: boolean('public').notNull().default(false),
  createdAt: createdAt(),
  /** Set when the stat is moved to the trash; purged 48 hours later. */
  deletedAt: timestamp('deleted_at', { mode: 'date', fsp: 3 }),
}, (t) => [
  // A stat's identity is (account, name, kind): statsd keeps `a:1|c` and `a:1|ms` apart.
  // The StatHat API's rule (one kind per name) is enforced by ingest, not by this key.
  uniqueIndex('stats_account_name_kind').on(t.accountId, t.name, t.kind),
]);

/** The key and numeric columns of one rollup row, as ingest builds them and tests read them. */
export interface RollupColumns {
  statId: number;
  /** Unix seconds of the bucket start. */
  bucket: number;
  count: number;
  sum: number;
  min: number;
  max: number;
  sumsq: number;
  lastValue: number;
  /** Unix milliseconds of the sample behind last_value. */
  lastTime: number;
}

/** Just the rollup columns of anything that has them (a bucket, a row with a sketch). */
export function rollupColumnsOf(b: RollupColumns): RollupColumns {
  return { statId: b.statId, bucket: b.bucket, count: b.count, sum: b.sum, min: b.min, max: b.max, sumsq: b.sumsq, lastValue: b.lastValue, lastTime: b.lastTime };
}

/**
 * Rollups share one shape at every resolution. Every column merges commutatively:
 * count/sum/sumsq add, min/max take the extreme, last_* keeps the latest by time (ties:
 * the larger value), the sketch merges as a sketch, so replicas may flush the same bucket
 * in any order.
 */
function rollupTable<N extends string>(name: N) {
  return mysqlTable(name, {
    statId: int('stat_id', { unsigned: true }).notNull(),
    /** Unix seconds of the bucket start. */
    bucket: int('bucket', { unsigned: true }).notNull(),
    count: double('count').notNull(),
    sum: double('sum').notNull(),
    min: double('min').notNull(),
    max: double('max').notNull(),
    sumsq: double('sumsq').notNull(),
    lastValue: double('last_value').notNull(),
    /** Unix milliseconds of the sample behind last_value. */
    lastTime: bigint('last_time', { mode: 'number', unsigned: true }).notNull(),
    /**
     * The bucket's mergeable sketch, in the format of the stat's kind (a stat has one kind
     * for life, so a row needs one column, not two): value stats a quantile sketch
     * (services/kit/sketch/quantile.ts), set stats a distinct sketch (distinct.ts);
     * NULL for counters and gauges. Ingest merges it read-merge-write under the row lock.
     */
    sketch: blob('sketch'),
  }, (t) => [primaryKey({ columns: [t.statId, t.bucket] })]);
}

export const rollups1m = rollupTable('rollups_1m');
export const rollups1h = rollupTable('rollups_1h');
export const rollups1d = rollupTable('rollups_1d');

/**
 * Sketch contributions on their way into the rollups' sketch columns, one row per (stat,
 * minute), shared by every replica. A flush merges its minute sketches into these rows
 * (small, read-merge-write under the row lock) instead of rewriting the 1m, 1h and 1d
 * sketches every second; a row that has waited a few seconds is folded into all three
 * rollup rows and deleted in one transaction (services/ingest/flusher.ts), so each
 * contribution reaches each rollup exactly once.
 */
export const pendingSketches = mysqlTable('pending_sketches', {
  statId: int('stat_id', { unsigned: true }).notNull(),
  /** Unix seconds of the minute. */
  bucket: int('bucket', { unsigned: true }).notNull(),
  /** 1: quantile sketch (value stats), 2: distinct sketch (sets). */
  format: tinyint('format', { unsigned: true }).notNull(),
  /** Unix seconds of the first contribution: the row is folded once it is this old plus the fold delay. */
  since: int('since', { unsigned: true }).notNull(),
  sketch: blob('sketch').notNull(),
}, (t) => [primaryKey({ columns: [t.statId, t.bucket] })]);

/** Every flush records its id in the same transaction, so a retried flush is a no-op. */
export const flushes = mysqlTable('flushes', {
  id: char('id', { length: 36 }).primaryKey(),
  instance: varchar('instance', { length: 128 }).notNull(),
  points: int('points', { unsigned: true }).notNull(),
  createdAt: createdAt(),
}, (t) => [index('flushes_created').on(t.createdAt)]);

/** Live replicas: callers balance over the rows whose heartbeat is fresh. */
export const serviceInstances = mysqlTable('service_instances', {
  id: varchar('id', { length: 128 }).primaryKey(),
  service: varchar('service', { length: 32 }).notNull(),
  /** host:port of the replica's Connect server (HTTP/2 without TLS). */
  address: varchar('address', { length: 255 }).notNull(),
  /** host:port of the replica's HTTP/1.1 ops server (/metrics, /healthz). */
  opsAddress: varchar('ops_address', { length: 255 }).notNull(),
  host: varchar('host', { length: 255 }).notNull(),
  pid: int('pid', { unsigned: true }).notNull(),
  startedAt: timestamp('started_at', { mode: 'date', fsp: 3 }).notNull(),
  heartbeatAt: timestamp('heartbeat_at', { mode: 'date', fsp: 3 }).notNull(),
}, (t) => [index('service_instances_service').on(t.service, t.heartbeatAt)]);

// ---- people and credentials ----------------------------------------------------------
// Secrets that are only ever checked (passwords, session ids, access and statsd tokens)
// are stored as hashes; only a short prefix is kept in clear so people can tell them apart.

export const users = mysqlTable('users', {
  id: int('id', { unsigned: true }).autoincrement().primaryKey(),
  accountId: int('account_id', { unsigned: true }).notNull(),
  email: varchar('email', { length: 255 }).notNull(),
  /** scrypt: "scrypt$N$r$p$salt$hash" (base64url parts). */
  passwordHash: varchar('password_hash', { length: 255 }).notNull(),
  createdAt: createdAt(),
}, (t) => [uniqueIndex('users_email').on(t.email), index('users_account').on(t.accountId)]);

export const sessions = mysqlTable('sessions', {
  /** sha256 of the cookie value, hex. */
  idHash: char('id_hash', { length: 64 }).primaryKey(),
  userId: int('user_id', { unsigned: true }).notNull(),
  csrfToken: varchar('csrf_token', { length: 64 }).notNull(),
  createdAt: createdAt(),
  expiresAt: timestamp('expires_at', { mode: 'date', fsp: 3 }).notNull(),
}, (t) => [index('sessions_user').on(t.userId)]);

/** A table of hashed bearer secrets belonging to accounts. */
function tokenTable<N extends string>(name: N) {
  return mysqlTable(name, {
    id: int('id', { unsigned: true }).autoincrement().primaryKey(),
    accountId: int('account_id', { unsigned: true }).notNull(),
    name: varchar('name', { length: 100 }).notNull(),
    /** sha256 of the token, hex. */
    tokenHash: char('token_hash', { length: 64 }).notNull(),
    prefix: varchar('prefix', { length: 12 }).notNull(),
    createdAt: createdAt(),
    revokedAt: timestamp('revoked_at', { mode: 'date', fsp: 3 }),
  }, (t) => [uniqueIndex(`${name}_hash`).on(t.tokenHash), index(`${name}_account`).on(t.accountId)]);
}

/** Bearer tokens for /api/v1 and the StatHat /x/:token export. */
export const accessTokens = tokenTable('access_tokens');

/** statsd auth tokens (statsgod's `<token>.` line prefix, or `AUTH <token>` per connection). */
export const statsdTokens = tokenTable('statsd_tokens');

/**
 * StatHat's classic API: a user key (`ukey`) per account and a key per stat (`key`),
 * both shown in settings and sent by old clients, so stored in clear.
 */
export const classicKeys = mysqlTable('classic_keys', {
  accountId: int('account_id', { unsigned: true }).primaryKey(),
  ukey: varchar('ukey', { length: 64 }).notNull(),
  createdAt: createdAt(),
}, (t) => [uniqueIndex('classic_keys_ukey').on(t.ukey)]);

export const classicStatKeys = mysqlTable('classic_stat_keys', {
  statId: int('stat_id', { unsigned: true }).primaryKey(),
  accountId: int('account_id', { unsigned: true }).notNull(),
  key: varchar('key', { length: 64 }).notNull(),
}, (t) => [uniqueIndex('classic_stat_keys_key').on(t.accountId, t.key)]);
// alerting & reporting ------------------------------------------------------------------
// Times these services decide on come from their injectable clock, so they are stored as
// unix milliseconds (bigint) rather than timestamps set by MySQL.

const unixMs = (name: string) => bigint(name, { mode: 'number', unsigned: true });

/** Alert kinds as stored (StatHat's kinds). */
export const ALERT_KIND = { value: 1, delta: 2, data: 3 } as const;
/** Comparison operators as stored: StatHat's "greater than", "less than", "different than". */
export const ALERT_OPERATOR = { greater: 1, less: 2, different: 3 } as const;
export const ALERT_STATE = { ok: 0, firing: 1 } as const;

export const alertRules = mysqlTable('alert_rules', {
  id: int('id', { unsigned: true }).autoincrement().primaryKey(),
  accountId: int('account_id', { unsigned: true }).notNull(),
  statId: int('stat_id', { unsigned: true }).notNull(),
  kind: tinyint('kind', { unsigned: true }).notNull(),
  /** The window in seconds (StatHat's 5m, 1h, 3h, 1d, 1w, 1M, 1y). */
  windowSec: int('window_sec', { unsigned: true }).notNull(),
  operator: tinyint('operator', { unsigned: true }).notNull().default(0),
  threshold: double('threshold').notNull().default(0),
  /** Delta alerts: the change in percent that trips the rule. */
  percentage: double('percentage').notNull().default(0),
  /** Delta alerts: how far back the compared window lies, in seconds. */
  deltaSec: int('delta_sec', { unsigned: true }).notNull().default(0),
  muted: boolean('muted').notNull().default(false),
  state: tinyint('state', { unsigned: true }).notNull().default(0),
  stateSinceMs: unixMs('state_since_ms').notNull(),
  /** Bumped by each recorded transition; (rule_id, seq) keys the transition in alert_events. */
  transitionSeq: int('transition_seq', { unsigned: true }).notNull().default(0),
  /** The last minute (unix seconds / 60) this rule was evaluated for: at most once per minute. */
  evaluatedMinute: int('evaluated_minute', { unsigned: true }).notNull().default(0),
  /** How many evaluations were committed (lets tests and the UI see "once per minute"). */
  evaluations: int('evaluations', { unsigned: true }).notNull().default(0),
  lastValue: double('last_value'),
  lastEvaluatedMs: unixMs('last_evaluated_ms'),
  createdMs: unixMs('created_ms').notNull(),
  updatedMs: unixMs('updated_ms').notNull(),
}, (t) => [
  index('alert_rules_due').on(t.evaluatedMinute),
  index('alert_rules_account').on(t.accountId, t.statId),
]);

/** Where notifications go. rule_id null: every rule of the account. */
export const alertChannels = mysqlTable('alert_channels', {
  id: int('id', { unsigned: true }).autoincrement().primaryKey(),
  accountId: int('account_id', { unsigned: true }).notNull(),
  ruleId: int('rule_id', { unsigned: true }),
  /** 'email' | 'webhook' | 'slack' */
  kind: varchar('kind', { length: 16 }).notNull(),
  /** An email address or a URL. */
  target: varchar('target', { length: 1024 }).notNull(),
  /** Webhook HMAC-SHA256 key: kept in clear because signing needs it. */
  secret: varchar('secret', { length: 255 }),
  createdMs: unixMs('created_ms').notNull(),
}, (t) => [index('alert_channels_account').on(t.accountId, t.ruleId)]);

/** The outbox: one row per transition, recorded in the same transaction as the new state. */
export const alertEvents = mysqlTable('alert_events', {
  id: int('id', { unsigned: true }).autoincrement().primaryKey(),
  ruleId: int('rule_id', { unsigned: true }).notNull(),
  accountId: int('account_id', { unsigned: true }).notNull(),
  seq: int('seq', { unsigned: true }).notNull(),
  fromState: tinyint('from_state', { unsigned: true }).notNull(),
  toState: tinyint('to_state', { unsigned: true }).notNull(),
  value: double('value'),
  minute: int('minute', { unsigned: true }).notNull(),
  createdMs: unixMs('created_ms').notNull(),
}, (t) => [
  uniqueIndex('alert_events_rule_seq').on(t.ruleId, t.seq),
  index('alert_events_account').on(t.accountId, t.id),
]);

/** One row per (transition, channel): its delivery state, shown in the UI. */
export const alertDeliveries = mysqlTable('alert_deliveries', {
  id: int('id', { unsigned: true }).autoincrement().primaryKey(),
  eventId: int('event_id', { unsigned: true }).notNull(),
  /** null: the account's own address, used when the rule has no channel. */
  channelId: int('channel_id', { unsigned: true }),
  kind: varchar('kind', { length: 16 }).notNull(),
  target: varchar('target', { length: 1024 }).notNull(),
  /** Sent with every attempt so receivers can drop repeats. */
  idempotencyKey: varchar('idempotency_key', { length: 64 }).notNull(),
  /** 'pending' | 'sent' | 'failed' */
  status: varchar('status', { length: 8 }).notNull().default('pending'),
  attempts: int('attempts', { unsigned: true }).notNull().default(0),
  nextAttemptMs: unixMs('next_attempt_ms').notNull(),
  leaseOwner: varchar('lease_owner', { length: 128 }),
  leaseUntilMs: unixMs('lease_until_ms'),
  lastError: varchar('last_error', { length: 1024 }),
  sentMs: unixMs('sent_ms'),
}, (t) => [
  uniqueIndex('alert_deliveries_key').on(t.idempotencyKey),
  index('alert_deliveries_due').on(t.status, t.nextAttemptMs),
  index('alert_deliveries_event').on(t.eventId),
]);

export const reportSubscriptions = mysqlTable('report_subscriptions', {
  id: int('id', { unsigned: true }).autoincrement().primaryKey(),
  accountId: int('account_id', { unsigned: true }).notNull(),
  email: varchar('email', { length: 255 }).notNull(),
  /** 'daily' | 'weekly' */
  period: varchar('period', { length: 8 }).notNull(),
  createdMs: unixMs('created_ms').notNull(),
  unsubscribedMs: unixMs('unsubscribed_ms'),
}, (t) => [uniqueIndex('report_subscriptions_who').on(t.accountId, t.email, t.period)]);

/** One row per (subscription, period): the unique key makes a report go out once. */
export const reportSends = mysqlTable('report_sends', {
  id: int('id', { unsigned: true }).autoincrement().primaryKey(),
  subscriptionId: int('subscription_id', { unsigned: true }).notNull(),
  /** Unix seconds of the reported period's start. */
  periodStart: int('period_start', { unsigned: true }).notNull(),
  /** 'sending' | 'sent' */
  status: varchar('status', { length: 8 }).notNull(),
  leaseOwner: varchar('lease_owner', { length: 128 }),
  leaseUntilMs: unixMs('lease_until_ms'),
  attempts: int('attempts', { unsigned: true }).notNull().default(0),
  lastError: varchar('last_error', { length: 1024 }),
  sentMs: unixMs('sent_ms'),
}, (t) => [uniqueIndex('report_sends_once').on(t.subscriptionId, t.periodStart)]);

// ---- web: the dashboard ---------------------------------------------------------------
/** The stats an account pinned to its dashboard, in the order it shows them. */
export const dashboardItems = mysqlTable('dashboard_items', {
  accountId: int('account_id', { unsigned: true }).notNull(),
  statId: int('stat_id', { unsigned: true }).notNull(),
  position: int('position', { unsigned: true }).notNull().default(0),
  createdAt: createdAt(),
}, (t) => [primaryKey({ columns: [t.accountId, t.statId] })]);
