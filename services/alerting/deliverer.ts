import { randomBytes } from 'node:crypto';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { Counter, type Registry } from 'prom-client';
import { ALERT_STATE, KIND } from '../kit/db/schema.js';
import type { Logger } from '../kit/log.js';
import type { Mailer } from '../kit/mailer.js';
import { alertMail, slackBody, webhookBody, type Notice } from './channels/message.js';
import { IDEMPOTENCY_HEADER, postJson, SIGNATURE_HEADER, signWebhook } from './channels/webhook.js';
import { ruleSpecOfRow, type RuleRow } from './rule-rows.js';
import { describeRule } from './rules.js';

export interface DelivererOptions {
  pool: Pool;
  mailer: Mailer;
  now: () => number;
  log: Logger;
  metrics: Registry;
  instance: string;
  /** After this many failed attempts a delivery is marked failed. */
  maxAttempts: number;
  /** Wait after the first failure; doubles with each further one, up to an hour. */
  backoffMs: number;
  /** How long a claimed delivery is ours; past it another replica may take it over. */
  leaseMs: number;
  timeoutMs: number;
  batchSize: number;
  publicUrl: string;
}

export function backoffAfter(attempts: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempts - 1), 3600_000);
}

/**
 * Sends what the evaluator recorded in alert_deliveries. A replica leases due rows
 * (UPDATE ... LIMIT, so two replicas never hold the same row), sends, and marks each sent,
 * retried later or failed. A replica that dies after sending and before marking leaves the
 * lease to run out and the row is sent again: delivery is at least once, and every attempt
 * carries the same idempotency key (webhook header, mail Message-ID).
 */
export class AlertDeliverer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private claimSeq = 0;
  private readonly outcomes: Counter;

  constructor(private readonly opts: DelivererOptions) {
    this.outcomes = new Counter({ name: 'osprey_alert_deliveries_total', help: 'Delivery attempts by channel and outcome', labelNames: ['kind', 'outcome'], registers: [opts.metrics] });
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.tick().catch((err) => this.opts.log.error({ err }, 'alert delivery failed')), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  /** Sends every due delivery; concurrent calls share one run. Returns the attempts made. */
  tick(): Promise<number> {
    this.running ??= this.deliverDue().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async deliverDue(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.deliverBatch();
      total += n;
      if (n < this.opts.batchSize) return total;
    }
  }

  private async deliverBatch(): Promise<number> {
    const { pool } = this.opts;
    const nowMs = this.opts.now();
    const lease = `${this.opts.instance}#${++this.claimSeq}:${randomBytes(3).toString('hex')}`;
    const [claimed] = await pool.query<ResultSetHeader>(
      `UPDATE alert_deliveries SET lease_owner = ?, lease_until_ms = ?
       WHERE status = 'pending' AND next_attempt_ms <= ? AND (lease_until_ms IS NULL OR lease_until_ms < ?)
       ORDER BY id LIMIT ?`,
      [lease, nowMs + this.opts.leaseMs, nowMs, nowMs, this.opts.batchSize],
    );
    if (claimed.affectedRows === 0) return 0;
    const [rows] = await pool.query<RowDataPacket[]>(
      `SELECT d.id AS delivery_id, d.kind AS channel_kind, d.target, d.channel_id, d.idempotency_key, d.attempts,
              c.id AS channel_found, c.secret,
              e.id AS event_id, e.rule_id, e.to_state, e.value, e.created_ms AS event_ms,
              r.stat_id, r.kind, r.window_sec, r.operator, r.threshold, r.percentage, r.delta_sec,
              s.name AS stat_name, s.kind AS stat_kind
       FROM alert_deliveries d
       JOIN alert_events e ON e.id = d.event_id
       LEFT JOIN alert_channels c ON c.id = d.channel_id
       LEFT JOIN alert_rules r ON r.id = e.rule_id
       LEFT JOIN stats s ON s.id = r.stat_id
       WHERE d.lease_owner = ? AND d.status = 'pending'`,
      [lease],
    );
    // Sent one after another: a batch is small, and order per rule is kept.
    for (const row of rows) await this.deliverOne(row, lease);
    return claimed.affectedRows;
  }

  private async deliverOne(row: RowDataPacket, lease: string): Promise<void> {
    const { pool } = this.opts;
    const kind = String(row.channel_kind);
    const attempts = Number(row.attempts) + 1;
    try {
      if (row.channel_id !== null && row.channel_found === null) throw new Error('the channel was deleted');
      if (kind === 'webhook' && !row.secret) throw new Error('the webhook channel has no signing secret');
      if (row.stat_kind === null) throw new Error('the rule or its stat was deleted');
      const notice = this.noticeOf(row);
      const target = String(row.target);
      if (kind === 'email') {
        await this.opts.mailer.send(alertMail(notice, target));
      } else if (kind === 'webhook') {
        const body = webhookBody(notice);
        const t = Math.floor(this.opts.now() / 1000);
        await postJson(target, body, { [SIGNATURE_HEADER]: signWebhook(String(row.secret), t, body), [IDEMPOTENCY_HEADER]: notice.idempotencyKey }, this.opts.timeoutMs);
      } else if (kind === 'slack') {
        await postJson(target, slackBody(notice), { [IDEMPOTENCY_HEADER]: notice.idempotencyKey }, this.opts.timeoutMs);
      } else {
        throw new Error(`unknown channel kind ${kind}`);
      }
      await pool.query(
        `UPDATE alert_deliveries SET status = 'sent', attempts = ?, sent_ms = ?, last_error = NULL, lease_owner = NULL, lease_until_ms = NULL WHERE id = ? AND lease_owner = ?`,
        [attempts, this.opts.now(), row.delivery_id, lease],
      );
      this.outcomes.inc({ kind, outcome: 'sent' });
    } catch (err) {
      const message = String((err as Error).message ?? err).slice(0, 1000);
      const failed = attempts >= this.opts.maxAttempts;
      await pool.query(
        `UPDATE alert_deliveries SET status = ?, attempts = ?, next_attempt_ms = ?, last_error = ?, lease_owner = NULL, lease_until_ms = NULL WHERE id = ? AND lease_owner = ?`,
        [failed ? 'failed' : 'pending', attempts, this.opts.now() + backoffAfter(attempts, this.opts.backoffMs), message, row.delivery_id, lease],
      );
      this.outcomes.inc({ kind, outcome: failed ? 'failed' : 'retry' });
      this.opts.log.warn({ delivery: row.delivery_id, kind, attempts, failed, error: message }, failed ? 'alert delivery failed for good' : 'alert delivery failed, will retry');
    }
  }

  private noticeOf(row: RowDataPacket): Notice {
    const spec = ruleSpecOfRow(row as unknown as RuleRow);
    const statName = String(row.stat_name);
    return {
      idempotencyKey: String(row.idempotency_key),
      eventId: Number(row.event_id),
      ruleId: Number(row.rule_id),
      statId: spec.statId,
      statName,
      description: describeRule(spec, statName, Number(row.stat_kind) === KIND.counter),
      firing: Number(row.to_state) === ALERT_STATE.firing,
      value: row.value === null ? undefined : Number(row.value),
      atMs: Number(row.event_ms),
      url: `${this.opts.publicUrl.replace(/\/$/, '')}/alerts/${Number(row.rule_id)}`,
    };
  }
}
