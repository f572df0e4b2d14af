import fs from 'node:fs/promises';
import { DescribeInstancesCommand, EC2Client, type Filter } from '@aws-sdk/client-ec2';
import { ROLES_TAG } from '../services.js';
import type { Tags } from '../agent/tags.js';

/** A host the deploy script can reach. */
export interface Host {
  name: string;
  /** Private address: ssh target, and where its replicas are reached. */
  address: string;
  /** Its tags, when the inventory knows them (EC2 always does); else the agent is asked. */
  tags?: Tags;
  /** OSPREY_HOME on the host. */
  home: string;
  /** local: the host's home is a directory here (simulated hosts); ssh: rsync + ssh. */
  transport: 'local' | 'ssh';
  sshUser?: string;
  /** The agent's control URL when it can be reached directly (simulated hosts). */
  control?: string;
}

interface InventoryFile {
  defaults?: Partial<Host>;
  hosts: Array<Partial<Host> & { name: string; address: string }>;
}

/** An inventory file: {"defaults": {...}, "hosts": [{"name", "address", "tags"?, "home"?, ...}]}. */
export async function loadInventoryFile(file: string): Promise<Host[]> {
  const inv = JSON.parse(await fs.readFile(file, 'utf8')) as InventoryFile;
  if (!Array.isArray(inv.hosts)) throw new Error(`${file}: "hosts" must be a list`);
  return inv.hosts.map((h) => {
    const merged = { home: '/opt/osprey', transport: 'ssh' as const, ...inv.defaults, ...h };
    if (!merged.name || !merged.address) throw new Error(`${file}: every host needs "name" and "address"`);
    if (merged.transport !== 'local' && merged.transport !== 'ssh') throw new Error(`${file}: host ${merged.name}: transport must be "local" or "ssh"`);
    return merged;
  });
}

export interface Ec2InventoryOptions {
  region?: string;
  /** Another EC2 endpoint (a test server, a VPC endpoint). */
  endpoint?: string;
  /** Extra DescribeInstances filters, e.g. [{Name: 'tag:osprey:cluster', Values: ['prod']}]. */
  filters?: Filter[];
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  home?: string;
  sshUser?: string;
}

/** Running instances that carry an `osprey:roles` tag, named by their Name tag (or id). */
export async function describeEc2Hosts(opts: Ec2InventoryOptions = {}): Promise<Host[]> {
  const client = new EC2Client({
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
  });
  try {
    const hosts: Host[] = [];
    let NextToken: string | undefined;
    do {
      const page = await client.send(
        new DescribeInstancesCommand({
          Filters: [{ Name: 'instance-state-name', Values: ['running'] }, { Name: 'tag-key', Values: [ROLES_TAG] }, ...(opts.filters ?? [])],
          NextToken,
        }),
      );
      for (const r of page.Reservations ?? []) {
        for (const i of r.Instances ?? []) {
          const tags: Tags = {};
          for (const t of i.Tags ?? []) if (t.Key && t.Value !== undefined) tags[t.Key] = t.Value;
          if (!i.PrivateIpAddress) continue;
          hosts.push({
            name: tags.Name ?? i.InstanceId ?? i.PrivateIpAddress,
            address: i.PrivateIpAddress,
            tags,
            home: opts.home ?? '/opt/osprey',
            transport: 'ssh',
            sshUser: opts.sshUser,
          });
        }
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return hosts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } finally {
    client.destroy();
  }
}

/** `Name=Value1,Value2` → an EC2 filter. */
export function parseFilter(s: string): Filter {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new Error(`--ec2-filter "${s}" must look like tag:osprey:cluster=prod`);
  return { Name: s.slice(0, eq), Values: s.slice(eq + 1).split(',') };
}
