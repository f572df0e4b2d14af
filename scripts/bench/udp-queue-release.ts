/**
 * Shows that the UDP reader's queue gives back the memory a burst touched
 * (STATSD_UDP_QUEUE_RELEASE_MS, services/ingest/statsd/listeners.ts), which a test cannot:
 * it needs ingest's --expose-gc and a process of its own.
 *
 *   node --expose-gc --import tsx scripts/bench/udp-queue-release.ts
 *
 * A statsd replica (UDP only, on a fresh test database) is sent ~20 MB of datagrams while its
 * parsing thread is held, so they queue up; once they are parsed and the queue has been quiet
 * for 500 ms it is replaced. Prints the RSS at each step; the last full collection of this
 * thread (forced here, as the next one under load would) must give back most of the burst.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createAccount } from '../../services/kit/accounts.js';
import { createTestDatabase } from '../../services/kit/testing/db.js';
import { startStatsdReplica, statsdTestConfig, waitFor } from '../../services/ingest/statsd/testing.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('run with node --expose-gc (as ingest runs)\n');
  process.exit(2);
}
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'latin1'))![1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const tdb = await createTestDatabase();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'osprey-release-'));
try {
  const account = await createAccount(tdb.database.pool, 'release@example.com');
  const r = await startStatsdReplica(
    tdb,
    statsdTestConfig(path.join(dir, 'statsd.sock'), { STATSD_DEFAULT_ACCOUNT: account.id, STATSD_TCP: false, STATSD_UNIX: false, STATSD_MGMT: false, STATSD_UDP_RECV_BUFFER: 4 << 20, STATSD_UDP_QUEUE_RELEASE_MS: 500 }),
  );
  const st = r.statsd.udp!.stats;
  const port = r.statsd.udp!.address()!.port;
  const start = rssMb();
  // 15,000 datagrams of 10 lines (~1.4 KB each), from a thread of their own while this one is held.
  const datagram = Array.from({ length: 10 }, () => 'burst:1|c|x' + 'p'.repeat(130)).join('\n');
  const sender = new Worker(
    `const d = require('dgram').createSocket('udp4'); let i = 0;
     const go = () => { for (let k = 0; k < 50; k++, i++) d.send(${JSON.stringify(datagram)}, ${port}, '127.0.0.1'); if (i < 15000) setTimeout(go, 1); else setTimeout(() => process.exit(0), 200); };
     go();`,
    { eval: true },
  );
  const until = Date.now() + 10_000;
  while (st.queuedBytes() < 18 << 20 && Date.now() < until);
  const queued = st.queuedBytes();
  await new Promise((res) => sender.once('exit', res));
  await waitFor('the burst to be parsed', () => st.queuedBytes() === 0);
  const touched = st.queueTouchedBytes();
  const afterBurst = rssMb();
  await waitFor('the queue to be replaced', () => st.queueReleases > 0, 30_000);
  await sleep(200);
  gc();
  await sleep(200);
  const afterRelease = rssMb();
  const mb = (n: number) => `${n.toFixed(0)} MB`;
  console.log(`RSS at start ${mb(start)}; burst queued ${mb(queued / 2 ** 20)}, touched ${mb(touched / 2 ** 20)} of the queue; RSS after it ${mb(afterBurst)}; after the queue was replaced and a full collection ${mb(afterRelease)}`);
  const given = afterBurst - afterRelease;
  const ok = given >= (touched / 2 ** 20) * 0.75;
  console.log(`${ok ? 'ok  ' : 'MISS'} gave back ${mb(given)} of the ${mb(touched / 2 ** 20)} the burst touched`);
  await r.stop();
  process.exitCode = ok ? 0 : 1;
} finally {
  await tdb.drop();
  fs.rmSync(dir, { recursive: true, force: true });
}
