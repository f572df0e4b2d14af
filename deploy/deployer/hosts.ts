import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { AgentStatus, ConvergeResult } from '../agent/agent.js';
import { controlRequest } from '../agent/control-client.js';
import type { Host } from './inventory.js';

const exec = promisify(execFile);

function sshTarget(host: Host): string {
  return host.sshUser ? `${host.sshUser}@${host.address}` : host.address;
}

const SSH_OPTS = ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10'];

/**
 * Copies a release into <home>/releases/<timestamp> on the host: rsync into a hidden
 * directory, hard-linking files unchanged since the host's current release (node_modules
 * rarely changes, so a new release costs little), then one rename. A release already on
 * the host is left as it is (releases are immutable; the agent checks the manifest).
 */
export async function copyRelease(host: Host, releaseDir: string): Promise<'copied' | 'present'> {
  const name = path.basename(releaseDir);
  const releases = `${host.home}/releases`;
  const incoming = `${releases}/.incoming-${name}`;
  const args = ['-a', '--delete', '--link-dest=../../current/', `${releaseDir}/`];
  if (host.transport === 'local') {
    if (await fs.stat(path.join(releases, name)).catch(() => undefined)) return 'present';
    await fs.mkdir(releases, { recursive: true });
    await fs.rm(incoming, { recursive: true, force: true });
    // Same filesystem: a copy made of hard links (releases are never modified); else rsync.
    await exec('cp', ['-al', releaseDir, incoming]).catch(async () => {
      await fs.rm(incoming, { recursive: true, force: true });
      await exec('rsync', [...args, `${incoming}/`], { maxBuffer: 16 * 1024 * 1024 });
    });
    await fs.rename(incoming, path.join(releases, name));
    return 'copied';
  }
  const target = sshTarget(host);
  const present = await exec('ssh', [...SSH_OPTS, target, '--', 'test', '-d', `${releases}/${name}`]).then(
    () => true,
    () => false,
  );
  if (present) return 'present';
  await exec('ssh', [...SSH_OPTS, target, '--', 'mkdir', '-p', releases]);
  await exec('rsync', ['-e', `ssh ${SSH_OPTS.join(' ')}`, ...args, `${target}:${incoming}/`], { maxBuffer: 16 * 1024 * 1024 });
  await exec('ssh', [...SSH_OPTS, target, '--', 'mv', '-T', incoming, `${releases}/${name}`]);
  return 'copied';
}

/** Talks to a host's agent: its control URL directly, or `osprey-agent` over ssh. */
export interface HostAgent {
  status(): Promise<AgentStatus>;
  activate(release: string): Promise<ConvergeResult>;
  migrate(release: string): Promise<{ ok: boolean; output: string }>;
}

export function agentFor(host: Host): HostAgent {
  const call = async (method: 'GET' | 'POST', cli: string[], pathAndQuery: string, release?: string): Promise<string> => {
    if (host.control) return (await controlRequest(host.control, method, pathAndQuery)).body;
    // The CLI of the release being deployed (or the current one for status).
    const cliPath = `${host.home}/${release ? `releases/${release}` : 'current'}/dist/deploy/agent/cli.js`;
    try {
      return (await exec('ssh', [...SSH_OPTS, sshTarget(host), '--', 'node', cliPath, ...cli], { maxBuffer: 16 * 1024 * 1024 })).stdout;
    } catch (err) {
      // The CLI exits 1 when the agent reports a failure; its answer is still on stdout.
      const out = (err as { stdout?: string }).stdout;
      if (out) return out;
      throw err;
    }
  };
  return {
    status: async () => JSON.parse(await call('GET', ['status'], '/status')) as AgentStatus,
    activate: async (release) => JSON.parse(await call('POST', ['activate', release], `/activate?release=${release}`, release)) as ConvergeResult,
    migrate: async (release) => JSON.parse(await call('POST', ['migrate', release], `/migrate?release=${release}`, release)) as { ok: boolean; output: string },
  };
}
