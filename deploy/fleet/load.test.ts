import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ezTraffic, graphTraffic, type LoadTarget } from './load.js';
import { waitFor } from './sim.js';

// The load generator's own rules, against small real servers: the fleet test trusts them.

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An HTTP server in its own process (so it can be SIGKILLed) answering 204 after 2 ms. */
/**
 * An /ez-like server in a process of its own. `cluster`: a node:cluster primary whose two
 * workers accept their own connections (as services/kit/cluster.ts runs api), each busy for
 * 40 ms of every 50, so that after the primary dies they hold the listening socket a while
 * before they notice and exit.
 */
async function serverProcess(cluster = false): Promise<{ url: string; child: ChildProcess }> {
  const serve = `const s = require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => setTimeout(() => res.writeHead(204).end(), 2)); });`;
  const code = cluster
    ? `const cluster = require('node:cluster');
       cluster.schedulingPolicy = cluster.SCHED_NONE;
       if (cluster.isPrimary) {
         const port = require('node:net').createServer().listen(0, '127.0.0.1', function () { const p = this.address().port; this.close(() => {
           let up = 0;
           for (let i = 0; i < 2; i++) cluster.fork({ PORT: String(p) }).on('listening', () => { if (++up === 2) process.stdout.write(p + '\\n'); });
         }); });
       } else {
         ${serve}
         s.listen(Number(process.env.PORT), '127.0.0.1');
         setInterval(() => { const end = Date.now() + 40; while (Date.now() < end); }, 50);
       }`
    : `${serve}
       s.listen(0, '127.0.0.1', () => process.stdout.write(String(s.address().port) + '\\n'));`;
  // A file, not -e: cluster workers run the primary's script again.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'osprey-load-test-'));
  const script = path.join(dir, 'server.cjs');
  writeFileSync(script, code);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  return { url: `http://127.0.0.1:${chunk.toString().trim()}`, child };
}

/** A server in this process; `handle` decides what each request gets. */
async function localServer(handle: http.RequestListener): Promise<string> {
  const server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An LB health URL that always says "in service": the balancer has not noticed anything. */
const alwaysUp = () => localServer((_req, res) => res.writeHead(200).end('ok'));

const gone = (pid: number) => {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
};

describe('LoadGenerator', () => {
  /**
   * /ez traffic to server process a and to b until both have answered some, then a killed by
   * killWhenIdle; the LB still says "up", so requests go to a again: they must be refused
   * (not reset) and moved to b, and no request may fail.
   */
  const killOneUnderLoad = async (aIsCluster: boolean) => {
    const [a, b] = await Promise.all([serverProcess(aIsCluster), serverProcess()]);
    const lb = await alwaysUp();
    const targets: LoadTarget[] = [
      { name: 'a', url: a.url, lb },
      { name: 'b', url: b.url, lb },
    ];
    const load = ezTraffic({ targets, ezkey: 'k', stat: 's', concurrency: 8, pauseMs: 0 });
    load.start();
    cleanups.push(async () => void (await load.stop()));
    await waitFor('traffic to both', async () => (load.stats.byTarget.a ?? 0) > 50 && (load.stats.byTarget.b ?? 0) > 50);

    await load.killWhenIdle('a', a.child.pid!);
    // Back in the pool only once the process no longer exists: its sockets are closed.
    expect(gone(a.child.pid!)).toBe(true);
    const refusedBefore = load.stats.refused;
    const okBefore = load.stats.ok;
    await waitFor('requests refused by a and moved', async () => load.stats.refused > refusedBefore && load.stats.ok > okBefore + 100);
    const stats = await load.stop();
    expect(stats.failures).toEqual([]);
  };

  it('SIGKILLs a target between requests, sends it nothing until the process is gone, and fails no /ez request', () => killOneUnderLoad(false));

  it('waits for the workers of a killed cluster primary too: they share its listening socket', () => killOneUnderLoad(true));

  it('moves a reset graph read to another host, but counts a reset /ez as failed', async () => {
    let resets = 0;
    const resetting = await localServer((req) => {
      resets++;
      req.socket.destroy();
    });
    const fine = await localServer((req, res) => {
      req.resume();
      req.on('end', () => (req.method === 'GET' ? res.writeHead(200, { 'content-type': 'application/json' }).end('{"stats":[{"id":7}]}') : res.writeHead(204).end()));
    });
    const lb = await alwaysUp();
    const targets: LoadTarget[] = [
      { name: 'resetting', url: resetting, lb },
      { name: 'fine', url: fine, lb },
    ];

    const graph = graphTraffic({
      targets,
      path: '/api/v1/stats/7/series',
      token: 't',
      concurrency: 2,
      pauseMs: 0,
      check: (body) => ((body as { stats: Array<{ id: number }> }).stats[0].id === 7 ? undefined : 'wrong stat'),
    });
    graph.start();
    await waitFor('graph reads', async () => graph.stats.ok > 20 && graph.stats.resetRetried > 5);
    const g = await graph.stop();
    expect(g.failures).toEqual([]);
    expect(g.byTarget).toEqual({ fine: g.ok });

    const ez = ezTraffic({ targets, ezkey: 'k', stat: 's', concurrency: 2, pauseMs: 0 });
    ez.start();
    await waitFor('ez failures', async () => ez.stats.failures.length > 5 && ez.stats.ok > 5);
    const e = await ez.stop();
    expect(e.resetRetried).toBe(0);
    expect(new Set(e.failures.map((f) => f.target))).toEqual(new Set(['resetting']));
    expect(e.failures[0].error).toMatch(/^ez: ECONNRESET/);
    expect(resets).toBeGreaterThan(0);
  });

  it('counts a graph answer that fails its check', async () => {
    const wrong = await localServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"stats":[{"id":8}]}'));
    const graph = graphTraffic({
      targets: [{ name: 'wrong', url: wrong, lb: await alwaysUp() }],
      path: '/x',
      token: 't',
      concurrency: 1,
      pauseMs: 0,
      check: (body) => ((body as { stats: Array<{ id: number }> }).stats[0].id === 7 ? undefined : 'wrong stat'),
    });
    graph.start();
    await waitFor('a failure', async () => graph.stats.failures.length > 0);
    const g = await graph.stop();
    expect(g.ok).toBe(0);
    expect(g.failures[0]).toMatchObject({ target: 'wrong', error: 'graph: wrong stat' });
  });
});
