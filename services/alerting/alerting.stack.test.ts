// Stack test: alerting replicas as real processes (`node --import tsx services/alerting/main.ts`),
// one of them SIGKILLed while it holds claimed rules in the middle of a tick.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { create } from '@bufbuild/protobuf';
import type { HandlerContext } from '@connectrpc/connect';
import type { RowDataPacket } from 'mysql2/promise';
import { AlertChannelKind, AlertKind, CreateAlertChannelRequestSchema, CreateAlertRuleRequestSchema } from '../../gen/osprey/v1/alerting_pb.js';
import { createAccount } from '../kit/accounts.js';
import { KIND } from '../kit/db/schema.js';
import { createTestDatabase, TEST_SERVICE_TOKEN, type TestDatabase } from '../kit/testing/db.js';
import { createStat } from '../kit/testing/rollups.js';
import { startSmtpCapture, waitFor, type SmtpCapture } from '../kit/testing/smtp.js';
import { alertHandler } from './handlers/alerts/index.js';
import { startHookReceiver, type HookReceiver } from './testing.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SECRET = 'stack-hook-secret';

interface Proc {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  address: string;
}

let tdb: TestDatabase;
let smtp: SmtpCapture;
let hooks: HookReceiver;
const procs: Proc[] = [];

async function startProcess(env: Record<string, string>): Promise<Proc> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/alerting/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: tdb.url,
      SERVICE_TOKEN: TEST_SERVICE_TOKEN,
      RPC_HOST: '127.0.0.1',
      RPC_PORT: '0',
      OPS_PORT: '0',
      HEARTBEAT_MS: '200',
      LOG_LEVEL: 'info',
      SMTP_URL: smtp.url,
      EVAL_INTERVAL_MS: '100',
      DELIVERY_INTERVAL_MS: '100',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const proc: Proc = { child, logs: [], address: '' };
  procs.push(proc);
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      proc.logs.push(entry);
      if (entry.msg === 'alerting replica ready') proc.address = String(entry.address);
    } catch {
      // not a log line
    }
  });
  // A cold tsx start compiles the service first: give it room on a busy machine.
  await waitFor('the alerting process to be ready', () => proc.address !== '' || child.exitCode !== null, 60_000);
  if (!proc.address) throw new Error(`alerting exited with ${child.exitCode}`);
  return proc;
}

async function count(sql: string): Promise<number> {
  const [rows] = await tdb.database.pool.query<RowDataPacket[]>(sql);
  return Number(rows[0].n);
}

beforeEach(async () => {
  tdb = await createTestDatabase();
  [smtp, hooks] = await Promise.all([startSmtpCapture(), startHookReceiver(SECRET)]);
});

afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      const exited = new Promise((r) => p.child.once('exit', r));
      p.child.kill('SIGTERM');
      await exited;
    }
  }
  await Promise.all([smtp.close(), hooks.close()]);
  await tdb.drop();
});

it('sends exactly one notification per transition when a replica is SIGKILLed holding claimed rules', async () => {
  // Rules and channels first, through the real handler in-process, so that A's first tick
  // claims all three in one batch.
  const api = alertHandler({ pool: tdb.database.pool, now: Date.now });
  const ctx = {} as HandlerContext; // the handler reads nothing from it
  const accountId = (await createAccount(tdb.database.pool, 'owner@example.com')).id;
  await api.createAlertChannel(create(CreateAlertChannelRequestSchema, { accountId, kind: AlertChannelKind.EMAIL, target: 'ops@example.com' }), ctx);
  await api.createAlertChannel(create(CreateAlertChannelRequestSchema, { accountId, kind: AlertChannelKind.WEBHOOK, target: `${hooks.url}/hook`, secret: SECRET }), ctx);
  for (const name of ['a', 'b', 'c']) {
    // No data: each data alert fires at its first evaluation.
    const statId = await createStat(tdb.database.pool, accountId, name, KIND.counter);
    await api.createAlertRule(create(CreateAlertRuleRequestSchema, { accountId, input: { case: 'spec', value: { statId, kind: AlertKind.DATA, timeWindow: '5m' } } }), ctx);
  }
  // Replica A claims the rules, then stalls (fault injection) while it holds their row locks.
  const a = await startProcess({ EVAL_PAUSE_AFTER_CLAIM_MS: '600000' });
  await waitFor('replica A to claim all three rules', () => a.logs.some((l) => l.msg === 'rules claimed' && (l.rules as number[]).length === 3));

  // B runs normally; the locked rules are skipped, not waited for, so it records nothing yet.
  await startProcess({});
  await new Promise((r) => setTimeout(r, 600)); // B's evaluator ticks every 100 ms meanwhile
  expect(await count('SELECT COUNT(*) AS n FROM alert_events')).toBe(0);
  expect(await count('SELECT COUNT(*) AS n FROM alert_rules WHERE evaluations > 0')).toBe(0);

  a.child.kill('SIGKILL');
  await new Promise((r) => a.child.once('exit', r));

  // MariaDB rolls back A's transaction as its connection drops; B takes the rules over.
  await waitFor('three mails and three webhooks', () => smtp.mails.length >= 3 && hooks.received.length >= 3);
  // Let B run many more ticks: nothing more may arrive.
  await waitFor('all deliveries sent', async () => (await count("SELECT COUNT(*) AS n FROM alert_deliveries WHERE status <> 'sent'")) === 0);
  await new Promise((r) => setTimeout(r, 1500));
  expect(smtp.mails.map((m) => m.subject).sort()).toEqual(['a', 'b', 'c'].map((n) => `[osprey] FIRING: ${n}: no data for 5m`));
  expect(hooks.received.length).toBe(3);
  expect(new Set(hooks.received.map((h) => h.key)).size).toBe(3);
  expect(hooks.received.every((h) => h.signatureOk)).toBe(true);
  expect(await count('SELECT COUNT(*) AS n FROM alert_events')).toBe(3);
  expect(await count('SELECT COUNT(*) AS n FROM alert_deliveries')).toBe(6);
});
