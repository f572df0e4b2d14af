import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/lib/stack.js';
import { createAccount } from '../../kit/accounts.js';
import { createTestDatabase, type TestDatabase } from '../../kit/testing/db.js';
import { startStatsdReplica, statsdTestConfig, tempSocketDir, waitFor } from './testing.js';
import type { StatsdTestReplica } from './testing.js';

let tdb: TestDatabase;
let dir: string;
let r: StatsdTestReplica;
const T = Math.floor(Date.now() / 60_000) * 60_000 + 30_000;

/** Sends one command on a fresh connection and reads until `done` says the answer is complete. */
function ask(port: number, command: string, done: (text: string) => boolean = (t) => t.endsWith('END\n\n')): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      text += d;
      if (done(text)) {
        s.destroy();
        resolve(text);
      }
    });
    s.on('error', reject);
    s.on('end', () => resolve(text));
    s.write(command);
  });
}
const line = (t: string) => t.endsWith('\n');

function sendUdp(port: number, text: string): Promise<void> {
  const s = dgram.createSocket('udp4');
  return new Promise<void>((res, rej) => s.send(text, port, '127.0.0.1', (err) => (err ? rej(err) : res()))).finally(() => s.close());
}

// The same datagrams go to Etsy statsd and to Osprey; the management answers must match.
const DATAGRAMS = [
  'hits:1|c\nhits:2|c|@0.5\nhits:3|c|@0.1\nmulti:1|c:250|ms',
  'lat:12|ms\nlat:30|ms|@0.5\ntemp:20|g\ntemp:-3|g\ntemp:+1|g\nfresh:-5|g\nzero:0|g\nzero:+2|g',
  'users:u1|s\nt:1|c|#a:1,b\nbad line\na.x:1|c\na.y:2|c\nb.z:1|ms\nb.w:4|ms',
];
const LINES = DATAGRAMS.join('\n').split('\n').length;

let etsy: ChildProcess;
let etsyUdp: number;
let etsyMgmt: number;

beforeAll(async () => {
  [etsyUdp, etsyMgmt] = [await freePort(), await freePort()];
  const cfgDir = tempSocketDir();
  const cfg = path.join(cfgDir, 'etsy.js');
  fs.writeFileSync(cfg, JSON.stringify({ port: etsyUdp, address: '127.0.0.1', mgmt_port: etsyMgmt, mgmt_address: '127.0.0.1', backends: [], flushInterval: 3_600_000 }));
  etsy = spawn(process.execPath, [path.resolve('node_modules/statsd/stats.js'), cfg], { stdio: 'ignore' });
  await waitFor('Etsy statsd to listen', async () => (await ask(etsyMgmt, 'health\n', line).catch(() => '')) === 'health: up\n');
});
afterAll(() => {
  etsy?.kill();
});

beforeEach(async () => {
  tdb = await createTestDatabase();
  dir = tempSocketDir();
  const account = await createAccount(tdb.database.pool, 'mgmt@example.com');
  r = await startStatsdReplica(
    tdb,
    statsdTestConfig(path.join(dir, 'statsd.sock'), { STATSD_TCP: false, STATSD_UNIX: false, STATSD_DEFAULT_ACCOUNT: account.id }),
    () => T,
  );
});
afterEach(async () => {
  await r.stop();
  await tdb.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("Etsy's management interface", () => {
  it('answers counters, timers, gauges, the del* commands and health exactly as Etsy statsd does', async () => {
    const port = r.statsd.management!.address()!.port;
    const udp = r.statsd.udp!.address()!.port;
    for (const d of DATAGRAMS) {
      await sendUdp(udp, d);
      await sendUdp(etsyUdp, d);
    }
    await waitFor('Osprey to read the datagrams', () => r.statsd.udp!.stats.lines === LINES);
    await waitFor('Etsy to read the datagrams', async () => (await ask(etsyMgmt, 'counters\n')).includes(`'statsd.metrics_received': ${LINES}`));
    await r.statsd.intake!.settle(10_000);

    const both = async (command: string, done?: (t: string) => boolean) => {
      const [ours, theirs] = [await ask(port, command, done), await ask(etsyMgmt, command, done)];
      expect(ours, command).toBe(theirs);
      return ours;
    };
    const counters = await both('counters\n');
    expect(counters).toContain("hits: 35");
    expect(counters).toContain("'t;a=1;b': 1");
    expect(await both('timers\n')).toContain("lat: [ 12, 30 ]");
    expect(await both('gauges\n')).toBe("{ temp: 18, fresh: -5, zero: 2 }\nEND\n\n");
    expect(await both('delcounters a.* hits nope\n')).toBe('deleted: a.x\ndeleted: a.y\ndeleted: hits\nmetric nope not found\nEND\n\n');
    await both('counters\n');
    // A deleted counter comes back with its next sample (the parser's memo of it is stale).
    await sendUdp(udp, 'hits:2|c');
    await sendUdp(etsyUdp, 'hits:2|c');
    await waitFor('Osprey to read it', () => r.statsd.udp!.stats.lines === LINES + 1);
    await waitFor('Etsy to read it', async () => (await ask(etsyMgmt, 'counters\n')).includes(`'statsd.metrics_received': ${LINES + 1}`));
    expect(await both('counters\n')).toContain('hits: 2');
    await both('deltimers b.w\n');
    await both('timers\n');
    await both('delgauges temp\n');
    await both('gauges\n');
    expect(await both('health\n', line)).toBe('health: up\n');
    expect(await both('health down\n', line)).toBe('health: down\n');
    expect(await both('health\n', line)).toBe('health: down\n');
    await both('health up\n', line);
    expect(await both('frobnicate\n', line)).toBe('ERROR\n');

    // stats: Etsy's lines, then Osprey's own
    const [ours, theirs] = [await ask(port, 'stats\n'), await ask(etsyMgmt, 'stats\n')];
    const keys = (t: string) => t.split('\n').filter((l) => l.includes(': ')).map((l) => l.split(': ')[0]);
    expect(keys(ours).slice(0, 3)).toEqual(keys(theirs));
    expect(ours).toContain('messages.bad_lines_seen: 1\n');
    expect(theirs).toContain('messages.bad_lines_seen: 1\n');
    expect(ours).toMatch(/^uptime: \d+\nmessages\.last_msg_seen: \d+\nmessages\.bad_lines_seen: 1\nosprey\.live_stats: \d+\nosprey\.pending_samples: 0\nEND\n\n$/);
  });

  it('answers help, takes several commands per connection, a last command without a newline, and quit', async () => {
    const port = r.statsd.management!.address()!.port;
    expect(await ask(port, 'help\n', (t) => t.endsWith('\n\n'))).toBe('Commands: stats, counters, timers, gauges, delcounters, deltimers, delgauges, health, quit\n\n');
    expect(await ask(port, 'health\nhealth down\n', (t) => t.split('\n').length === 3)).toBe('health: up\nhealth: down\n');
    // `printf gauges | nc host 8126`: no newline, then the end of the stream
    const s = net.connect({ host: '127.0.0.1', port });
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (text += d));
      s.on('end', () => resolve(text));
      s.end('gauges');
    });
    expect(answer).toBe('{}\nEND\n\n');
    // quit closes the connection; what follows it is not run
    expect(await ask(port, 'quit\nhealth\n', () => false)).toBe('');
  });
});
