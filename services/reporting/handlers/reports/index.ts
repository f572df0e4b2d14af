import type { ServiceImpl } from '@connectrpc/connect';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { ReportService } from '../../../../gen/osprey/v1/reporting_pb.js';
import { OspreyError } from '../../../kit/errors.js';
import { unsubscribe, verifyUnsubscribeToken } from '../../unsubscribe.js';
import { periodOfProto, subscriptionToProto } from './converters.js';

export interface ReportHandlerDeps {
  pool: Pool;
  now: () => number;
  unsubscribeSecret: string;
}

const MAX_SUBSCRIPTIONS_PER_ACCOUNT = 100;

export function reportHandler({ pool, now, unsubscribeSecret }: ReportHandlerDeps): ServiceImpl<typeof ReportService> {
  async function load(id: number) {
    const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM report_subscriptions WHERE id = ?', [id]);
    if (!rows[0]) throw new OspreyError('not_found', `subscription ${id} not found`);
    return rows[0];
  }

  return {
    async subscribe(req) {
      if (!req.accountId) throw new OspreyError('invalid', 'account_id is required');
      const email = req.email.trim().toLowerCase();
      if (!/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 255) throw new OspreyError('invalid', `"${req.email}" is not an email address`);
      const period = periodOfProto(req.period);
      const [[{ n }]] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM report_subscriptions WHERE account_id = ?', [req.accountId]);
      if (Number(n) >= MAX_SUBSCRIPTIONS_PER_ACCOUNT) throw new OspreyError('too_large', `an account may have at most ${MAX_SUBSCRIPTIONS_PER_ACCOUNT} report subscriptions`);
      // Opting in again reactivates the same row (same id: old unsubscribe links stay valid for it).
      await pool.query(
        `INSERT INTO report_subscriptions (account_id, email, period, created_ms) VALUES (?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE unsubscribed_ms = NULL, created_ms = IF(unsubscribed_ms IS NULL, created_ms, VALUES(created_ms))`,
        [req.accountId, email, period, now()],
      );
      const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM report_subscriptions WHERE account_id = ? AND email = ? AND period = ?', [req.accountId, email, period]);
      return { subscription: subscriptionToProto(rows[0]) };
    },

    async listSubscriptions(req) {
      const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM report_subscriptions WHERE account_id = ? ORDER BY id', [req.accountId]);
      return { subscriptions: rows.map(subscriptionToProto) };
    },

    async cancelSubscription(req) {
      const row = await load(req.id);
      if (Number(row.account_id) !== req.accountId) throw new OspreyError('not_found', `subscription ${req.id} not found`);
      await unsubscribe(pool, req.id, now());
      return { subscription: subscriptionToProto(await load(req.id)) };
    },

    async unsubscribe(req) {
      const id = verifyUnsubscribeToken(unsubscribeSecret, req.token);
      if (id === undefined) throw new OspreyError('invalid', 'this unsubscribe link is not valid');
      const { found, already } = await unsubscribe(pool, id, now());
      if (!found) throw new OspreyError('not_found', 'this subscription no longer exists');
      return { subscription: subscriptionToProto(await load(id)), already };
    },
  };
}
