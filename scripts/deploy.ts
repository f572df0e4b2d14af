import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runDeploy } from '../deploy/deployer/deploy.js';
import { describeEc2Hosts, loadInventoryFile, parseFilter, type Host } from '../deploy/deployer/inventory.js';
import { RELEASE_NAME } from '../deploy/release.js';

const USAGE = `usage: npm run deploy -- [--release DIR|TIMESTAMP] (--inventory FILE | --ec2 [--ec2-endpoint URL] [--region R] [--ec2-filter Name=V1,V2]...)
         [--hosts h1,h3] [--role ROLE] [--canary N] [--dry-run] [--force] [--no-migrate] [--json]
  --release   a release directory or its timestamp under releases/ (default: the newest)
  --hosts     only these hosts          --role     only hosts with this role
  --canary N  N hosts first, all healthy, then the rest, one host at a time
  --dry-run   print the plan (which host gets what, which replicas restart) and stop
  --force     go ahead with a plan that leaves a service with fewer than two replicas
exit: 0 done, 2 bad arguments, 3 plan refused, 4 a host failed (it rolled back), 5 last healthy replica`;

const { values } = parseArgs({
  options: {
    release: { type: 'string' },
    inventory: { type: 'string' },
    ec2: { type: 'boolean', default: false },
    'ec2-endpoint': { type: 'string' },
    region: { type: 'string' },
    'ec2-filter': { type: 'string', multiple: true },
    'ssh-user': { type: 'string' },
    home: { type: 'string' },
    hosts: { type: 'string' },
    role: { type: 'string' },
    canary: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    force: { type: 'boolean', default: false },
    'no-migrate': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

function fail(msg: string, code = 2): never {
  process.stderr.write(`deploy: ${msg}\n`);
  process.exit(code);
}

if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const releasesDir = path.join(root, 'releases');
let releaseDir: string;
if (values.release && fs.existsSync(path.join(values.release, 'manifest.json'))) releaseDir = path.resolve(values.release);
else if (values.release && RELEASE_NAME.test(values.release)) releaseDir = path.join(releasesDir, values.release);
else if (values.release) fail(`--release ${values.release}: no release there\n${USAGE}`);
else {
  const newest = (fs.existsSync(releasesDir) ? fs.readdirSync(releasesDir) : []).filter((n) => RELEASE_NAME.test(n)).sort().pop();
  if (!newest) fail('no release under releases/: run `npm run release` first');
  releaseDir = path.join(releasesDir, newest);
}
if (!fs.existsSync(path.join(releaseDir, 'manifest.json'))) fail(`${releaseDir} has no manifest.json`);
if (!!values.inventory === values.ec2) fail(`give --inventory FILE or --ec2\n${USAGE}`);
const canary = values.canary === undefined ? 0 : Number(values.canary);
if (!Number.isInteger(canary) || canary < 0) fail('--canary must be a whole number');

let hosts: Host[];
try {
  hosts = values.inventory
    ? await loadInventoryFile(values.inventory)
    : await describeEc2Hosts({
        endpoint: values['ec2-endpoint'],
        region: values.region,
        filters: (values['ec2-filter'] ?? []).map(parseFilter),
        home: values.home,
        sshUser: values['ssh-user'],
      });
} catch (err) {
  fail(`cannot list hosts: ${(err as Error).message}`);
}
if (hosts.length === 0) fail('the inventory has no hosts');

const result = await runDeploy({
  releaseDir,
  hosts,
  only: values.hosts?.split(',').map((s) => s.trim()).filter(Boolean),
  role: values.role,
  canary,
  dryRun: values['dry-run'],
  force: values.force,
  migrate: !values['no-migrate'],
  out: (line) => process.stdout.write(`${line}\n`),
});
if (result.error) process.stderr.write(`deploy: ${result.error}\n`);
if (values.json) process.stdout.write(`${JSON.stringify({ ok: result.ok, exitCode: result.exitCode, error: result.error, results: result.results })}\n`);
process.exit(result.exitCode);
