import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2/promise';
import http from 'node:http';
import { createAccount } from '../kit/accounts.js';
import { createTestDatabase, type TestDatabase } from '../kit/testing/db.js';
import { startStack, type Stack } from '../../scripts/lib/stack.js';

// The whole path as separate processes: two api workers and two ingest replicas.
let tdb: TestDatabase;
let stack: Stack;

beforeAll(async () => {
  tdb = await createTestDatabase();
  stack = await startStack({
    databaseUrl: tdb.url,
    services: [
      { name: 'ingest', kind: 'rpc', replicas: 2, env: { FLUSH_INTERVAL_MS: '200' } },
      { name: 'api', kind: 'http', replicas: 2 },
    ],
    env: { HEARTBEAT_MS: '300' },
  });
  await stack.ready();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await tdb?.drop();
});

describe('api workers accept their own connections', () => {
  it('answers requests on new connections while the cluster primary is stopped', async () => {
    const account = await createAccount(tdb.database.pool, 'primary-stopped@example.com');
    const primary = stack.processes.find((p) => p.service === 'api')!.child.pid!;
    // Stopped, the primary can neither accept nor hand a connection to a worker: every
    // request below is on a connection of its own, so each one needs a worker to accept it.
    process.kill(primary, 'SIGSTOP');
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) {
        const body = new URLSearchParams({ ezkey: account.ezkey, stat: 'primary stopped', count: '1' }).toString();
        statuses.push((await postForm(false, `http://127.0.0.1:${stack.ports.api}/ez`, body, 10_000)).statusCode);
      }
      expect(statuses).toEqual(Array(20).fill(204));
    } finally {
      process.kill(primary, 'SIGCONT');
    }
    await expect.poll(async () => {
      const [r] = await tdb.database.pool.query<RowDataPacket[]>(
        'SELECT SUM(r.count) AS n FROM rollups_1m r JOIN stats s ON s.id = r.stat_id WHERE s.account_id = ? AND s.name = ?',
        [account.id, 'primary stopped'],
      );
      return Number(r[0].n);
    }, { timeout: 10_000 }).toBe(20);
  }, 60_000);
});

describe('/ez → api → ingest → MySQL, with an ingest replica stopped halfway', () => {
  it('keeps every acknowledged point exactly once and fails no request', async () => {
    const account = await createAccount(tdb.database.pool, 'e2e@example.com');
    const base = `http://127.0.0.1:${stack.ports.api}`;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    const total = 10_000;
    const sent = new Map<string, number>();
    let ok = 0;
    const failures: string[] = [];
    let next = 0;
    const victim = stack.processes.find((p) => p.service === 'ingest')!;
    let victimStopped = false;

    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        if (i === total / 2 && !victimStopped) {
          victimStopped = true;
          victim.child.kill('SIGTERM');
        }
        const stat = `e2e stat ${i % 200}`;
        const count = (i % 7) + 1;
        const body = new URLSearchParams({ ezkey: account.ezkey, stat, count: String(count) }).toString();
        const res = await postForm(agent, `${base}/ez`, body);
        const text = res.body;
        if (res.statusCode === 204) {
          ok++;
          sent.set(stat, (sent.get(stat) ?? 0) + count);
        } else failures.push(`${res.statusCode} ${text}`);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    agent.destroy();

    expect(failures).toEqual([]);
    expect(ok).toBe(total);
    expect(await victim.exited).toBe(0);

    const [instances] = await tdb.database.pool.query<RowDataPacket[]>("SELECT id FROM service_instances WHERE service = 'ingest'");
    expect(instances.length).toBe(1);

    await stack.stop();
    const [rows] = await tdb.database.pool.query<RowDataPacket[]>(
      'SELECT s.name, SUM(r.sum) AS total, SUM(r.count) AS n FROM rollups_1m r JOIN stats s ON s.id = r.stat_id WHERE s.account_id = ? GROUP BY s.name',
      [account.id],
    );
    const stored = new Map(rows.map((r) => [String(r.name), Number(r.total)]));
    expect(stored.size).toBe(200);
    expect(stored).toEqual(sent);
    expect(rows.reduce((s, r) => s + Number(r.n), 0)).toBe(total);
  });
});

/** `agent` false: a connection of its own. A request not answered in `timeoutMs` fails. */
function postForm(agent: http.Agent | false, url: string, body: string, timeoutMs = 30_000): Promise<{ statusCode: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, timeout: timeoutMs, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.end(body);
  });
}
