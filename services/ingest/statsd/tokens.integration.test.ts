import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import StatsDClient, { type StatsD } from 'hot-shots';
import { createAccount, type Account } from '../../kit/accounts.js';
import { createTestDatabase, type TestDatabase } from '../../kit/testing/db.js';
import { createToken, revokeToken } from '../../kit/tokens.js';
import type { StatsdConfig } from '../config.js';
import type { StreamListener } from './listeners.js';
import { connectStream, endAndWait, metricValue, rollupRows, startStatsdReplica, statsdTestConfig, tempSocketDir, waitFor, write } from './testing.js';
import type { StatsdTestReplica } from './testing.js';

let tdb: TestDatabase;
let dir: string;
let alice: Account;
let bob: Account;
const replicas: StatsdTestReplica[] = [];
const T = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;

async function start(overrides: Partial<StatsdConfig> = {}) {
  const r = await startStatsdReplica(tdb, statsdTestConfig(path.join(dir, 'statsd.sock'), { STATSD_AUTH: 'token', ...overrides }), () => T);
  replicas.push(r);
  return r;
}

beforeEach(async () => {
  tdb = await createTestDatabase();
  dir = tempSocketDir();
  alice = await createAccount(tdb.database.pool, 'alice@example.com');
  bob = await createAccount(tdb.database.pool, 'bob@example.com');
});
afterEach(async () => {
  for (const r of replicas.splice(0)) await r.stop();
  await tdb.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Totals per (account email, stat name) in the 1-minute rollups: sums, and a gauge's last value. */
async function totals(r: StatsdTestReplica): Promise<string[]> {
  expect(await r.statsd.intake!.settle(10_000)).toBe(true);
  await r.flusher.flush();
  const [rows] = await tdb.database.pool.query<import('mysql2/promise').RowDataPacket[]>(
    'SELECT a.email, s.name, SUM(IF(s.kind = 3, r.last_value, r.sum)) AS total FROM rollups_1m r JOIN stats s ON s.id = r.stat_id JOIN accounts a ON a.id = s.account_id GROUP BY a.email, s.name ORDER BY a.email, s.name',
  );
  return rows.map((x) => `${x.email} ${x.name}=${Number(x.total)}`);
}

function sendUdp(port: number, text: string): Promise<void> {
  const s = dgram.createSocket('udp4');
  return new Promise<void>((res, rej) => s.send(text, port, '127.0.0.1', (err) => (err ? rej(err) : res()))).finally(() => s.close());
}

const auth = (r: StatsdTestReplica, listener: string, reason: string) => metricValue(r.registry, 'osprey_statsd_auth_failures_total', { listener, reason });

describe('STATSD_AUTH=token', () => {
  it("takes statsgod's per-line <token>. prefix over UDP, and counts missing, unknown and revoked tokens per line", async () => {
    const a = await createToken(tdb.database.pool, 'statsd_tokens', alice.id, 'ci');
    const b = await createToken(tdb.database.pool, 'statsd_tokens', bob.id, 'ci');
    const revoked = await createToken(tdb.database.pool, 'statsd_tokens', bob.id, 'old');
    await revokeToken(tdb.database.pool, 'statsd_tokens', bob.id, revoked.id);
    const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false });
    const port = r.statsd.udp!.address()!.port;
    await sendUdp(
      port,
      [
        `${a.token}.hits:1|c`,
        `${a.token}.hits:2|c:5|ms`, // two samples, one line
        `${b.token}.hits:10|c`,
        'hits:100|c', // no token
        `sd_madeup.hits:1000|c:7|ms`, // unknown: one line, counted once
        `${revoked.token}.hits:1|c`,
      ].join('\n'),
    );
    // hot-shots sends the token as part of the name, unchanged
    const client: StatsD = new StatsDClient({ host: '127.0.0.1', port, prefix: `${a.token}.`, errorHandler: () => {} });
    client.increment('app.requests', 3);
    await new Promise<void>((res) => client.close(() => res()));
    await waitFor('the lines', () => r.statsd.udp!.stats.lines === 7);
    expect(await totals(r)).toEqual(['alice@example.com app.requests=3', 'alice@example.com hits=8', 'bob@example.com hits=10']);
    expect(await auth(r, 'udp', 'missing')).toBe(1);
    expect(await auth(r, 'udp', 'unknown')).toBe(1);
    expect(await auth(r, 'udp', 'revoked')).toBe(1);
    expect(await metricValue(r.registry, 'osprey_statsd_bad_lines_total', { listener: 'udp' })).toBe(0);
  });

  for (const kind of ['tcp', 'unix'] as const) {
    it(`${kind}: a connection opening with AUTH <token> sends plain lines for its account`, async () => {
      const a = await createToken(tdb.database.pool, 'statsd_tokens', alice.id, 'ci');
      const b = await createToken(tdb.database.pool, 'statsd_tokens', bob.id, 'ci');
      const r = await start({ STATSD_UDP: false, STATSD_MGMT: false });
      const l: StreamListener = kind === 'tcp' ? r.statsd.tcp! : r.statsd.unix!;
      const to = kind === 'tcp' ? (l.address() as net.AddressInfo).port : (l.address() as string);
      const send = async (text: string) => {
        const s = await connectStream(to);
        await write(s, text);
        await endAndWait(s);
      };
      await send(`AUTH ${a.token}\nhits:1|c\nload:2|ms\n`);
      await send(`AUTH ${b.token}\r\nhits:5|c\n`);
      await send(`${a.token}.hits:10|c\n`); // no AUTH: statsgod prefixes per line
      await send('hits:100|c\n'); // neither
      await send('AUTH sd_wrong\nhits:1000|c\nload:1|ms\n');
      await send(`AUTH ${a.token}`); // an AUTH line and nothing after it
      // hot-shots over the stream: the AUTH line first, then its metrics, unchanged
      const stream = await connectStream(to);
      await write(stream, `AUTH ${b.token}\n`);
      const client: StatsD = new StatsDClient({ protocol: 'stream', stream, errorHandler: () => {} });
      client.increment('app.requests', 4);
      await new Promise<void>((res) => client.close(() => res()));
      await waitFor('the lines', () => l.stats.lines === 8 && l.stats.connections === 0);
      expect(await totals(r)).toEqual(['alice@example.com hits=11', 'alice@example.com load=2', 'bob@example.com app.requests=4', 'bob@example.com hits=5']);
      expect(await auth(r, kind, 'missing')).toBe(1);
      expect(await auth(r, kind, 'unknown')).toBe(2);
      expect(await auth(r, kind, 'revoked')).toBe(0);
    });
  }

  it('frames the AUTH line split at every byte offset', async () => {
    const a = await createToken(tdb.database.pool, 'statsd_tokens', alice.id, 'ci');
    const r = await start({ STATSD_UDP: false, STATSD_UNIX: false, STATSD_MGMT: false });
    const l = r.statsd.tcp!;
    const port = (l.address() as net.AddressInfo).port;
    const stream = Buffer.from(`AUTH ${a.token}\r\nx:1|c\nx:2|c`);
    for (let k = 1; k < stream.length; k++) {
      const s = await connectStream(port);
      const read = l.stats.bytes;
      await write(s, stream.subarray(0, k));
      await waitFor('the first part', () => l.stats.bytes === read + k);
      await write(s, stream.subarray(k));
      await endAndWait(s);
    }
    expect(await totals(r)).toEqual([`alice@example.com x=${3 * (stream.length - 1)}`]);
    expect(l.stats.lines).toBe(2 * (stream.length - 1));
    for (const reason of ['missing', 'unknown', 'revoked']) expect(await auth(r, 'tcp', reason)).toBe(0);
  });

  it('keeps the samples that arrive while a new token is being checked, and stops taking a revoked one at the next recheck', async () => {
    const a = await createToken(tdb.database.pool, 'statsd_tokens', alice.id, 'ci');
    const r = await start({ STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false, STATSD_TOKEN_RECHECK_SEC: 1 });
    const port = r.statsd.udp!.address()!.port;
    // Hold the lookups back: every sample arrives while its token is being checked.
    const locker = await tdb.database.pool.getConnection();
    await locker.query('LOCK TABLES statsd_tokens WRITE, stats WRITE');
    try {
      for (let i = 0; i < 200; i++) await sendUdp(port, `${a.token}.burst:1|c\n${a.token}.g:+1|g`);
      await waitFor('the burst', () => r.statsd.udp!.stats.lines === 400);
      expect(r.statsd.intake!.pendingSamples).toBe(400);
      expect(await metricValue(r.registry, 'osprey_statsd_pending_samples')).toBe(400);
    } finally {
      await locker.query('UNLOCK TABLES');
      locker.release();
    }
    expect(await totals(r)).toEqual(['alice@example.com burst=200', 'alice@example.com g=200']);
    expect(r.statsd.intake!.pendingSamples).toBe(0);

    await revokeToken(tdb.database.pool, 'statsd_tokens', alice.id, a.id);
    await waitFor('the recheck to see the revocation', async () => {
      await sendUdp(port, `${a.token}.after:1|c`);
      return (await auth(r, 'udp', 'revoked')) > 0;
    });
  });
});

describe('npm run osprey -- token', () => {
  it('creates, lists and revokes statsd tokens for the account of an ezkey', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'scripts/osprey.ts', ...args], { env: { PATH: process.env.PATH, DATABASE_URL: tdb.url }, encoding: 'utf8' });
    const created = run('token', 'create', '--ezkey', alice.ezkey, '--name', 'laptop');
    expect(created.status, created.stderr).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^sd_[A-Za-z0-9_-]{32}$/);
    const listed = run('token', 'list', '--ezkey', alice.ezkey);
    expect(listed.stdout).toMatch(new RegExp(`laptop\\s+${token.slice(0, 12)}…\\s+.*live`));
    const id = /^(\d+)\s+laptop/m.exec(listed.stdout)![1];
    expect(run('token', 'revoke', '--ezkey', alice.ezkey, '--id', id).status).toBe(0);
    expect(run('token', 'list', '--ezkey', alice.ezkey).stdout).toMatch(/laptop.*revoked/);
    const wrong = run('token', 'revoke', '--ezkey', 'nope', '--id', id);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('no account has the ezkey');
  });
});
