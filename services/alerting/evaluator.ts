import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { Counter, type Registry } from 'prom-client';
import { ALERT_STATE } from '../kit/db/schema.js';
import type { Logger } from '../kit/log.js';
import { judge } from './condition.js';
import { ruleSpecOfRow, type RuleRow } from './rule-rows.js';
import { windowFigures } from './window-figures.js';

export interface EvaluatorOptions {
  pool: Pool;
  now: () => number;
  log: Logger;
  metrics: Registry;
  /** Rules claimed (and locked) per transaction. */
  batchSize: number;
  /**
   * Fault injection for tests: after claiming a batch, log "rules claimed" and wait this
   * long before evaluating, so a test can kill the process while it holds the rules.
   */
  pauseAfterClaimMs?: number;
}

/** The idempotency key of one transition's delivery to one channel (null: the account's address). */
export function deliveryKey(ruleId: number, seq: number, channelId: number | null): string {
  return `osprey-alert-${ruleId}-${seq}-${channelId ?? 'account'}`;
}

/**
 * Evaluates every rule once per minute across all replicas. Each batch is one
 * transaction: `SELECT ... FOR UPDATE SKIP LOCKED` claims rules not yet evaluated this
 * minute (rules another replica holds are skipped, not waited for), and the new state, the
 * minute marker, the transition (alert_events, unique on rule and sequence) and its
 * deliveries are committed together. A replica that dies mid-batch commits nothing; its
 * connection closes, InnoDB releases the locks, and the next tick of any live replica
 * (every few seconds) takes the rules over, still within the minute.
 */
export class AlertEvaluator {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private readonly evaluated: Counter;
  private readonly transitions: Counter;

  constructor(private readonly opts: EvaluatorOptions) {
    this.evaluated = new Counter({ name: 'osprey_alert_evaluations_total', help: 'Rule evaluations committed by this replica', registers: [opts.metrics] });
    this.transitions = new Counter({ name: 'osprey_alert_transitions_total', help: 'Rule state changes recorded by this replica', labelNames: ['to'], registers: [opts.metrics] });
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.tick().catch((err) => this.opts.log.error({ err }, 'alert evaluation failed')), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Waits for a running tick (for shutdown). */
  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  /** Evaluates every rule still due this minute; concurrent calls share one run. Returns how many this replica evaluated. */
  tick(): Promise<number> {
    this.running ??= this.evaluateDue().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async evaluateDue(): Promise<number> {
    const nowMs = this.opts.now();
    const minute = Math.floor(nowMs / 60_000);
    let total = 0;
    for (;;) {
      const n = await this.evaluateBatch(minute, nowMs);
      total += n;
      if (n < this.opts.batchSize) return total;
    }
  }

  private async evaluateBatch(minute: number, nowMs: number): Promise<number> {
    const conn = await this.opts.pool.getConnection();
    try {
      // A replica that stalls (not dead, so its connection stays open) must not hold rules
      // for long: MariaDB aborts a transaction idle this long. MySQL lacks it; harmless.
      await conn.query('SET SESSION idle_transaction_timeout = 30').catch(() => {});
      await conn.beginTransaction();
      const [rules] = await conn.query<RowDataPacket[]>(
        'SELECT * FROM alert_rules WHERE evaluated_minute < ? ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED',
        [minute, this.opts.batchSize],
      );
      if (rules.length === 0) {
        await conn.commit();
        return 0;
      }
      if (this.opts.pauseAfterClaimMs) {
        this.opts.log.warn({ rules: rules.map((r) => r.id), minute, pauseMs: this.opts.pauseAfterClaimMs }, 'rules claimed');
        await new Promise((r) => setTimeout(r, this.opts.pauseAfterClaimMs));
      }
      const statIds = [...new Set(rules.map((r) => Number(r.stat_id)))];
      const [statRows] = await conn.query<RowDataPacket[]>('SELECT id, kind, deleted_at FROM stats WHERE id IN (?)', [statIds]);
      const stats = new Map(statRows.map((s) => [Number(s.id), { kind: Number(s.kind), trashed: s.deleted_at !== null }]));
      for (const r of rules) await this.evaluateRule(conn, r as RuleRow, stats.get(Number(r.stat_id)), minute, nowMs);
      await conn.commit();
      this.evaluated.inc(rules.length);
      return rules.length;
    } catch (err) {
      await conn.rollback().catch(() => {});
      throw err;
    } finally {
      conn.release();
    }
  }

  private async evaluateRule(conn: PoolConnection, row: RuleRow, stat: { kind: number; trashed: boolean } | undefined, minute: number, nowMs: number): Promise<void> {
    const spec = ruleSpecOfRow(row);
    // The window ends with the current minute: points of this minute already flushed count.
    const endSec = (minute + 1) * 60;
    const nowSec = Math.floor(nowMs / 1000);
    let firing: boolean | undefined;
    let value: number | undefined;
    if (stat && !stat.trashed) {
      const current = await windowFigures(conn, spec.statId, stat.kind, endSec, spec.windowSec, nowSec);
      const previous = spec.kind === 'delta' ? await windowFigures(conn, spec.statId, stat.kind, endSec - spec.deltaSec, spec.windowSec, nowSec) : undefined;
      ({ firing, value } = judge(spec, current, previous));
    }
    const was = Number(row.state);
    const next = firing === undefined ? was : firing ? ALERT_STATE.firing : ALERT_STATE.ok;
    const storedValue = value !== undefined && Number.isFinite(value) ? value : null;
    if (next === was) {
      await conn.query(
        'UPDATE alert_rules SET evaluated_minute = ?, evaluations = evaluations + 1, last_value = ?, last_evaluated_ms = ? WHERE id = ?',
        [minute, storedValue, nowMs, row.id],
      );
      return;
    }
    const seq = Number(row.transition_seq) + 1;
    await conn.query(
      `UPDATE alert_rules SET evaluated_minute = ?, evaluations = evaluations + 1, last_value = ?, last_evaluated_ms = ?,
         state = ?, state_since_ms = ?, transition_seq = ? WHERE id = ?`,
      [minute, storedValue, nowMs, next, nowMs, seq, row.id],
    );
    // (rule_id, seq) is unique: the same transition cannot be recorded twice.
    const [event] = await conn.query<ResultSetHeader>(
      'INSERT INTO alert_events (rule_id, account_id, seq, from_state, to_state, value, minute, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [row.id, row.account_id, seq, was, next, storedValue, minute, nowMs],
    );
    this.transitions.inc({ to: next === ALERT_STATE.firing ? 'firing' : 'ok' });
    if (row.muted) return;
    const [channels] = await conn.query<RowDataPacket[]>(
      'SELECT id, kind, target FROM alert_channels WHERE account_id = ? AND (rule_id IS NULL OR rule_id = ?) ORDER BY id',
      [row.account_id, row.id],
    );
    let targets = channels.map((c) => ({ channelId: Number(c.id) as number | null, kind: String(c.kind), target: String(c.target) }));
    if (targets.length === 0) {
      // Like StatHat: with no channel set up, alerts go to the account's address.
      const [acct] = await conn.query<RowDataPacket[]>('SELECT email FROM accounts WHERE id = ?', [row.account_id]);
      if (acct[0]) targets = [{ channelId: null, kind: 'email', target: String(acct[0].email) }];
    }
    if (targets.length === 0) return;
    await conn.query(
      'INSERT INTO alert_deliveries (event_id, channel_id, kind, target, idempotency_key, status, next_attempt_ms) VALUES ?',
      [targets.map((t) => [event.insertId, t.channelId, t.kind, t.target, deliveryKey(row.id, seq, t.channelId), 'pending', nowMs])],
    );
  }
}
