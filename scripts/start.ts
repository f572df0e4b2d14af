// npm start: the whole stack on this machine, two replicas of every service.
import fs from 'node:fs';
import path from 'node:path';
import { createAccount, findAccountByEmail } from '../services/kit/accounts.js';
import { connectDatabase, redactUrl } from '../services/kit/db/client.js';
import { migrateDatabase } from '../services/kit/db/migrate.js';
import { resolveDatabase } from './lib/local-db.js';
import { startStack, type ServiceSpec } from './lib/stack.js';

const DEMO_EMAIL = 'demo@osprey.local';

/** Every service that exists in this checkout, in start order (callees first). */
const ALL: (ServiceSpec & { port?: number; url?: (port: number) => string })[] = [
  { name: 'ingest', kind: 'rpc', replicas: 2 },
  { name: 'graphing', kind: 'rpc', replicas: 2 },
  { name: 'alerting', kind: 'rpc', replicas: 2 },
  { name: 'reporting', kind: 'rpc', replicas: 2 },
  { name: 'api', kind: 'http', replicas: 2, port: 8088, url: (p) => `http://localhost:${p}/ez  (StatHat ingest)` },
  { name: 'web', kind: 'http', replicas: 2, port: 8080, url: (p) => `http://localhost:${p}/  (web app, /api/v1, /x, embeds)` },
];

const local = await resolveDatabase(process.env);
console.log(`database: ${redactUrl(local.url)} (${local.where})`);
await migrateDatabase(local.url);

const database = connectDatabase(local.url, { connectionLimit: 1 });
const demo = (await findAccountByEmail(database.pool, DEMO_EMAIL)) ?? (await createAccount(database.pool, DEMO_EMAIL));
await database.close();

const services = ALL.filter((s) => fs.existsSync(path.join('services', s.name, 'main.ts')));
const ports = Object.fromEntries(services.filter((s) => s.port).map((s) => [s.name, Number(process.env[`${s.name.toUpperCase()}_PORT`] ?? s.port)]));
// The web app shows new users a curl line for the api: give it the api's real address.
const apiUrl = `http://localhost:${ports.api ?? 8088}`;
// statsd lines (no auth) go to the demo account unless told otherwise.
const statsdAccount = process.env.STATSD_DEFAULT_ACCOUNT ?? String(demo.id);
const stack = await startStack({ databaseUrl: local.url, services, ports, stdio: 'inherit', env: { API_PUBLIC_URL: apiUrl, STATSD_DEFAULT_ACCOUNT: statsdAccount, WAL_ROOT: path.resolve('.data/wal') } });

let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping every service (they flush first)…');
  await stack.stop();
  await local.stop();
  console.log('stopped.');
  process.exit(code);
};
// Ctrl-C reaches the children too (same process group); they stop themselves gracefully.
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
for (const p of stack.processes) {
  void p.exited.then((code) => {
    if (!stopping) {
      console.error(`${p.service} exited unexpectedly (code ${code}); stopping the stack`);
      void stop(1);
    }
  });
}

try {
  await stack.ready();
} catch (err) {
  console.error(`osprey did not start: ${(err as Error).message}`);
  await stop(1);
}

const apiPort = stack.ports.api;
console.log(`
Osprey is running: ${services.map((s) => `${s.name} ×${s.replicas}`).join(', ')}
${services.filter((s) => s.url).map((s) => `  ${s.url!(stack.ports[s.name])}`).join('\n')}

demo account: ${demo.email}
ezkey:        ${demo.ezkey}

send a point:
  curl -i -d "ezkey=${demo.ezkey}&stat=page+views&count=1" http://localhost:${apiPort}/ez

or over statsd (UDP or TCP 8125, .data/run/statsd.sock; management on 127.0.0.1:8126):
  echo "page.views:1|c" | nc -u -w1 localhost 8125

see it (within a second or two):
  npm run osprey -- stats list --ezkey ${demo.ezkey}
${services.some((s) => s.name === 'alerting' || s.name === 'reporting') ? `\nmail: ${process.env.SMTP_URL ? `sent over ${process.env.SMTP_URL.replace(/\/\/[^@]*@/, '//')}` : 'no SMTP_URL, so alert and report mails are written to .data/outbox/*.eml'}\n` : ''}
Ctrl-C stops everything.`);
