import fs from 'node:fs/promises';
import { REPLICAS_TAG, ROLES_TAG } from '../services.js';

export type Tags = Record<string, string>;

/** Where a host's tags come from. */
export interface TagSource {
  read(): Promise<Tags>;
  readonly description: string;
}

/** The tags this agent needs: `osprey:roles`, `osprey:replicas`. */
export const AGENT_TAG_KEYS = [ROLES_TAG, REPLICAS_TAG];

/**
 * EC2 instance metadata, IMDSv2: PUT /latest/api/token for a session token, then
 * GET /latest/meta-data/tags/instance/<key> with it (the instance needs "Allow tags in
 * instance metadata" on). A tag that is not set answers 404 and is left out.
 */
export class ImdsTagSource implements TagSource {
  private token: { value: string; until: number } | undefined;

  constructor(
    private readonly endpoint: string,
    private readonly keys: string[] = AGENT_TAG_KEYS,
    private readonly timeoutMs = 2000,
  ) {}

  get description(): string {
    return `IMDSv2 at ${this.endpoint}`;
  }

  async read(): Promise<Tags> {
    const tags: Tags = {};
    for (const key of this.keys) {
      const value = await this.get(`/latest/meta-data/tags/instance/${encodeURIComponent(key)}`);
      if (value !== undefined) tags[key] = value.trim();
    }
    return tags;
  }

  /** The host's private address, for RPC_ADVERTISE_HOST when none is configured. */
  async localIpv4(): Promise<string | undefined> {
    return (await this.get('/latest/meta-data/local-ipv4'))?.trim();
  }

  private async get(path: string, retried = false): Promise<string | undefined> {
    const res = await fetch(new URL(path, this.endpoint), {
      headers: { 'x-aws-ec2-metadata-token': await this.sessionToken() },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (res.status === 404) return undefined;
    if (res.status === 401 && !retried) {
      this.token = undefined;
      return this.get(path, true);
    }
    if (!res.ok) throw new Error(`IMDS ${path}: HTTP ${res.status}`);
    return res.text();
  }

  private async sessionToken(): Promise<string> {
    if (this.token && this.token.until > Date.now()) return this.token.value;
    const ttl = 21600;
    const res = await fetch(new URL('/latest/api/token', this.endpoint), {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) throw new Error(`IMDS token: HTTP ${res.status}`);
    this.token = { value: await res.text(), until: Date.now() + (ttl - 60) * 1000 };
    return this.token.value;
  }
}

/**
 * A JSON object of tags, e.g. {"osprey:roles": "api,ingest", "osprey:replicas": "ingest=2"}:
 * for hosts outside EC2. Re-read on every converge, so editing it is how tags change.
 */
export class FileTagSource implements TagSource {
  constructor(private readonly file: string) {}

  get description(): string {
    return `tags file ${this.file}`;
  }

  async read(): Promise<Tags> {
    const parsed: unknown = JSON.parse(await fs.readFile(this.file, 'utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${this.file} must hold a JSON object of tag → value`);
    const tags: Tags = {};
    for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') tags[k] = v;
    return tags;
  }
}
