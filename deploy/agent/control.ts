import http from 'node:http';
import type { Logger } from '../../services/kit/log.js';
import type { Agent } from './agent.js';

/**
 * The agent's control endpoint (loopback by default; `osprey-agent` CLI and the deploy
 * script talk to it):
 *   GET  /status            what runs, on which release, healthy or not
 *   POST /converge          converge now; answers when done
 *   POST /activate?release=20250131T235959Z   switch current and converge (rolls back on failure)
 *   POST /migrate?release=...                 run that release's migrations
 *   GET  /lb/<service>      200 while this host's <service> should get traffic, else 503
 */
export function startControlServer(agent: Agent, host: string, port: number, log: Logger): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
    };
    const handle = async () => {
      if (req.method === 'GET' && url.pathname === '/status') return send(200, await agent.status());
      if (req.method === 'POST' && url.pathname === '/converge') {
        const r = await agent.converge();
        return send(r.ok ? 200 : 500, r);
      }
      if (req.method === 'POST' && url.pathname === '/activate') {
        const r = await agent.activate(url.searchParams.get('release') ?? '');
        return send(r.ok ? 200 : 500, r);
      }
      if (req.method === 'POST' && url.pathname === '/migrate') {
        const r = await agent.migrate(url.searchParams.get('release') ?? '');
        return send(r.ok ? 200 : 500, r);
      }
      const lb = /^\/lb\/([a-z][a-z0-9-]*)$/.exec(url.pathname);
      if (req.method === 'GET' && lb) {
        const ok = await agent.inService(lb[1]);
        return send(ok ? 200 : 503, { service: lb[1], inService: ok });
      }
      send(404, { error: `no such endpoint: ${req.method} ${url.pathname}` });
    };
    req.resume();
    handle().catch((err: Error) => {
      log.error({ err }, 'control request failed');
      if (!res.headersSent) send(500, { ok: false, error: err.message });
    });
  });
  // A converge can take minutes; the caller waits for its answer.
  server.requestTimeout = 0;
  server.headersTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
