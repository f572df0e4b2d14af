import { randomBytes } from 'node:crypto';
import type { ServiceImpl } from '@connectrpc/connect';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { AlertService } from '../../../../gen/osprey/v1/alerting_pb.js';
import { OspreyError } from '../../../kit/errors.js';
import { ruleColumnsOfSpec, type RuleRow } from '../../rule-rows.js';
import type { RuleSpec } from '../../rules.js';
import { channelKindOfProto, channelToProto, eventToProto, ruleToProto, specOfInput } from './converters.js';

export interface AlertHandlerDeps {
  pool: Pool;
  now: () => number;
}

const MAX_RULES_PER_ACCOUNT = 1000;
const MAX_CHANNELS_PER_ACCOUNT = 100;

function requireAccount(accountId: number): void {
  if (!accountId) throw new OspreyError('invalid', 'account_id is required');
}

export function alertHandler({ pool, now }: AlertHandlerDeps): ServiceImpl<typeof AlertService> {
  async function statOf(accountId: number, statId: number): Promise<{ name: string; kind: number }> {
    const [rows] = await pool.query<RowDataPacket[]>('SELECT name, kind FROM stats WHERE id = ? AND account_id = ? AND deleted_at IS NULL', [statId, accountId]);
    if (!rows[0]) throw new OspreyError('not_found', `stat ${statId} not found`);
    return { name: String(rows[0].name), kind: Number(rows[0].kind) };
  }

  async function loadRule(accountId: number, id: number) {
    requireAccount(accountId);
    const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM alert_rules WHERE id = ? AND account_id = ?', [id, accountId]);
    if (!rows[0]) throw new OspreyError('not_found', `alert ${id} not found`);
    const rule = rows[0] as RuleRow;
    const [stats] = await pool.query<RowDataPacket[]>('SELECT name, kind FROM stats WHERE id = ?', [rule.stat_id]);
    return ruleToProto(rule, stats[0] ? { name: String(stats[0].name), kind: Number(stats[0].kind) } : undefined);
  }

  async function checkSpec(accountId: number, spec: RuleSpec): Promise<void> {
    await statOf(accountId, spec.statId);
  }

  return {
    async createAlertRule(req) {
      requireAccount(req.accountId);
      const spec = specOfInput(req.input);
      await checkSpec(req.accountId, spec);
      const [[{ n }]] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM alert_rules WHERE account_id = ?', [req.accountId]);
      if (Number(n) >= MAX_RULES_PER_ACCOUNT) throw new OspreyError('too_large', `an account may have at most ${MAX_RULES_PER_ACCOUNT} alerts`);
      const t = now();
      const [res] = await pool.query<ResultSetHeader>('INSERT INTO alert_rules SET ?', [
        { account_id: req.accountId, ...ruleColumnsOfSpec(spec), state_since_ms: t, created_ms: t, updated_ms: t },
      ]);
      return { rule: await loadRule(req.accountId, res.insertId) };
    },

    async getAlertRule(req) {
      return { rule: await loadRule(req.accountId, req.id) };
    },

    async listAlertRules(req) {
      requireAccount(req.accountId);
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT r.*, s.name AS stat_name, s.kind AS stat_kind FROM alert_rules r LEFT JOIN stats s ON s.id = r.stat_id
         WHERE r.account_id = ? AND (? = 0 OR r.stat_id = ?) ORDER BY r.id`,
        [req.accountId, req.statId, req.statId],
      );
      return { rules: rows.map((r) => ruleToProto(r as RuleRow, r.stat_name === null ? undefined : { name: String(r.stat_name), kind: Number(r.stat_kind) })) };
    },

    async updateAlertRule(req) {
      await loadRule(req.accountId, req.id);
      const spec = specOfInput(req.input);
      await checkSpec(req.accountId, spec);
      const t = now();
      // A new condition starts from ok: a transition recorded under the old one would
      // mislead. evaluated_minute = 0 makes the next tick evaluate it at once.
      await pool.query(
        'UPDATE alert_rules SET ?, state = 0, state_since_ms = ?, evaluated_minute = 0, last_value = NULL, updated_ms = ? WHERE id = ? AND account_id = ?',
        [ruleColumnsOfSpec(spec), t, t, req.id, req.accountId],
      );
      return { rule: await loadRule(req.accountId, req.id) };
    },

    async muteAlertRule(req) {
      await loadRule(req.accountId, req.id);
      await pool.query('UPDATE alert_rules SET muted = ?, updated_ms = ? WHERE id = ? AND account_id = ?', [req.muted, now(), req.id, req.accountId]);
      return { rule: await loadRule(req.accountId, req.id) };
    },

    async deleteAlertRule(req) {
      requireAccount(req.accountId);
      const [res] = await pool.query<ResultSetHeader>('DELETE FROM alert_rules WHERE id = ? AND account_id = ?', [req.id, req.accountId]);
      if (res.affectedRows === 0) throw new OspreyError('not_found', `alert ${req.id} not found`);
      // Events and deliveries stay: they are the history of what was sent.
      await pool.query('DELETE FROM alert_channels WHERE rule_id = ? AND account_id = ?', [req.id, req.accountId]);
      return {};
    },

    async createAlertChannel(req) {
      requireAccount(req.accountId);
      const kind = channelKindOfProto(req.kind);
      const target = req.target.trim();
      if (kind === 'email') {
        if (!/^[^\s@]+@[^\s@]+$/.test(target) || target.length > 255) throw new OspreyError('invalid', `"${target}" is not an email address`);
      } else {
        let url: URL;
        try {
          url = new URL(target);
        } catch {
          throw new OspreyError('invalid', `"${target}" is not a URL`);
        }
        if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new OspreyError('invalid', 'a webhook URL must be http:// or https://');
        if (target.length > 1024) throw new OspreyError('invalid', 'the URL is longer than 1024 characters');
      }
      if (req.ruleId) await loadRule(req.accountId, req.ruleId);
      const [[{ n }]] = await pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM alert_channels WHERE account_id = ?', [req.accountId]);
      if (Number(n) >= MAX_CHANNELS_PER_ACCOUNT) throw new OspreyError('too_large', `an account may have at most ${MAX_CHANNELS_PER_ACCOUNT} channels`);
      const secret = kind === 'webhook' ? req.secret || randomBytes(24).toString('base64url') : null;
      const t = now();
      const [res] = await pool.query<ResultSetHeader>('INSERT INTO alert_channels (account_id, rule_id, kind, target, secret, created_ms) VALUES (?, ?, ?, ?, ?, ?)', [
        req.accountId, req.ruleId || null, kind, target, secret, t,
      ]);
      return {
        channel: channelToProto({ id: res.insertId, account_id: req.accountId, rule_id: req.ruleId || null, kind, target, secret, created_ms: t }),
        secret: secret ?? '',
      };
    },

    async listAlertChannels(req) {
      requireAccount(req.accountId);
      const [rows] = await pool.query<RowDataPacket[]>('SELECT * FROM alert_channels WHERE account_id = ? ORDER BY id', [req.accountId]);
      return { channels: rows.map((c) => channelToProto(c as Parameters<typeof channelToProto>[0])) };
    },

    async deleteAlertChannel(req) {
      requireAccount(req.accountId);
      const [res] = await pool.query<ResultSetHeader>('DELETE FROM alert_channels WHERE id = ? AND account_id = ?', [req.id, req.accountId]);
      if (res.affectedRows === 0) throw new OspreyError('not_found', `channel ${req.id} not found`);
      return {};
    },

    async listAlertEvents(req) {
      requireAccount(req.accountId);
      const limit = Math.min(req.limit || 50, 500);
      const [events] = await pool.query<RowDataPacket[]>(
        `SELECT * FROM alert_events WHERE account_id = ? AND (? = 0 OR rule_id = ?) AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?`,
        [req.accountId, req.ruleId, req.ruleId, req.beforeId, req.beforeId, limit],
      );
      const ids = events.map((e) => Number(e.id));
      const [deliveries] = ids.length
        ? await pool.query<RowDataPacket[]>('SELECT * FROM alert_deliveries WHERE event_id IN (?) ORDER BY id', [ids])
        : [[] as RowDataPacket[]];
      const byEvent = new Map<number, RowDataPacket[]>();
      for (const d of deliveries) {
        const list = byEvent.get(Number(d.event_id)) ?? [];
        list.push(d);
        byEvent.set(Number(d.event_id), list);
      }
      return { events: events.map((e) => eventToProto(e, byEvent.get(Number(e.id)) ?? [])) };
    },
  };
}

