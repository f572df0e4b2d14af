import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRelease, hashTree, releaseTimestamp, verifyRelease, type BuiltRelease } from './release.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let out: string;
let a: BuiltRelease;
let b: BuiltRelease;

beforeAll(async () => {
  out = await fs.mkdtemp(path.join(os.tmpdir(), 'osprey-release-'));
  a = await buildRelease({ root, outDir: out, timestamp: '20240101T000000Z', link: true });
  b = await buildRelease({ root, outDir: out, timestamp: '20240101T000001Z', link: true });
}, 300_000);
afterAll(async () => {
  await fs.rm(out, { recursive: true, force: true });
});

describe('buildRelease', () => {
  it('names releases by UTC time', () => {
    expect(releaseTimestamp(new Date(Date.UTC(2025, 0, 31, 23, 59, 58, 123)))).toBe('20250131T235958Z');
  });

  it('holds compiled ESM, production node_modules, migrations, deploy/ and a manifest', async () => {
    const files = Object.keys(a.manifest.files);
    expect(files).toContain('dist/services/ingest/main.js');
    expect(files).toContain('dist/services/api/main.js');
    expect(files).toContain('dist/deploy/agent/main.js');
    expect(files).toContain('dist/services/kit/db/migrations/meta/_journal.json');
    // Read by the web app at start, beside its compiled code.
    for (const f of ['app.js', 'embed.js', 'style.css']) expect(files).toContain(`dist/services/web/assets/${f}`);
    expect(files).toContain('deploy/systemd/osprey-agent.service');
    expect(files).toContain('node_modules/mysql2/package.json');
    expect(files.some((f) => f.startsWith('node_modules/vitest/'))).toBe(false);
    expect(files.some((f) => f.startsWith('dist/') && f.endsWith('.test.js'))).toBe(false);
    expect(files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('node_modules/'))).toBe(false);
    expect(a.manifest.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(await fs.readFile(path.join(a.dir, 'dist/services/ingest/main.js'), 'utf8')).toMatch(/^import .* from '\.\.\/kit\/config\.js';$/m);
    expect(await verifyRelease(a.dir)).toEqual([]);
  });

  it('gives two builds of one commit that differ only in the timestamp', async () => {
    const { timestamp: ta, ...restA } = a.manifest;
    const { timestamp: tb, ...restB } = b.manifest;
    expect(ta).not.toBe(tb);
    expect(restB).toEqual(restA);
    expect(await hashTree(b.dir)).toEqual(await hashTree(a.dir));
    const listing = (r: BuiltRelease) =>
      execFileSync('tar', ['-tzvf', r.tarball!], { maxBuffer: 256 * 1024 * 1024 })
        .toString()
        .replaceAll(r.timestamp, 'TS');
    const [la, lb] = [listing(a), listing(b)];
    expect(la.split('\n').length).toBeGreaterThan(1000);
    expect(lb).toBe(la);
  });

  it('notices a changed, missing or extra file', async () => {
    await fs.appendFile(path.join(b.dir, 'dist/services/ingest/main.js'), '\n');
    await fs.rm(path.join(b.dir, 'package.json'));
    await fs.writeFile(path.join(b.dir, 'stray.txt'), 'x');
    expect((await verifyRelease(b.dir)).sort()).toEqual(['changed dist/services/ingest/main.js', 'extra stray.txt', 'missing package.json']);
  });
});
