import { parseArgs } from 'node:util';
import { controlRequest } from './control-client.js';

/**
 * osprey-agent status | converge | activate <release> | migrate <release> [--control URL]
 *
 * Talks to the agent on this host (its control endpoint is loopback-only); the deploy
 * script runs it over ssh. Prints the agent's JSON answer; exits 1 when it reports failure.
 */
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { control: { type: 'string', default: 'http://127.0.0.1:7070' } },
});
const [command, release] = positionals;
const routes: Record<string, [string, string]> = {
  status: ['GET', '/status'],
  converge: ['POST', '/converge'],
  activate: ['POST', `/activate?release=${encodeURIComponent(release ?? '')}`],
  migrate: ['POST', `/migrate?release=${encodeURIComponent(release ?? '')}`],
};
const route = command ? routes[command] : undefined;
if (!route || ((command === 'activate' || command === 'migrate') && !release)) {
  process.stderr.write('usage: osprey-agent status | converge | activate <release> | migrate <release> [--control URL]\n');
  process.exit(2);
}
try {
  const res = await controlRequest(values.control!, route[0] as 'GET' | 'POST', route[1]);
  process.stdout.write(res.body);
  process.exit(res.status === 200 ? 0 : 1);
} catch (err) {
  process.stderr.write(`osprey-agent: cannot reach the agent at ${values.control}: ${(err as Error).message}\n`);
  process.exit(3);
}
