import { randomBytes } from 'node:crypto';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../kit/log.js';
import type { Mailer } from '../kit/mailer.js';
import { lastCompletePeriod, type PeriodName, type PeriodRange } from './periods.js';
import { composeReport, reportMail } from './report.js';
import type { SparklineRenderer } from './sparkline.js';
import { signUnsubscribeToken } from './unsubscribe.js';

export interface ReporterOptions {
  pool: Pool;
  mailer: Mailer;
  renderer: SparklineRenderer;
  now: () => number;
  log: Logger;
  metrics: Registry;
  instance: string;
  unsubscribeSecret: string;
  publicUrl: string;
  maxStats: number;
  /** How long a claimed report is ours; past it another replica may send it. */
  leaseMs: number;
  maxAttempts: number;
}

/** The link in every report; the web app serves it (GET: confirm page, POST: one-click). */
export function unsubscribeUrl(publicUrl: string, token: string): string {
  return `${publicUrl.replace(/\/$/, '')}/reports/unsubscribe?token=${encodeURIComponent(token)}`;
}

/**
 * Sends each opted-in person one report per period. The claim is an INSERT into
 * report_sends, unique on (subscription, period start): of all replicas exactly one
 * inserts the row, and it sends. A claim whose holder died is taken over once its lease
 * ends (the mail may then go twice if the holder died between sending and marking it
 * sent; the Message-ID is the same, so mail clients show one).
 */
export class ReportSender {
  private running: Promise<number> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly sent: Counter;

  constructor(private readonly opts: ReporterOptions) {
    this.sent = new Counter({ name: 'osprey_reports_total', help: 'Report mails by period and outcome', labelNames: ['period', 'outcome'], registers: [opts.metrics] });
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.tick().catch((err) => this.opts.log.error({ err }, 'report run failed')), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async idle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  /** Sends every report due now; concurrent calls share one run. Returns how many this replica sent. */
  tick(): Promise<number> {
    this.running ??= (async () => {
      let n = 0;
      for (const period of ['daily', 'weekly'] as const) n += await this.sendDue(period);
      return n;
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async sendDue(period: PeriodName): Promise<number> {
    const { pool } = this.opts;
    const nowMs = this.opts.now();
    const range = lastCompletePeriod(period, nowMs);
    // Subscribers who opted in before the period ended, without a finished or live claim.
    const [due] = await pool.query<RowDataPacket[]>(
      `SELECT s.id, s.account_id, s.email, r.id AS send_id
       FROM report_subscriptions s
       LEFT JOIN report_sends r ON r.subscription_id = s.id AND r.period_start = ?
       WHERE s.period = ? AND s.unsubscribed_ms IS NULL AND s.created_ms < ?
         AND (r.id IS NULL OR (r.status = 'sending' AND r.lease_until_ms < ?))
       ORDER BY s.id LIMIT 500`,
      [range.startSec, period, range.endSec * 1000, nowMs],
    );
    let sent = 0;
    for (const sub of due) {
      const lease = `${this.opts.instance}:${randomBytes(4).toString('hex')}`;
      if (!(await this.claim(sub.send_id === null ? undefined : Number(sub.send_id), Number(sub.id), range, lease, nowMs))) continue;
      if (await this.sendOne(sub, range, lease)) sent++;
    }
    return sent;
  }

  /** True when this replica now holds the (subscription, period) report. */
  private async claim(sendId: number | undefined, subscriptionId: number, range: PeriodRange, lease: string, nowMs: number): Promise<boolean> {
    if (sendId === undefined) {
      const [res] = await this.opts.pool.query<ResultSetHeader>(
        `INSERT IGNORE INTO report_sends (subscription_id, period_start, status, lease_owner, lease_until_ms, attempts) VALUES (?, ?, 'sending', ?, ?, 1)`,
        [subscriptionId, range.startSec, lease, nowMs + this.opts.leaseMs],
      );
      return res.affectedRows === 1;
    }
    const [res] = await this.opts.pool.query<ResultSetHeader>(
      `UPDATE report_sends SET lease_owner = ?, lease_until_ms = ?, attempts = attempts + 1 WHERE id = ? AND status = 'sending' AND lease_until_ms < ?`,
      [lease, nowMs + this.opts.leaseMs, sendId, nowMs],
    );
    return res.affectedRows === 1;
  }

  private async sendOne(sub: RowDataPacket, range: PeriodRange, lease: string): Promise<boolean> {
    const { pool } = this.opts;
    const subscriptionId = Number(sub.id);
    try {
      const report = await composeReport(pool, Number(sub.account_id), range, this.opts.maxStats);
      const mail = await reportMail(report, {
        to: String(sub.email),
        renderer: this.opts.renderer,
        unsubscribeUrl: unsubscribeUrl(this.opts.publicUrl, signUnsubscribeToken(this.opts.unsubscribeSecret, subscriptionId)),
        appUrl: this.opts.publicUrl,
        messageId: `osprey-report-${subscriptionId}-${range.period}-${range.startSec}@osprey`,
      });
      await this.opts.mailer.send(mail);
      await pool.query(
        `UPDATE report_sends SET status = 'sent', sent_ms = ?, last_error = NULL, lease_owner = NULL, lease_until_ms = NULL WHERE subscription_id = ? AND period_start = ? AND lease_owner = ?`,
        [this.opts.now(), subscriptionId, range.startSec, lease],
      );
      this.sent.inc({ period: range.period, outcome: 'sent' });
      return true;
    } catch (err) {
      const message = String((err as Error).message ?? err).slice(0, 1000);
      // Left 'sending' with a lease of a minute: then any replica tries again, up to maxAttempts.
      await pool.query(
        `UPDATE report_sends SET status = IF(attempts >= ?, 'failed', 'sending'), last_error = ?, lease_until_ms = ? WHERE subscription_id = ? AND period_start = ? AND lease_owner = ?`,
        [this.opts.maxAttempts, message, this.opts.now() + 60_000, subscriptionId, range.startSec, lease],
      ).catch(() => {});
      this.sent.inc({ period: range.period, outcome: 'error' });
      this.opts.log.warn({ subscriptionId, period: range.period, error: message }, 'report mail failed');
      return false;
    }
  }
}
