import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AgentStatus } from '../agent/agent.js';
import { controlRequest } from '../agent/control-client.js';
import type { Tags } from '../agent/tags.js';
import type { Host } from '../deployer/inventory.js';
import { hashTree, type BuiltRelease, type Manifest } from '../release.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Another release of the commit `from` was built from: its files under a new timestamp,
 * which is what a second `npm run release` of that commit gives (release.test.ts checks that
 * two builds differ only in the timestamp), without compiling again. The files are hard links
 * to `from`'s, so `patch` must replace a file (remove, then write), never write into one.
 */
export async function restampRelease(from: BuiltRelease, timestamp: string, patch?: (dir: string) => Promise<void>): Promise<BuiltRelease> {
  const outDir = path.dirname(from.dir);
  const dir = path.join(outDir, `.building-${timestamp}`);
  const finalDir = path.join(outDir, timestamp);
  await promisify(execFile)('cp', ['-al', from.dir, dir]);
  await fs.rm(path.join(dir, 'manifest.json'));
  await patch?.(dir);
  const manifest: Manifest = { ...from.manifest, timestamp, files: patch ? await hashTree(dir) : from.manifest.files };
  await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  await fs.rename(dir, finalDir);
  return { dir: finalDir, timestamp, manifest };
}

/**
 * A fake EC2 instance metadata service for one simulated host: IMDSv2 only (a GET without
 * a token from PUT /latest/api/token is refused, as on an instance that requires v2).
 */
export async function startFakeImds(address: string, tags: Tags): Promise<{ url: string; setTags(t: Tags): void; close(): Promise<void> }> {
  let current = { ...tags };
  const tokens = new Set<string>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'PUT' && url === '/latest/api/token') {
      if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return res.writeHead(400).end();
      const token = `tok-${Math.random().toString(36).slice(2)}`;
      tokens.add(token);
      return res.writeHead(200, { 'content-type': 'text/plain' }).end(token);
    }
    if (!tokens.has(String(req.headers['x-aws-ec2-metadata-token'] ?? ''))) return res.writeHead(401).end();
    if (req.method === 'GET' && url === '/latest/meta-data/local-ipv4') return res.writeHead(200).end(address);
    const m = /^\/latest\/meta-data\/tags\/instance\/(.+)$/.exec(url);
    if (req.method === 'GET' && m) {
      const v = current[decodeURIComponent(m[1])];
      return v === undefined ? res.writeHead(404).end() : res.writeHead(200, { 'content-type': 'text/plain' }).end(v);
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return {
    url: `http://${address}:${(server.address() as AddressInfo).port}`,
    setTags: (t) => {
      current = { ...t };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface SimHostOptions {
  name: string;
  /** 127.0.0.11 ...: Linux routes all of 127.0.0.0/8 to lo, no alias needed. */
  address: string;
  root: string;
  tags: Tags;
  /** Given to every service (osprey.env). */
  env: Record<string, string>;
  portOffset: number;
  controlPort: number;
  agentEnv?: Record<string, string>;
}

export interface SimHost {
  name: string;
  address: string;
  home: string;
  control: string;
  agent: ChildProcess;
  host: Host;
  setTags(t: Tags): void;
  status(): Promise<AgentStatus>;
  converge(): Promise<unknown>;
  stop(): Promise<void>;
}

/** One simulated host: its own directory, metadata endpoint and agent (run from source). */
export async function startSimHost(o: SimHostOptions): Promise<SimHost> {
  const home = path.join(o.root, o.name);
  await fs.mkdir(path.join(home, 'releases'), { recursive: true });
  await fs.writeFile(
    path.join(home, 'osprey.env'),
    Object.entries(o.env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
    { mode: 0o600 },
  );
  const imds = await startFakeImds(o.address, o.tags);
  const control = `http://${o.address}:${o.controlPort}`;
  const log = await fs.open(path.join(home, 'agent.log'), 'a');
  const agent = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'deploy/agent/main.ts')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', log.fd, log.fd],
    env: {
      PATH: process.env.PATH,
      OSPREY_HOME: home,
      OSPREY_IMDS_ENDPOINT: imds.url,
      OSPREY_BACKEND: 'process',
      OSPREY_CONTROL_HOST: o.address,
      OSPREY_CONTROL_PORT: String(o.controlPort),
      OSPREY_BIND_HOST: o.address,
      OSPREY_ADVERTISE_HOST: o.address,
      OSPREY_PUBLIC_HOST: o.address,
      OSPREY_PORT_OFFSET: String(o.portOffset),
      ...o.agentEnv,
    },
  });
  await log.close();
  const exited = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
  const status = async () => JSON.parse((await controlRequest(control, 'GET', '/status')).body) as AgentStatus;
  for (let i = 0; ; i++) {
    if (agent.exitCode !== null) throw new Error(`agent of ${o.name} exited (${agent.exitCode}); see ${home}/agent.log`);
    try {
      await status();
      break;
    } catch {
      if (i > 200) throw new Error(`agent of ${o.name} did not answer on ${control}`);
      await sleep(100);
    }
  }
  return {
    name: o.name,
    address: o.address,
    home,
    control,
    agent,
    host: { name: o.name, address: o.address, home, transport: 'local', control },
    setTags: imds.setTags,
    status,
    converge: async () => JSON.parse((await controlRequest(control, 'POST', '/converge')).body),
    async stop() {
      if (agent.exitCode === null) {
        agent.kill('SIGTERM');
        await exited;
      }
      await imds.close();
    },
  };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(200);
  }
}
