import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { ConfigError, loadConfig } from './config.js';
import { ingestConfigSchema } from '../ingest/config.js';

describe('loadConfig', () => {
  it('names every missing or bad variable and what it must be', () => {
    let err: unknown;
    try {
      loadConfig(ingestConfigSchema, { DATABASE_URL: 'postgres://x', FLUSH_INTERVAL_MS: 'soon' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).toContain('DATABASE_URL="postgres://x": must be a mysql:// URL');
    expect(msg).toContain('SERVICE_TOKEN: missing');
    expect(msg).toContain('FLUSH_INTERVAL_MS="soon"');
  });

  it('never prints a secret', () => {
    expect(() => loadConfig(ingestConfigSchema, { DATABASE_URL: 'mysql://r@h/d', SERVICE_TOKEN: 'short' })).toThrow('SERVICE_TOKEN="***"');
  });

  it('applies defaults', () => {
    const c = loadConfig(ingestConfigSchema, { DATABASE_URL: 'mysql://r@h/d', SERVICE_TOKEN: 'x'.repeat(16) });
    expect(c.FLUSH_INTERVAL_MS).toBe(1000);
    expect(c.RPC_HOST).toBe('127.0.0.1');
  });

  it('stops a service at start with exit code 2 and the message', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'services/ingest/main.ts'], { env: { PATH: process.env.PATH, DATABASE_URL: 'nope' }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('osprey ingest: invalid configuration');
    expect(r.stderr).toContain('DATABASE_URL="nope"');
  });
});
