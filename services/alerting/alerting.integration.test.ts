import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import type { RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import { AlertChannelKind, AlertDeliveryStatus, AlertKind, AlertOperator, AlertService, AlertState } from '../../gen/osprey/v1/alerting_pb.js';
import { createAccount } from '../kit/accounts.js';
import { connectDatabase } from '../kit/db/client.js';
import { KIND } from '../kit/db/schema.js';
import { createMetrics } from '../kit/metrics.js';
import { createTestDatabase, testBaseConfig, TEST_SERVICE_TOKEN, type TestDatabase } from '../kit/testing/db.js';
import { createStat, insertSample } from '../kit/testing/rollups.js';
import { startSmtpCapture, waitFor, type SmtpCapture } from '../kit/testing/smtp.js';
import { alertingConfigSchema } from './config.js';
import { build, type AlertingReplica } from './server.js';
import { startHookReceiver, type HookReceiver } from './testing.js';

const SECRET = 'hook-secret-for-tests';
/** A Monday noon, on a minute boundary: the clock every replica reads, moved by the test. */
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const MIN = 60_000;

let tdb: TestDatabase;
let smtp: SmtpCapture;
let hooks: HookReceiver;
let clock: number;
let replicas: AlertingReplica[];
let api: Client<typeof AlertService>;
let accountId: number;

async function startAlerting(extra: Record<string, string> = {}): Promise<AlertingReplica> {
  const config = alertingConfigSchema.parse({
    ...testBaseConfig(tdb.url),
    SMTP_URL: smtp.url,
    EVAL_INTERVAL_MS: '20',
    DELIVERY_INTERVAL_MS: '20',
    DELIVERY_BACKOFF_MS: '1000',
    DELIVERY_MAX_ATTEMPTS: '5',
    ...extra,
  });
  const r = await build({ config, log: pino({ level: 'silent' }), database: connectDatabase(tdb.url), metrics: createMetrics('alerting'), now: () => clock });
  replicas.push(r);
  return r;
}

function clientFor(r: AlertingReplica) {
  return createClient(AlertService, createConnectTransport({
    baseUrl: `http://${r.address}`,
    httpVersion: '2',
    interceptors: [(next) => (req) => (req.header.set('authorization', `Bearer ${TEST_SERVICE_TOKEN}`), next(req))],
  }));
}

async function q(sql: string, params: unknown[] = []) {
  const [rows] = await tdb.database.pool.query<RowDataPacket[]>(sql, params);
  return rows;
}

/**
 * Moves the clock and waits until both replicas' loops have evaluated every rule for the
 * new minute and delivered everything due; then one more full tick on each replica, so
 * anything sent twice would show.
 */
async function advanceTo(ms: number): Promise<void> {
  clock = ms;
  const minute = Math.floor(ms / MIN);
  await waitFor('rules evaluated', async () => (await q('SELECT COUNT(*) AS n FROM alert_rules WHERE evaluated_minute < ?', [minute]))[0].n === 0);
  await waitFor('deliveries done', async () => (await q("SELECT COUNT(*) AS n FROM alert_deliveries WHERE status = 'pending' AND next_attempt_ms <= ?", [ms]))[0].n === 0);
  await Promise.all(replicas.flatMap((r) => [r.evaluator.tick(), r.deliverer.tick()]));
}

const at = (minuteOffset: number) => (T0 + minuteOffset * MIN) / 1000;

beforeEach(async () => {
  tdb = await createTestDatabase();
  [smtp, hooks] = await Promise.all([startSmtpCapture(), startHookReceiver(SECRET)]);
  clock = T0 - 1 * MIN;
  replicas = [];
  await startAlerting();
  await startAlerting();
  api = clientFor(replicas[0]);
  accountId = (await createAccount(tdb.database.pool, 'owner@example.com')).id;
  await api.createAlertChannel({ accountId, kind: AlertChannelKind.EMAIL, target: 'ops@example.com' });
  await api.createAlertChannel({ accountId, kind: AlertChannelKind.WEBHOOK, target: `${hooks.url}/hook`, secret: SECRET });
});

afterEach(async () => {
  for (const r of replicas) await r.stop();
  await Promise.all([smtp.close(), hooks.close()]);
  await tdb.drop();
});

/** Mails and webhooks so far, as [FIRING|RESOLVED, description] pairs. */
function notifications() {
  return {
    mails: smtp.mails.map((m) => m.subject),
    hooks: hooks.received.map((h) => `${h.body.type} ${(h.body.rule as { description: string }).description}`),
  };
}

describe('alert evaluation across two replicas', () => {
  it('fires and resolves a value alert on a counter, once per transition, evaluating once per minute', async () => {
    const hits = await createStat(tdb.database.pool, accountId, 'hits', KIND.counter);
    const { rule } = await api.createAlertRule({
      accountId,
      input: { case: 'stathatForm', value: { fields: { stat_id: String(hits), kind: 'value', time_window: '5m', operator: 'greater than', threshold: '100' } } },
    });
    expect(rule?.description).toBe('hits: 5m sum greater than 100');

    await insertSample(tdb.database.pool, hits, at(-2), 50);
    await advanceTo(T0);
    expect(notifications()).toEqual({ mails: [], hooks: [] });
    const base = (await api.getAlertRule({ accountId, id: rule!.id })).rule!.evaluations;

    await insertSample(tdb.database.pool, hits, at(1), 80);
    await advanceTo(T0 + 1 * MIN);
    await advanceTo(T0 + 1 * MIN + 30_000); // same minute again: no second evaluation
    expect(notifications()).toEqual({
      mails: ['[osprey] FIRING: hits: 5m sum greater than 100'],
      hooks: ['alert.firing hits: 5m sum greater than 100'],
    });
    expect(smtp.mails[0].to && 'text' in smtp.mails[0].to ? smtp.mails[0].to.text : '').toBe('ops@example.com');
    expect(smtp.mails[0].text).toContain('Value: 130');
    expect(hooks.received.every((h) => h.signatureOk)).toBe(true);
    expect(hooks.received[0].body.value).toBe(130);

    await advanceTo(T0 + 4 * MIN); // still inside the window
    await advanceTo(T0 + 7 * MIN); // [2, 7] holds nothing: sum 0
    expect(notifications()).toEqual({
      mails: ['[osprey] FIRING: hits: 5m sum greater than 100', '[osprey] RESOLVED: hits: 5m sum greater than 100'],
      hooks: ['alert.firing hits: 5m sum greater than 100', 'alert.resolved hits: 5m sum greater than 100'],
    });
    // Distinct keys per transition; mail Message-IDs carry them too.
    expect(new Set(hooks.received.map((h) => h.key)).size).toBe(2);
    expect(smtp.mails.map((m) => m.messageId)).toEqual([`<osprey-alert-${rule!.id}-1-1@osprey>`, `<osprey-alert-${rule!.id}-2-1@osprey>`]);
    expect(hooks.received.map((h) => h.key)).toEqual([`osprey-alert-${rule!.id}-1-2`, `osprey-alert-${rule!.id}-2-2`]);

    const got = (await api.getAlertRule({ accountId, id: rule!.id })).rule!;
    expect(got.state).toBe(AlertState.OK);
    // Minutes 1, 4 and 7 were visited (1 twice); two replicas ticked many times in each.
    expect(got.evaluations - base).toBe(3);
    const { events } = await api.listAlertEvents({ accountId, ruleId: rule!.id });
    expect(events.map((e) => [e.fromState, e.toState, e.deliveries.map((d) => d.status)])).toEqual([
      [AlertState.FIRING, AlertState.OK, [AlertDeliveryStatus.SENT, AlertDeliveryStatus.SENT]],
      [AlertState.OK, AlertState.FIRING, [AlertDeliveryStatus.SENT, AlertDeliveryStatus.SENT]],
    ]);
  });

  it('fires a delta alert when a value falls by more than the percentage against an hour earlier, and resolves it', async () => {
    const latency = await createStat(tdb.database.pool, accountId, 'latency', KIND.value);
    await api.createAlertRule({
      accountId,
      input: { case: 'spec', value: { statId: latency, kind: AlertKind.DELTA, timeWindow: '5m', operator: AlertOperator.LESS_THAN, percentage: 50, timeDelta: '1h' } },
    });
    for (let m = -70; m <= 0; m++) await insertSample(tdb.database.pool, latency, at(m), 100);
    await advanceTo(T0);
    expect(notifications().mails).toEqual([]);

    for (let m = 6; m <= 10; m++) await insertSample(tdb.database.pool, latency, at(m), 30);
    await advanceTo(T0 + 10 * MIN);
    const desc = 'latency: 5m mean falls by more than 50% against 1h earlier';
    expect(notifications()).toEqual({ mails: [`[osprey] FIRING: ${desc}`], hooks: [`alert.firing ${desc}`] });
    expect(hooks.received[0].body.value).toBeCloseTo(-70);

    for (let m = 16; m <= 20; m++) await insertSample(tdb.database.pool, latency, at(m), 100);
    await advanceTo(T0 + 20 * MIN);
    expect(notifications()).toEqual({
      mails: [`[osprey] FIRING: ${desc}`, `[osprey] RESOLVED: ${desc}`],
      hooks: [`alert.firing ${desc}`, `alert.resolved ${desc}`],
    });
  });

  it('fires a data alert when nothing arrives within the window and resolves when data comes back', async () => {
    const beat = await createStat(tdb.database.pool, accountId, 'heartbeat', KIND.counter);
    // The loops run all along: data first, or the rule would rightly fire at creation.
    await insertSample(tdb.database.pool, beat, at(-1), 1);
    await api.createAlertRule({ accountId, input: { case: 'spec', value: { statId: beat, kind: AlertKind.DATA, timeWindow: '5m' } } });
    await advanceTo(T0);
    await advanceTo(T0 + 3 * MIN);
    expect(notifications().mails).toEqual([]);
    await advanceTo(T0 + 6 * MIN);
    expect(notifications()).toEqual({ mails: ['[osprey] FIRING: heartbeat: no data for 5m'], hooks: ['alert.firing heartbeat: no data for 5m'] });
    await insertSample(tdb.database.pool, beat, at(8), 1);
    await advanceTo(T0 + 8 * MIN);
    expect(notifications()).toEqual({
      mails: ['[osprey] FIRING: heartbeat: no data for 5m', '[osprey] RESOLVED: heartbeat: no data for 5m'],
      hooks: ['alert.firing heartbeat: no data for 5m', 'alert.resolved heartbeat: no data for 5m'],
    });
  });

  it('records a muted rule\'s transitions without sending anything', async () => {
    const beat = await createStat(tdb.database.pool, accountId, 'quiet', KIND.counter);
    await insertSample(tdb.database.pool, beat, at(-1), 1);
    const { rule } = await api.createAlertRule({ accountId, input: { case: 'spec', value: { statId: beat, kind: AlertKind.DATA, timeWindow: '5m' } } });
    const muted = await api.muteAlertRule({ accountId, id: rule!.id, muted: true });
    expect(muted.rule?.muted).toBe(true);
    await advanceTo(T0 + 6 * MIN);
    const { events } = await api.listAlertEvents({ accountId, ruleId: rule!.id });
    expect(events.map((e) => [e.toState, e.deliveries.length])).toEqual([[AlertState.FIRING, 0]]);
    expect(notifications()).toEqual({ mails: [], hooks: [] });
  });
});

describe('webhook delivery', () => {
  it('retries with backoff and the same idempotency key until the receiver takes it', async () => {
    const beat = await createStat(tdb.database.pool, accountId, 'svc', KIND.counter);
    hooks.failNext([500, 503]);
    clock = T0; // the first attempt happens at T0, whenever the loops get to it
    await api.createAlertRule({ accountId, input: { case: 'spec', value: { statId: beat, kind: AlertKind.DATA, timeWindow: '5m' } } });
    await advanceTo(T0);
    expect(hooks.received.map((h) => h.answered)).toEqual([500]);
    await advanceTo(T0 + 999); // backoff not yet over: 1s after the first failure
    expect(hooks.received.length).toBe(1);
    await advanceTo(T0 + 1000);
    expect(hooks.received.map((h) => h.answered)).toEqual([500, 503]);
    await advanceTo(T0 + 1000 + 2000); // doubled
    expect(hooks.received.map((h) => h.answered)).toEqual([500, 503, 200]);
    expect(new Set(hooks.received.map((h) => h.key)).size).toBe(1);
    expect(hooks.received.every((h) => h.signatureOk)).toBe(true);
    await advanceTo(T0 + 10 * 60_000 + 5 * 60_000);
    expect(hooks.received.length).toBe(3);
    const [event] = (await api.listAlertEvents({ accountId })).events;
    const hook = event.deliveries.find((d) => d.kind === AlertChannelKind.WEBHOOK)!;
    expect([hook.status, hook.attempts, hook.lastError]).toEqual([AlertDeliveryStatus.SENT, 3, '']);
    expect(hook.idempotencyKey).toBe(hooks.received[0].key);
  });

  it('marks a delivery failed after the last try and says why', async () => {
    const beat = await createStat(tdb.database.pool, accountId, 'svc', KIND.counter);
    hooks.failNext([500, 500, 500, 500, 500]);
    clock = T0; // the first attempt happens at T0, whenever the loops get to it
    await api.createAlertRule({ accountId, input: { case: 'spec', value: { statId: beat, kind: AlertKind.DATA, timeWindow: '5m' } } });
    for (const t of [0, 1000, 3000, 7000, 15000, 31000, 63000]) await advanceTo(T0 + t);
    expect(hooks.received.length).toBe(5);
    const [event] = (await api.listAlertEvents({ accountId })).events;
    const hook = event.deliveries.find((d) => d.kind === AlertChannelKind.WEBHOOK)!;
    expect(hook.status).toBe(AlertDeliveryStatus.FAILED);
    expect(hook.attempts).toBe(5);
    expect(hook.lastError).toMatch(/answered 500/);
    expect(event.deliveries.find((d) => d.kind === AlertChannelKind.EMAIL)?.status).toBe(AlertDeliveryStatus.SENT);
  });
});

describe('AlertService', () => {
  it('creates, lists, updates, mutes and deletes rules, scoped to the account', async () => {
    const hits = await createStat(tdb.database.pool, accountId, 'hits', KIND.counter);
    const other = (await createAccount(tdb.database.pool, 'other@example.com')).id;
    const { rule } = await api.createAlertRule({ accountId, input: { case: 'stathatForm', value: { fields: { stat_id: String(hits), kind: 'value', time_window: '1h', operator: 'less than', threshold: '3' } } } });
    expect(rule?.spec).toMatchObject({ statId: hits, kind: AlertKind.VALUE, timeWindow: '1h', operator: AlertOperator.LESS_THAN, threshold: 3 });
    await expect(api.getAlertRule({ accountId: other, id: rule!.id })).rejects.toThrow(/not found/);
    await expect(api.createAlertRule({ accountId: other, input: { case: 'spec', value: { statId: hits, kind: AlertKind.DATA, timeWindow: '1h' } } })).rejects.toThrow(/stat \d+ not found/);
    await expect(api.createAlertRule({ accountId, input: { case: 'stathatForm', value: { fields: { stat_id: String(hits), kind: 'value', time_window: '2h' } } } })).rejects.toThrow(/time_window must be one of/);
    const updated = await api.updateAlertRule({ accountId, id: rule!.id, input: { case: 'spec', value: { statId: hits, kind: AlertKind.DELTA, timeWindow: '1d', operator: AlertOperator.DIFFERENT_THAN, percentage: 10, timeDelta: '1w' } } });
    expect(updated.rule?.description).toBe('hits: 1d sum changes by more than 10% against 1w earlier');
    expect((await api.listAlertRules({ accountId })).rules.map((r) => r.id)).toEqual([rule!.id]);
    expect((await api.listAlertRules({ accountId: other })).rules).toEqual([]);
    await api.deleteAlertRule({ accountId, id: rule!.id });
    await expect(api.deleteAlertRule({ accountId, id: rule!.id })).rejects.toThrow(/not found/);
    const ch = await api.createAlertChannel({ accountId, kind: AlertChannelKind.WEBHOOK, target: 'https://example.com/h' });
    expect(ch.secret.length).toBeGreaterThan(20);
    expect((await api.listAlertChannels({ accountId })).channels.map((c) => [c.kind, c.hasSecret])).toEqual([
      [AlertChannelKind.EMAIL, false], [AlertChannelKind.WEBHOOK, true], [AlertChannelKind.WEBHOOK, true],
    ]);
    await expect(api.createAlertChannel({ accountId, kind: AlertChannelKind.SLACK, target: 'ftp://x' })).rejects.toThrow(/http/);
  });
});
