import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeEc2 } from '../testing/fake-ec2.js';
import { runDeploy } from './deploy.js';
import { describeEc2Hosts, loadInventoryFile, parseFilter, type Host } from './inventory.js';

let dir: string;
let releaseDir: string;
const RELEASE = '20250101T000000Z';

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'osprey-deployer-'));
  releaseDir = path.join(dir, RELEASE);
  await fs.mkdir(releaseDir);
  await fs.writeFile(path.join(releaseDir, 'manifest.json'), JSON.stringify({ name: 'osprey', timestamp: RELEASE, commit: 'c'.repeat(40), dirty: false, files: {} }));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Hosts whose agents cannot be reached: plans come from the inventory's tags alone. */
function hosts(spec: Record<string, string>): Host[] {
  return Object.entries(spec).map(([name, roles], i) => {
    const [r, replicas] = roles.split(' ');
    return {
      name,
      address: `10.0.0.${i + 1}`,
      home: '/opt/osprey',
      transport: 'local' as const,
      control: 'http://127.0.0.1:1',
      tags: { 'osprey:roles': r, ...(replicas ? { 'osprey:replicas': replicas } : {}) },
    };
  });
}

async function dryRun(h: Host[], extra: Partial<Parameters<typeof runDeploy>[0]> = {}) {
  const lines: string[] = [];
  const r = await runDeploy({ releaseDir, hosts: h, dryRun: true, out: (l) => lines.push(l), ...extra });
  return { ...r, text: lines.join('\n') };
}

describe('deploy plans', () => {
  it('prints which host gets what and which replicas restart, canary first', async () => {
    const r = await dryRun(hosts({ a: 'api,ingest ingest=2', b: 'api,ingest', c: 'api' }), { canary: 1 });
    expect(r.exitCode).toBe(0);
    expect(r.text).toBe(
      [
        `release ${RELEASE} (commit cccccccccccc)`,
        `  a 10.0.0.1 roles api,ingest=2: (none) -> ${RELEASE}, restarts api-0, ingest-0, ingest-1 [canary]`,
        `  b 10.0.0.2 roles api,ingest: (none) -> ${RELEASE}, restarts api-0, ingest-0`,
        `  c 10.0.0.3 roles api: (none) -> ${RELEASE}, restarts api-0`,
        'steps: copy to 3 host(s); canary a, then one host at a time: a, b, c',
      ].join('\n'),
    );
  });

  it('targets hosts by name and by role', async () => {
    const h = hosts({ a: 'api,ingest', b: 'api,ingest', c: 'api', d: 'api' });
    expect((await dryRun(h, { role: 'ingest' })).plan!.targets.map((t) => t.host.name)).toEqual(['a', 'b']);
    expect((await dryRun(h, { only: ['c', 'a'] })).plan!.targets.map((t) => t.host.name)).toEqual(['a', 'c']);
    expect((await dryRun(h, { only: ['c'] })).text).toContain('not targeted: a, b, d');
    expect((await dryRun(h, { only: ['zz'] })).exitCode).toBe(2);
    expect((await dryRun(h, { role: 'graphing' })).error).toBe('no targeted host has the role "graphing"');
  });

  it('refuses a plan that leaves a service with fewer than two replicas, unless forced', async () => {
    const single = hosts({ a: 'api,ingest', b: 'api' });
    const r = await dryRun(single);
    expect(r.exitCode).toBe(3);
    expect(r.text).toContain('REFUSED: ingest has 1 replica process in the fleet (a)');
    expect((await runDeploy({ releaseDir, hosts: single, out: () => {} })).exitCode).toBe(3);
    expect((await dryRun(single, { force: true })).exitCode).toBe(0);
    // api is one process per host whatever its worker count: four workers on one host is still one.
    expect((await dryRun(hosts({ a: 'api,ingest api=4', b: 'ingest' }))).text).toContain('REFUSED: api has 1 replica process');
    // Two ingest processes on one host roll one at a time: allowed.
    expect((await dryRun(hosts({ a: 'api,ingest ingest=2', b: 'api' }))).exitCode).toBe(0);
  });
});

describe('inventories', () => {
  it('lists running EC2 instances with osprey:roles through DescribeInstances, page by page', async () => {
    const ec2 = await startFakeEc2([
      { id: 'i-1', privateIp: '10.1.0.1', state: 'running', tags: { Name: 'edge-b', 'osprey:roles': 'api,ingest', 'osprey:cluster': 'prod' } },
      { id: 'i-2', privateIp: '10.1.0.2', state: 'running', tags: { Name: 'edge-a', 'osprey:roles': 'api', 'osprey:replicas': 'api=4', 'osprey:cluster': 'prod' } },
      { id: 'i-3', privateIp: '10.1.0.3', state: 'stopped', tags: { 'osprey:roles': 'api', 'osprey:cluster': 'prod' } },
      { id: 'i-4', privateIp: '10.1.0.4', state: 'running', tags: { Name: 'bastion', 'osprey:cluster': 'prod' } },
      { id: 'i-5', privateIp: '10.1.0.5', state: 'running', tags: { 'osprey:roles': 'api', 'osprey:cluster': 'staging' } },
    ]);
    try {
      const found = await describeEc2Hosts({
        endpoint: ec2.url,
        region: 'eu-west-1',
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
        filters: [parseFilter('tag:osprey:cluster=prod')],
        sshUser: 'deploy',
      });
      expect(found.map((h) => [h.name, h.address, h.tags?.['osprey:roles'], h.transport, h.sshUser])).toEqual([
        ['edge-a', '10.1.0.2', 'api', 'ssh', 'deploy'],
        ['edge-b', '10.1.0.1', 'api,ingest', 'ssh', 'deploy'],
      ]);
      expect(ec2.requests.length).toBe(2);
      expect(ec2.requests[0].get('Filter.2.Name')).toBe('tag-key');
      expect(ec2.requests[1].get('NextToken')).toBe('1');
    } finally {
      await ec2.close();
    }
  });

  it('reads an inventory file with defaults', async () => {
    const file = path.join(dir, 'inventory.json');
    await fs.writeFile(file, JSON.stringify({ defaults: { sshUser: 'ops' }, hosts: [{ name: 'x', address: '10.0.0.9', home: '/srv/osprey' }] }));
    expect(await loadInventoryFile(file)).toEqual([{ name: 'x', address: '10.0.0.9', home: '/srv/osprey', transport: 'ssh', sshUser: 'ops' }]);
  });
});
