import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFakeImds } from '../fleet/sim.js';
import { parseRoles, portsOf, SERVICES } from '../services.js';
import { readEnvFile } from './agent.js';
import { renderUnit } from './systemd-backend.js';
import { FileTagSource, ImdsTagSource } from './tags.js';

describe('host tags', () => {
  it('reads osprey:roles and osprey:replicas over IMDSv2, leaving out tags that are not set', async () => {
    const imds = await startFakeImds('127.0.0.1', { 'osprey:roles': 'api,ingest', Name: 'h1' });
    try {
      const source = new ImdsTagSource(imds.url);
      expect(await source.read()).toEqual({ 'osprey:roles': 'api,ingest' });
      imds.setTags({ 'osprey:roles': 'ingest', 'osprey:replicas': 'ingest=3' });
      expect(await source.read()).toEqual({ 'osprey:roles': 'ingest', 'osprey:replicas': 'ingest=3' });
      expect(await source.localIpv4()).toBe('127.0.0.1');
      // Without the token dance the fake answers 401, as IMDSv2-only instances do.
      expect((await fetch(`${imds.url}/latest/meta-data/tags/instance/osprey:roles`)).status).toBe(401);
    } finally {
      await imds.close();
    }
  });

  it('reads a tags file', async () => {
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'osprey-tags-')), 'tags.json');
    await fs.writeFile(file, JSON.stringify({ 'osprey:roles': 'api', other: 1 }));
    expect(await new FileTagSource(file).read()).toEqual({ 'osprey:roles': 'api' });
  });

  it('turns tags into services and replica counts', () => {
    const r = parseRoles({ 'osprey:roles': ' api, ingest ,frobnicator,', 'osprey:replicas': 'ingest=2, api=4, bogus' });
    expect([...r.services]).toEqual([
      ['api', 4],
      ['ingest', 2],
    ]);
    expect(r.unknown).toEqual(['frobnicator']);
    expect([...parseRoles({ 'osprey:roles': 'ingest', 'osprey:replicas': 'ingest=0' }).services]).toEqual([]);
  });
});

describe('the port plan', () => {
  it('gives each replica fixed, distinct ports', () => {
    expect(portsOf(SERVICES.ingest, 0)).toEqual({ rpc: 7100, ops: 7101 });
    expect(portsOf(SERVICES.ingest, 1)).toEqual({ rpc: 7102, ops: 7103 });
    expect(portsOf(SERVICES.api, 0, 20000)).toEqual({ rpc: 27000, ops: 27001, public: 28088 });
    const starts = Object.values(SERVICES).map((d) => d.basePort).sort();
    for (let i = 1; i < starts.length; i++) expect(starts[i] - starts[i - 1]).toBeGreaterThanOrEqual(100);
  });
});

describe('environment and unit files', () => {
  it('reads KEY=VALUE files', async () => {
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'osprey-env-')), 'osprey.env');
    await fs.writeFile(file, '# comment\nA=1\nexport B="two words"\nC=\'x=y\'\n\nbad line\n');
    expect(await readEnvFile(file)).toEqual({ A: '1', B: 'two words', C: 'x=y' });
    expect(await readEnvFile(`${file}.missing`)).toEqual({});
  });

  it('writes a systemd unit that names its release and keeps secrets out', () => {
    const text = renderUnit(
      {
        name: 'ingest-1',
        service: 'ingest',
        index: 1,
        release: '20250101T000000Z',
        cwd: '/opt/osprey/releases/20250101T000000Z',
        entry: '/opt/osprey/releases/20250101T000000Z/dist/services/ingest/main.js',
        nodeArgs: [...SERVICES.ingest.nodeArgs],
        env: { SERVICE_TOKEN: 'secret-secret-secret' },
        ports: { rpc: 7102, ops: 7103 },
        hash: 'abc',
      },
      { node: '/usr/bin/node', user: 'osprey', stopTimeoutMs: 30_000, envFile: '/opt/osprey/state/env/ingest-1.env' },
    );
    // the service's node flags come before its entry
    expect(text).toContain('ExecStart=/usr/bin/node --min-semi-space-size=4 --max-semi-space-size=4 --single-threaded-gc --expose-gc /opt/osprey/releases/20250101T000000Z/dist/services/ingest/main.js');
    expect(text).toContain('EnvironmentFile=/opt/osprey/state/env/ingest-1.env');
    expect(text).toContain('Restart=always');
    // ingest's UDP reader may go real-time as the unit's user (reader-priority.ts)
    expect(text).toContain('LimitRTPRIO=10');
    expect(text).not.toContain('secret-secret');
  });
});
