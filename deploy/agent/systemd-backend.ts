import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { REALTIME_PRIORITY } from '../../services/ingest/statsd/reader-priority.js';
import type { Backend, UnitSpec, UnitStatus } from './backend.js';

const exec = promisify(execFile);

/** sd_booted(): systemd is the running init when this directory exists. */
export function systemdRuns(): boolean {
  return existsSync('/run/systemd/system');
}

export interface SystemdBackendOptions {
  node: string;
  /** Where unit files are written (/etc/systemd/system). */
  unitDir: string;
  /** Where each unit's environment file is written (readable by root only: it holds secrets). */
  envDir: string;
  user: string;
  stopTimeoutMs: number;
  /** Runs systemctl; replaceable so unit handling can be exercised where systemd does not run. */
  systemctl?: (args: string[]) => Promise<string>;
}

const PREFIX = 'osprey-';

/**
 * One systemd unit per replica (`osprey-ingest-0.service`): systemd restarts a crashed
 * replica (Restart=always, with growing delays where systemd supports RestartSteps), logs
 * go to the journal, and replicas outlive a restart of the agent. The unit names its
 * release in ExecStart, so moving to a new release is: rewrite the unit, daemon-reload,
 * restart.
 */
export class SystemdBackend implements Backend {
  readonly kind = 'systemd' as const;
  private readonly systemctl: (args: string[]) => Promise<string>;

  constructor(private readonly opts: SystemdBackendOptions) {
    this.systemctl = opts.systemctl ?? (async (args) => (await exec('systemctl', args)).stdout);
  }

  unitName(name: string): string {
    return `${PREFIX}${name}.service`;
  }

  async start(spec: UnitSpec): Promise<void> {
    await fs.mkdir(this.opts.envDir, { recursive: true, mode: 0o700 });
    const envFile = path.join(this.opts.envDir, `${spec.name}.env`);
    await writeAtomic(envFile, renderEnvFile(spec.env), 0o600);
    await writeAtomic(path.join(this.opts.unitDir, this.unitName(spec.name)), renderUnit(spec, { ...this.opts, envFile }), 0o644);
    await this.systemctl(['daemon-reload']);
    await this.systemctl(['restart', this.unitName(spec.name)]);
  }

  async stop(name: string): Promise<void> {
    await this.systemctl(['stop', this.unitName(name)]).catch(() => '');
    await fs.rm(path.join(this.opts.unitDir, this.unitName(name)), { force: true });
    await fs.rm(path.join(this.opts.envDir, `${name}.env`), { force: true });
    await this.systemctl(['daemon-reload']);
  }

  async list(): Promise<UnitStatus[]> {
    const files = (await fs.readdir(this.opts.unitDir).catch(() => [] as string[])).filter((f) => f.startsWith(PREFIX) && f.endsWith('.service') && f !== 'osprey-agent.service');
    const out: UnitStatus[] = [];
    for (const file of files.sort()) {
      const text = await fs.readFile(path.join(this.opts.unitDir, file), 'utf8');
      const specLine = /^X-OspreySpec=(.*)$/m.exec(text);
      if (!specLine) continue;
      const spec = JSON.parse(Buffer.from(specLine[1], 'base64').toString('utf8')) as UnitSpec;
      const show = await this.systemctl(['show', file, '-p', 'ActiveState', '-p', 'MainPID', '-p', 'NRestarts']).catch(() => '');
      const prop = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(show)?.[1];
      const active = prop('ActiveState');
      const pid = Number(prop('MainPID') ?? 0);
      const restarts = Number(prop('NRestarts') ?? 0);
      out.push({
        spec: { ...spec, env: {} },
        state: active === 'active' ? 'running' : active === 'activating' || active === 'failed' ? 'backoff' : active ? 'stopped' : 'unknown',
        pid: pid > 0 ? pid : undefined,
        restarts,
        exitsSinceStart: active === 'failed' ? 1 : 0,
      });
    }
    return out;
  }

  async close(): Promise<void> {
    // Units run on without the agent.
  }
}

export function renderUnit(spec: UnitSpec, opts: { node: string; user: string; stopTimeoutMs: number; envFile: string }): string {
  // The spec without its environment (secrets stay in the 0600 env file) tells list() what runs.
  const recorded = Buffer.from(JSON.stringify({ ...spec, env: {} })).toString('base64');
  return [
    '# Written by the osprey agent; changes are overwritten.',
    '[Unit]',
    `Description=Osprey ${spec.service} replica ${spec.index} (release ${spec.release})`,
    'After=network-online.target',
    'Wants=network-online.target',
    // Never give up restarting: the agent, not a start limit, decides when a replica goes.
    'StartLimitIntervalSec=0',
    `X-OspreySpec=${recorded}`,
    '',
    '[Service]',
    'Type=simple',
    `User=${opts.user}`,
    `WorkingDirectory=${spec.cwd}`,
    `EnvironmentFile=${opts.envFile}`,
    `ExecStart=${[opts.node, ...(spec.nodeArgs ?? []), spec.entry].join(' ')}`,
    'KillSignal=SIGTERM',
    'KillMode=mixed',
    `TimeoutStopSec=${Math.ceil(opts.stopTimeoutMs / 1000)}`,
    'Restart=always',
    'RestartSec=1',
    // systemd >= 254: back off 1s, 2s, 4s ... up to 30s; older versions ignore these two.
    'RestartSteps=5',
    'RestartMaxDelaySec=30',
    'LimitNOFILE=65536',
    // Lets ingest's UDP reader thread run real-time as the unit's user (STATSD_UDP_READER_PRIORITY).
    `LimitRTPRIO=${REALTIME_PRIORITY}`,
    '',
  ].join('\n');
}

export function renderEnvFile(env: Record<string, string>): string {
  return (
    Object.entries(env)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join('\n') + '\n'
  );
}

async function writeAtomic(file: string, text: string, mode: number): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text, { mode });
  await fs.rename(tmp, file);
}
