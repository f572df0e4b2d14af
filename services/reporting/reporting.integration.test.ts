import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, type Client } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import type { RowDataPacket } from 'mysql2/promise';
import { pino } from 'pino';
import { ReportPeriod, ReportService } from '../../gen/osprey/v1/reporting_pb.js';
import { createAccount } from '../kit/accounts.js';
import { connectDatabase } from '../kit/db/client.js';
import { KIND } from '../kit/db/schema.js';
import { createMetrics } from '../kit/metrics.js';
import { createTestDatabase, testBaseConfig, TEST_SERVICE_TOKEN, type TestDatabase } from '../kit/testing/db.js';
import { createStat, insertSample } from '../kit/testing/rollups.js';
import { startSmtpCapture, waitFor, type SmtpCapture } from '../kit/testing/smtp.js';
import { reportingConfigSchema } from './config.js';
import { pngSize } from '../kit/testing/png.js';
import { build, type ReportingReplica } from './server.js';

const DAY = 86400_000;
/** Monday 5 January 2026, 00:00 UTC. */
const MONDAY = Date.UTC(2026, 0, 5);

let tdb: TestDatabase;
let smtp: SmtpCapture;
let clock: number;
let replicas: ReportingReplica[];
let api: Client<typeof ReportService>;

async function startReporting(): Promise<ReportingReplica> {
  const config = reportingConfigSchema.parse({ ...testBaseConfig(tdb.url), SMTP_URL: smtp.url, REPORT_INTERVAL_MS: '20', PUBLIC_URL: 'https://osprey.example' });
  const r = await build({ config, log: pino({ level: 'silent' }), database: connectDatabase(tdb.url), metrics: createMetrics('reporting'), now: () => clock });
  replicas.push(r);
  return r;
}

async function q(sql: string, params: unknown[] = []) {
  const [rows] = await tdb.database.pool.query<RowDataPacket[]>(sql, params);
  return rows;
}

/** Moves the clock, lets both replicas' loops run, then runs one more full pass on each. */
async function advanceTo(ms: number, expectMails: number): Promise<void> {
  clock = ms;
  await waitFor(`${expectMails} mails`, () => smtp.mails.length >= expectMails);
  await waitFor('no report in flight', async () => (await q("SELECT COUNT(*) AS n FROM report_sends WHERE status = 'sending'"))[0].n === 0);
  await Promise.all(replicas.map((r) => r.reports.tick()));
}

beforeEach(async () => {
  tdb = await createTestDatabase();
  smtp = await startSmtpCapture();
  clock = MONDAY - DAY + 3600_000; // Sunday 01:00
  replicas = [];
  await startReporting();
  await startReporting();
  api = createClient(ReportService, createConnectTransport({
    baseUrl: `http://${replicas[1].address}`,
    httpVersion: '2',
    interceptors: [(next) => (req) => (req.header.set('authorization', `Bearer ${TEST_SERVICE_TOKEN}`), next(req))],
  }));
});

afterEach(async () => {
  for (const r of replicas) await r.stop();
  await smtp.close();
  await tdb.drop();
});

describe('daily reports across two replicas', () => {
  it('sends each opted-in person exactly one report per day, with figures, movers and an inline PNG per stat', async () => {
    const pool = tdb.database.pool;
    const a = (await createAccount(pool, 'a@example.com')).id;
    const b = (await createAccount(pool, 'b@example.com')).id;
    const hits = await createStat(pool, a, 'hits', KIND.counter);
    const latency = await createStat(pool, a, 'latency', KIND.value);
    const signups = await createStat(pool, b, 'signups', KIND.counter);
    const sat = (MONDAY - 2 * DAY) / 1000;
    const sun = (MONDAY - DAY) / 1000;
    for (let h = 0; h < 24; h++) {
      await insertSample(pool, hits, sat + h * 3600, 10); // Saturday: 240
      await insertSample(pool, hits, sun + h * 3600 + 60, 15); // Sunday: 360, +50%
      await insertSample(pool, latency, sat + h * 3600, 100);
      await insertSample(pool, latency, sun + h * 3600, 80); // mean 80, -20%
    }
    await insertSample(pool, signups, sun + 3600, 7);

    await api.subscribe({ accountId: a, email: 'Alice@Example.com', period: ReportPeriod.DAILY });
    await api.subscribe({ accountId: a, email: 'ops@example.com', period: ReportPeriod.DAILY });
    await api.subscribe({ accountId: b, email: 'bob@example.com', period: ReportPeriod.DAILY });
    const gone = await api.subscribe({ accountId: b, email: 'gone@example.com', period: ReportPeriod.DAILY });
    await api.cancelSubscription({ accountId: b, id: gone.subscription!.id });
    await api.subscribe({ accountId: a, email: 'weekly@example.com', period: ReportPeriod.WEEKLY });

    // Sunday 12:00: Saturday is complete, but everyone opted in after it ended: no report for it.
    await advanceTo(MONDAY - DAY / 2, 0);
    expect(smtp.mails).toEqual([]);

    // Monday 00:05: Sunday's daily reports and the first week's weekly report are due.
    await advanceTo(MONDAY + 300_000, 4);
    await advanceTo(MONDAY + 3600_000, 4); // an hour later: nothing more
    const to = (m: (typeof smtp.mails)[number]) => (m.to && !Array.isArray(m.to) ? m.to.text : '');
    expect(smtp.mails.map((m) => `${to(m)} ${m.subject}`).sort()).toEqual([
      'alice@example.com [osprey] Daily report: Sunday 4 January 2026',
      'bob@example.com [osprey] Daily report: Sunday 4 January 2026',
      'ops@example.com [osprey] Daily report: Sunday 4 January 2026',
      'weekly@example.com [osprey] Weekly report: week of 29 December 2025',
    ]);
    const alice = smtp.mails.find((m) => to(m) === 'alice@example.com')!;
    expect(alice.text).toContain('hits: 360 total (+50.0%, before 240)');
    expect(alice.text).toContain('latency: 80 mean (-20.0%, before 100)');
    expect(alice.text).toContain('Biggest movers: hits +50.0%, latency -20.0%');
    expect(alice.html).toMatch(/<img src="cid:spark-\d+@osprey"/);
    const pngs = alice.attachments.filter((x) => x.contentType === 'image/png');
    expect(pngs.map((p) => p.cid).sort()).toEqual([`spark-${hits}@osprey`, `spark-${latency}@osprey`]);
    for (const p of pngs) {
      expect(p.contentDisposition).toBe('inline');
      expect(pngSize(p.content)).toEqual({ width: 160, height: 40 });
    }
    const header = (name: string) => alice.headerLines.find((h) => h.key === name)?.line.replace(/\r?\n[ \t]+/g, ' ');
    expect(header('list-unsubscribe-post')).toBe('List-Unsubscribe-Post: List-Unsubscribe=One-Click');
    expect(header('list-unsubscribe')).toMatch(/^List-Unsubscribe: <https:\/\/osprey\.example\/reports\/unsubscribe\?token=/);
    expect(await q("SELECT COUNT(*) AS n FROM report_sends WHERE status = 'sent'")).toEqual([{ n: 4 }]);

    // The link works without logging in: the token alone unsubscribes.
    const link = /https:\/\/osprey\.example\/reports\/unsubscribe\?token=([^\s"]+)/.exec(alice.text!)!;
    const token = decodeURIComponent(link[1]);
    const res = await api.unsubscribe({ token });
    expect([res.subscription?.email, res.subscription?.active, res.already]).toEqual(['alice@example.com', false, false]);
    expect((await api.unsubscribe({ token })).already).toBe(true);
    await expect(api.unsubscribe({ token: token.slice(0, -2) + 'xx' })).rejects.toThrow(/not valid/);

    // Tuesday: Alice is out, the other two daily subscribers get Monday's report.
    await advanceTo(MONDAY + DAY + 300_000, 6);
    expect(smtp.mails.slice(4).map((m) => to(m)).sort()).toEqual(['bob@example.com', 'ops@example.com']);
  });
});

describe('retention', () => {
  it('deletes minute rollups past 30 days, hours past two years, and stats in the trash for over 48 hours', async () => {
    const pool = tdb.database.pool;
    const a = (await createAccount(pool, 'a@example.com')).id;
    const keep = await createStat(pool, a, 'keep', KIND.counter);
    const trashed = await createStat(pool, a, 'trashed', KIND.counter);
    const fresh = await createStat(pool, a, 'fresh-trash', KIND.counter);
    clock = MONDAY;
    const now = MONDAY / 1000;
    for (const id of [keep, trashed, fresh]) {
      await insertSample(pool, id, now - 31 * 86400, 1);
      await insertSample(pool, id, now - 29 * 86400, 1);
      await insertSample(pool, id, now - 731 * 86400, 1);
    }
    await pool.query('UPDATE stats SET deleted_at = ? WHERE id = ?', [new Date(MONDAY - 49 * 3600_000), trashed]);
    await pool.query('UPDATE stats SET deleted_at = ? WHERE id = ?', [new Date(MONDAY - 47 * 3600_000), fresh]);
    await pool.query("INSERT INTO alert_rules (account_id, stat_id, kind, window_sec, state_since_ms, created_ms, updated_ms) VALUES (?, ?, 3, 300, 0, 0, 0)", [a, trashed]);

    const [r1, r2] = await Promise.all(replicas.map((r) => r.cleanUp()));
    expect(r1.purgedStats + r2.purgedStats).toBe(1);
    const counts = async (table: string) => (await q(`SELECT stat_id, COUNT(*) AS n FROM ${table} GROUP BY stat_id ORDER BY stat_id`)).map((r) => [r.stat_id, r.n]);
    expect(await counts('rollups_1m')).toEqual([[keep, 1], [fresh, 1]]);
    expect(await counts('rollups_1h')).toEqual([[keep, 2], [fresh, 2]]);
    expect(await counts('rollups_1d')).toEqual([[keep, 3], [fresh, 3]]);
    expect((await q('SELECT id FROM stats ORDER BY id')).map((r) => r.id)).toEqual([keep, fresh]);
    expect(await q('SELECT id FROM alert_rules')).toEqual([]);
  });
});
