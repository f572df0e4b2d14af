/**
 * Where parsed statsd samples go: each becomes a sample of one stat id in the aggregator.
 *
 * - A stat's statsd identity is (account, canonical name, kind): `a:1|c` and `a:1|ms` are two
 *   stats, as in Etsy statsd and as the `stats` table's unique key says.
 * - The account is the configured default one, or (STATSD_AUTH=token) the account of the
 *   line's statsgod token or of its connection's `AUTH` token.
 * - Known stats and tokens are in memory: a sample of one is handed to the aggregator at once,
 *   with no promise and no allocation. The first sample of an unknown stat or token creates a
 *   pending entry; it and every later sample of the same stat (or token) wait there, in arrival
 *   order, until one batched lookup (a few queries for everything that became unknown in that
 *   turn of the event loop) answers, then are replayed in order. So no sample is lost while a
 *   stat is created, and gauge deltas keep their order.
 * - The same table carries what the management interface shows for the current minute
 *   (counters, timers, last gauge values).
 */
import type { ReaderPriority } from './reader-priority.js';
import type { Pool } from 'mysql2/promise';
import { KIND } from '../../kit/db/schema.js';
import type { Logger } from '../../kit/log.js';
import { checkTokens, type TokenCheck } from '../../kit/tokens.js';
import type { BucketCache } from '../aggregator.js';
import type { SampleTarget } from '../durable.js';
import type { StatResolver } from '../stat-resolver.js';
import { BAD_LINE_REASONS, type BadLineReason, type NameRef, type StatsdKind, type StatsdSink } from './parse.js';

export const K_COUNTER = 0;
export const K_VALUE = 1;
export const K_GAUGE = 2;
export const K_SET = 3;
const DB_KIND = [KIND.counter, KIND.value, KIND.gauge, KIND.set];

/** Why a sample was not aggregated although its line parsed. */
export const DROP_REASONS = [
  /** more samples waiting for a lookup than STATSD_MAX_PENDING_SAMPLES */
  'backlog_full',
  /** the stat could not be created (or shutdown came before MySQL answered) */
  'unresolved',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** Why a line was refused for its token. `missing` is the parser's `no_token`. */
export const AUTH_FAILURE_REASONS = ['missing', 'unknown', 'revoked'] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/** Bad-line reasons as counted: the parser's (but `no_token`, an auth failure) and ours. */
export const COUNTED_BAD_LINE_REASONS = [...BAD_LINE_REASONS.filter((r) => r !== 'no_token'), 'name_too_long'] as const;
export type CountedBadLineReason = (typeof COUNTED_BAD_LINE_REASONS)[number];

/** The longest stat name the `stats.name` column holds, in characters. */
const MAX_NAME_CHARS = 255;
/** Timer values kept per stat per minute for the management interface (Etsy keeps them all). */
const RECENT_VALUES = 32;
/** A stat without a sample for this many minutes leaves memory (it is looked up again if it returns). */
const IDLE_MINUTES = 10;
/** Names per lookup query. */
const LOOKUP_CHUNK = 500;
/** Distinct tokens kept in memory; past this an unseen token is refused without a lookup. */
const MAX_TOKENS = 100_000;
/** How long after a failed lookup it is tried again. */
const RETRY_MS = 1000;
/** At most one log line per (listener, reason) this often. */
const LOG_EVERY_MS = 10_000;

/** Counters of one listener (udp, tcp, unix): plain numbers on the hot path, read by /metrics. */
export class ListenerStats {
  packets = 0;
  /** UDP: datagrams dropped because too many waited to be parsed. */
  packetsDropped = 0;
  /** UDP: bytes of datagrams waiting to be parsed (the UDP listener sets it). */
  queuedBytes: () => number = () => 0;
  /** UDP: how far into its queue datagrams ever reached, in bytes: the part of it in memory (the UDP listener sets it). */
  queueTouchedBytes: () => number = () => 0;
  /** UDP: times a queue touched far by a burst was replaced by a fresh one once quiet (its memory given back). */
  queueReleases = 0;
  /** UDP: datagrams the kernel dropped for the socket, full receive buffer (the UDP listener sets it). */
  kernelDrops: () => number = () => 0;
  bytes = 0;
  lines = 0;
  /** TCP, Unix: times a connection stopped reading while the write-ahead log caught up. */
  pauses = 0;
  connections = 0;
  bound = false;
  /** UDP: the reader thread's scheduling priority, once bound (reader-priority.ts). */
  readerPriority: ReaderPriority | null = null;
  readonly bad = Object.fromEntries(COUNTED_BAD_LINE_REASONS.map((r) => [r, 0])) as Record<CountedBadLineReason, number>;
  readonly auth = Object.fromEntries(AUTH_FAILURE_REASONS.map((r) => [r, 0])) as Record<AuthFailureReason, number>;
  readonly dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  constructor(readonly listener: string) {}
}

interface PendingSample {
  timeMs: number;
  value: number;
  rate: number;
  isDelta: boolean;
  member: string | null;
  first: boolean;
  stats: ListenerStats;
}

interface PendingTokenSample extends PendingSample {
  name: string;
  kind: number;
}

/**
 * One live stat: its id once known, the management view of its current minute, and (as a
 * BucketCache) the aggregator's note of its current bucket.
 */
export class StatEntry implements BucketCache {
  /** 0 while the lookup runs. */
  id = 0;
  /** Taken out of its account's map (idle, deleted, unresolved): a NameRef's memo of it is stale. */
  gone = false;
  bucketSlot = -1;
  bucketGen = -1;
  pending: PendingSample[] | null = [];
  /** The minute (unix ms / 60000) the fields below are about. */
  minute = 0;
  /** Counters: sum of value/rate this minute. Timers: samples (1/rate each) this minute. */
  count = 0;
  /** Gauges: the value as this replica knows it (kept across minutes, as Etsy keeps gauges). */
  gauge = 0;
  /** Timers: the first RECENT_VALUES values of this minute. */
  recent: number[] | null = null;
  constructor(
    readonly account: AccountStats,
    readonly kind: number,
    readonly name: string,
  ) {}

  noteValue(value: number): void {
    const r = (this.recent ??= []);
    if (r.length < RECENT_VALUES) r.push(value);
  }

  resetMinute(minute: number): void {
    this.minute = minute;
    this.count = 0;
    if (this.recent) this.recent.length = 0;
  }
}

/** The stats of one account, by kind and name. */
export class AccountStats {
  readonly byKind: Map<string, StatEntry>[] = [new Map(), new Map(), new Map(), new Map()];
  constructor(readonly id: number) {}

  /** Takes an entry out (a later sample of its name makes a new one). */
  forget(e: StatEntry): void {
    if (this.byKind[e.kind].get(e.name) === e) this.byKind[e.kind].delete(e.name);
    e.gone = true;
  }
}

const T_PENDING = 0;
const T_OK = 1;
const T_REFUSED = 2;

class TokenEntry {
  state = T_PENDING;
  account: AccountStats | null = null;
  refusal: AuthFailureReason = 'unknown';
  pending: PendingTokenSample[] | null = [];
  used = true;
  constructor(readonly token: string) {}
}

export interface IntakeOptions {
  target: SampleTarget;
  stats: StatResolver;
  pool: Pool;
  log: Logger;
  /** STATSD_AUTH=token: every line needs a token; otherwise lines go to `defaultAccount`. */
  tokenAuth: boolean;
  defaultAccount: number | undefined;
  maxPending: number;
  /** How often a token in use is checked again (a revoked one stops working within this). */
  tokenRecheckMs: number;
  now: () => number;
  /** Told each stat id as it becomes known, with its KIND (the aggregator sizes its buckets by kind). */
  onResolved?: (statId: number, kind: number) => void;
}

export class StatsdIntake {
  readonly tokenAuth: boolean;
  readonly defaultAccount: AccountStats | null;
  readonly startedMs: number;
  /** When the last packet or read arrived, for the management `stats` command. */
  lastMessageMs: number;
  badLinesSeen = 0;
  /** Etsy's own counters for the current minute: packets, metrics (lines) and bad lines. */
  etsyMinute = 0;
  etsyPackets = 0;
  etsyLines = 0;
  etsyBad = 0;
  /** Samples waiting for a lookup. */
  pendingSamples = 0;
  private readonly accounts = new Map<number, AccountStats>();
  private readonly tokens = new Map<string, TokenEntry>();
  private unresolvedStats: StatEntry[] = [];
  private unresolvedTokens: TokenEntry[] = [];
  private round: Promise<void> | null = null;
  private scheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly lastLog = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly o: IntakeOptions) {
    this.tokenAuth = o.tokenAuth;
    this.defaultAccount = !o.tokenAuth && o.defaultAccount !== undefined ? this.account(o.defaultAccount) : null;
    this.startedMs = o.now();
    this.lastMessageMs = this.startedMs;
    this.sweepTimer = setInterval(() => this.sweep(), 60_000);
    this.sweepTimer.unref();
    if (o.tokenAuth) {
      this.recheckTimer = setInterval(() => this.recheckTokens(), o.tokenRecheckMs);
      this.recheckTimer.unref();
    }
  }

  /** A sink for one listener's parser. */
  sink(stats: ListenerStats): ListenerSink {
    return new ListenerSink(this, stats);
  }

  /** Every account's stats, for the management interface. */
  allAccounts(): IterableIterator<AccountStats> {
    return this.accounts.values();
  }

  get liveStats(): number {
    let n = 0;
    for (const a of this.accounts.values()) for (const m of a.byKind) n += m.size;
    return n;
  }

  account(id: number): AccountStats {
    let a = this.accounts.get(id);
    if (!a) this.accounts.set(id, (a = new AccountStats(id)));
    return a;
  }

  /** Counts a read (a datagram or a stream chunk) of `lines` lines, for Etsy's counters. */
  noteRead(timeMs: number, minute: number, lines: number): void {
    this.lastMessageMs = timeMs;
    if (minute !== this.etsyMinute) {
      this.etsyMinute = minute;
      this.etsyPackets = this.etsyLines = this.etsyBad = 0;
    }
    this.etsyPackets++;
    this.etsyLines += lines;
  }

  noteBadLine(): void {
    this.badLinesSeen++;
    this.etsyBad++;
  }

  /** The entry a token names (pending if it was never seen). */
  tokenEntry(token: string): TokenEntry {
    let t = this.tokens.get(token);
    if (t) return t;
    t = new TokenEntry(token);
    if (this.tokens.size >= MAX_TOKENS) {
      // A flood of made-up tokens must not grow memory or hammer MySQL: refused unseen,
      // until the next recheck empties the refused ones.
      t.state = T_REFUSED;
      t.pending = null;
      return t;
    }
    this.tokens.set(token, t);
    this.unresolvedTokens.push(t);
    this.schedule();
    return t;
  }

  /** A new stat entry, pending its lookup; null (and counted) when the name cannot be a stat. */
  newEntry(account: AccountStats, kind: number, name: string, stats: ListenerStats, first: boolean): StatEntry | null {
    if (name.length > MAX_NAME_CHARS && [...name].length > MAX_NAME_CHARS) {
      if (first) {
        stats.bad.name_too_long++;
        this.noteBadLine();
        this.logOnce(stats.listener, 'name_too_long', () => ({ name: name.slice(0, 200) }), 'statsd stat name longer than 255 characters');
      }
      return null;
    }
    const e = new StatEntry(account, kind, name);
    account.byKind[kind].set(name, e);
    this.unresolvedStats.push(e);
    this.schedule();
    return e;
  }

  /** One sample of a known stat. `minute` is floor(timeMs / 60000). */
  apply(e: StatEntry, timeMs: number, minute: number, value: number, rate: number, isDelta: boolean, member: string | null): void {
    const target = this.o.target;
    if (minute > e.minute) e.resetMinute(minute);
    const current = minute === e.minute;
    // value * (1 / rate), not value / rate: the same doubles as Etsy's counters.
    const weight = 1 / rate;
    switch (e.kind) {
      case K_COUNTER:
        target.add(e.id, timeMs, value, weight, e);
        if (current) e.count += value * weight;
        break;
      case K_VALUE:
        target.add(e.id, timeMs, value, weight, e);
        if (current) {
          e.count += weight;
          e.noteValue(value);
        }
        break;
      case K_GAUGE:
        target.addGauge(e.id, timeMs, value, isDelta, e);
        e.gauge = isDelta ? e.gauge + value : value;
        break;
      default:
        target.addSet(e.id, timeMs, member!, e);
        if (current) e.count++;
    }
  }

  /** Keeps a sample of a stat being looked up. */
  pend(e: StatEntry, stats: ListenerStats, timeMs: number, value: number, rate: number, isDelta: boolean, member: string | null, first: boolean): void {
    if (this.pendingSamples >= this.o.maxPending || e.pending === null) {
      stats.dropped.backlog_full++;
      this.logOnce(stats.listener, 'backlog_full', () => ({ pending: this.pendingSamples }), 'statsd samples dropped: too many waiting for MySQL');
      return;
    }
    this.pendingSamples++;
    e.pending.push({ timeMs, value, rate, isDelta, member, first, stats });
  }

  /** Keeps a sample whose token is being checked. */
  pendToken(t: TokenEntry, stats: ListenerStats, name: string, kind: number, timeMs: number, value: number, rate: number, isDelta: boolean, member: string | null, first: boolean): void {
    if (this.pendingSamples >= this.o.maxPending || t.pending === null) {
      stats.dropped.backlog_full++;
      this.logOnce(stats.listener, 'backlog_full', () => ({ pending: this.pendingSamples }), 'statsd samples dropped: too many waiting for MySQL');
      return;
    }
    this.pendingSamples++;
    t.pending.push({ name, kind, timeMs, value, rate, isDelta, member, first, stats });
  }

  refused(t: TokenEntry, stats: ListenerStats, first: boolean): void {
    if (!first) return;
    stats.auth[t.refusal]++;
    this.logOnce(stats.listener, `auth_${t.refusal}`, () => ({ token: tokenHint(t.token) }), `statsd line refused: ${t.refusal} token`);
  }

  /** A sample of an account whose token is known: to its stat, now or once the stat is known. */
  route(account: AccountStats, stats: ListenerStats, name: string, kind: number, timeMs: number, minute: number, value: number, rate: number, isDelta: boolean, member: string | null, first: boolean): void {
    const e = account.byKind[kind].get(name) ?? this.newEntry(account, kind, name, stats, first);
    if (e === null) return;
    if (e.id !== 0) this.apply(e, timeMs, minute, value, rate, isDelta, member);
    else this.pend(e, stats, timeMs, value, rate, isDelta, member, first);
  }

  /**
   * Logs at most once per (listener, what) every 10 s, with how many were left out since.
   * `fields` is only called when a line is written.
   */
  logOnce(listener: string, what: string, fields: () => Record<string, unknown>, msg: string): void {
    const key = `${listener}:${what}`;
    const now = this.o.now();
    const last = this.lastLog.get(key);
    if (last && now - last.at < LOG_EVERY_MS) {
      last.suppressed++;
      return;
    }
    this.lastLog.set(key, { at: now, suppressed: 0 });
    this.o.log.warn({ listener, reason: what, ...fields(), suppressedSinceLast: last?.suppressed ?? 0 }, msg);
  }

  /** Resolves when nothing waits for a lookup, or after `deadlineMs` (false then). */
  async settle(deadlineMs: number): Promise<boolean> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      const idle = this.unresolvedStats.length === 0 && this.unresolvedTokens.length === 0 && !this.round;
      if (idle) return true;
      const left = until - Date.now();
      if (left <= 0) return false;
      if (!this.round) {
        // a round is about to start, or a retry waits on its timer: run it now
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        this.scheduled = false;
        this.startRound();
      }
      if (this.round) await Promise.race([this.round, sleep(left)]);
      // it failed: wait a little before trying again, MySQL may be down
      if (this.retryTimer) await sleep(Math.min(100, Math.max(0, until - Date.now())));
    }
  }

  /** Stops the timers; what still waits is dropped and counted. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweepTimer);
    clearInterval(this.recheckTimer);
    clearTimeout(this.retryTimer);
    let lost = 0;
    for (const e of this.unresolvedStats) lost += this.drop(e.pending, 'unresolved');
    for (const t of this.unresolvedTokens) lost += this.drop(t.pending, 'unresolved');
    this.unresolvedStats = [];
    this.unresolvedTokens = [];
    if (lost > 0) this.o.log.error({ samples: lost }, 'statsd samples still waiting for MySQL at shutdown were dropped');
  }

  private drop(pending: PendingSample[] | null, reason: DropReason): number {
    if (!pending) return 0;
    for (const p of pending) p.stats.dropped[reason]++;
    this.pendingSamples -= pending.length;
    return pending.length;
  }

  private schedule(): void {
    if (this.scheduled || this.round || this.retryTimer || this.closed) return;
    this.scheduled = true;
    // After the current read: everything that became unknown in it goes in one round.
    setImmediate(() => {
      if (!this.scheduled) return;
      this.scheduled = false;
      this.startRound();
    });
  }

  private startRound(): void {
    if (this.round || this.closed) return;
    if (this.unresolvedStats.length === 0 && this.unresolvedTokens.length === 0) return;
    this.round = this.lookupRound().then(
      () => {
        this.round = null;
        this.schedule();
      },
      (err) => {
        this.round = null;
        this.logOnce('intake', 'lookup_failed', () => ({ err, pending: this.pendingSamples }), 'statsd lookup failed; samples wait and it is retried');
        if (this.closed) return;
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.startRound();
        }, RETRY_MS);
        this.retryTimer.unref();
      },
    );
  }

  /** One round: the tokens that became unknown, then the stats. Throws to be retried. */
  private async lookupRound(): Promise<void> {
    if (this.unresolvedTokens.length > 0) {
      const batch = this.unresolvedTokens;
      this.unresolvedTokens = [];
      let checks: Map<string, TokenCheck>;
      try {
        checks = await checkTokens(this.o.pool, 'statsd_tokens', batch.map((t) => t.token));
      } catch (err) {
        this.unresolvedTokens = batch.concat(this.unresolvedTokens);
        throw err;
      }
      for (const t of batch) this.settleToken(t, checks.get(t.token) ?? { refused: 'unknown' });
    }
    while (this.unresolvedStats.length > 0) {
      const batch = this.unresolvedStats;
      this.unresolvedStats = [];
      const groups = new Map<string, StatEntry[]>();
      for (const e of batch) {
        const key = `${e.account.id}:${e.kind}`;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = []));
        g.push(e);
      }
      const left = [...groups.values()];
      while (left.length > 0) {
        const g = left[0];
        const chunk = g.slice(0, LOOKUP_CHUNK);
        let ids: Map<string, number>;
        try {
          ids = await this.o.stats.resolveKind(chunk[0].account.id, DB_KIND[chunk[0].kind], chunk.map((e) => e.name));
        } catch (err) {
          this.unresolvedStats = left.flat().concat(this.unresolvedStats);
          throw err;
        }
        for (const e of chunk) this.settleStat(e, ids.get(e.name));
        if (chunk.length === g.length) left.shift();
        else left[0] = g.slice(LOOKUP_CHUNK);
      }
    }
  }

  private settleStat(e: StatEntry, id: number | undefined): void {
    const pending = e.pending;
    e.pending = null;
    if (id === undefined) {
      e.account.forget(e);
      this.drop(pending, 'unresolved');
      this.o.log.warn({ name: e.name.slice(0, 200) }, 'statsd stat could not be created; its samples were dropped');
      return;
    }
    e.id = id;
    this.o.onResolved?.(id, DB_KIND[e.kind]);
    if (!pending) return;
    this.pendingSamples -= pending.length;
    for (const p of pending) this.apply(e, p.timeMs, Math.floor(p.timeMs / 60_000), p.value, p.rate, p.isDelta, p.member);
  }

  private settleToken(t: TokenEntry, check: TokenCheck): void {
    const pending = t.pending;
    t.pending = null;
    if ('accountId' in check) {
      t.state = T_OK;
      t.account = this.account(check.accountId);
    } else {
      t.state = T_REFUSED;
      t.refusal = check.refused;
    }
    if (!pending) return;
    this.pendingSamples -= pending.length;
    for (const p of pending) {
      if (t.account) this.route(t.account, p.stats, p.name, p.kind, p.timeMs, Math.floor(p.timeMs / 60_000), p.value, p.rate, p.isDelta, p.member, p.first);
      else this.refused(t, p.stats, p.first);
    }
  }

  /** Checks again the tokens used since the last check (revocations), forgets the rest. */
  private recheckTokens(): void {
    const again: TokenEntry[] = [];
    for (const [token, t] of this.tokens) {
      if (t.state === T_PENDING) continue;
      if (t.state === T_OK && t.used) {
        t.used = false;
        again.push(t);
      } else {
        this.tokens.delete(token); // refused or idle: looked up afresh if it comes back
      }
    }
    if (again.length === 0) return;
    checkTokens(this.o.pool, 'statsd_tokens', again.map((t) => t.token)).then(
      (checks) => {
        for (const t of again) {
          const c = checks.get(t.token);
          if (c && 'refused' in c) {
            t.state = T_REFUSED;
            t.refusal = c.refused;
            t.account = null;
          }
        }
      },
      (err) => this.o.log.warn({ err }, 'statsd token recheck failed; tokens stay as they were'),
    );
  }

  /** Forgets stats idle for IDLE_MINUTES (memory follows the live stats, not every stat ever seen). */
  private sweep(): void {
    const minute = Math.floor(this.o.now() / 60_000);
    for (const a of this.accounts.values()) {
      for (const m of a.byKind) {
        for (const e of m.values()) if (e.id !== 0 && e.minute < minute - IDLE_MINUTES) a.forget(e);
      }
    }
  }
}

/** The sink a listener's parsers feed; `begin` is called before each read is parsed. */
export class ListenerSink implements StatsdSink {
  timeMs = 0;
  minute = 0;
  /** The connection's `AUTH` token (TCP, Unix), null otherwise. */
  connToken: string | null = null;
  /** Who sent the read being parsed (an address), for the bad-line log. */
  peer: unknown = null;

  constructor(
    private readonly intake: StatsdIntake,
    readonly stats: ListenerStats,
  ) {}

  begin(timeMs: number, connToken: string | null, peer: unknown): void {
    this.timeMs = timeMs;
    this.minute = Math.floor(timeMs / 60_000);
    this.connToken = connToken;
    this.peer = peer;
  }

  sample(name: string, kind: StatsdKind, value: number, rate: number, isDelta: boolean, member: string | null, token: string | null, first: boolean, ref?: NameRef): void {
    const intake = this.intake;
    const k = kind === 'counter' ? K_COUNTER : kind === 'value' ? K_VALUE : kind === 'gauge' ? K_GAUGE : K_SET;
    let account: AccountStats;
    if (intake.tokenAuth) {
      const tok = token ?? this.connToken;
      if (tok === null) return; // not reached: the token-mode parser refuses lines without one
      const t = intake.tokenEntry(tok);
      if (t.state === T_OK) {
        t.used = true;
        account = t.account!;
      } else if (t.state === T_PENDING) {
        intake.pendToken(t, this.stats, name, k, this.timeMs, value, rate, isDelta, member, first);
        return;
      } else {
        intake.refused(t, this.stats, first);
        return;
      }
    } else {
      account = intake.defaultAccount!;
    }
    // The parser's NameRef remembers the entry its name led to last (a name usually has one
    // kind and one account): a map lookup (a cache miss with many live stats) only when not.
    const memo = ref?.memo as StatEntry | undefined;
    let e: StatEntry | null;
    if (memo !== undefined && memo.account === account && memo.kind === k && !memo.gone) e = memo;
    else {
      e = account.byKind[k].get(name) ?? intake.newEntry(account, k, name, this.stats, first);
      if (e === null) return;
      if (ref) ref.memo = e;
    }
    if (e.id !== 0) intake.apply(e, this.timeMs, this.minute, value, rate, isDelta, member);
    else intake.pend(e, this.stats, this.timeMs, value, rate, isDelta, member, first);
  }

  bad(reason: BadLineReason, buf: Buffer, start: number, end: number): void {
    const stats = this.stats;
    if (reason === 'no_token') {
      stats.auth.missing++;
      this.intake.logOnce(stats.listener, 'auth_missing', () => ({ peer: peerText(this.peer) }), 'statsd line refused: no token');
      return;
    }
    stats.bad[reason]++;
    this.intake.noteBadLine();
    this.intake.logOnce(
      stats.listener,
      reason,
      () => ({ peer: peerText(this.peer), line: lineSample(buf, start, end, this.intake.tokenAuth && this.connToken === null) }),
      'statsd bad line',
    );
  }
}

/** The first 200 bytes of a bad line, with a statsgod token (a secret) masked. */
function lineSample(buf: Buffer, start: number, end: number, tokenPrefixed: boolean): string {
  let s = start;
  let prefix = '';
  if (tokenPrefixed) {
    const dot = buf.indexOf(46, start);
    if (dot >= 0 && dot < end) {
      s = dot;
      prefix = '***';
    }
  }
  return prefix + buf.toString('utf8', s, Math.min(end, s + 200));
}

/** Enough of a token to tell which one it was, never the secret part. */
function tokenHint(token: string): string {
  return token.length > 8 ? `${token.slice(0, 6)}…` : '…';
}

function peerText(peer: unknown): string | undefined {
  if (peer === null || peer === undefined) return undefined;
  if (typeof peer === 'string') return peer;
  const p = peer as { address?: string; port?: number };
  return p.address !== undefined ? `${p.address}:${p.port ?? ''}` : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
