import { OspreyError } from '../kit/errors.js';

export const MAX_STAT_NAME = 255;

export interface EzPoint {
  ezkey: string;
  /** One name, or several from StatHat's `prefix~a,b,c` form. */
  stats: string[];
  kind: 'count' | 'value';
  number: number;
  /** Unix seconds, 0 for now. */
  t: number;
  verbose: boolean;
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

export function parseNumber(field: string, raw: string): number {
  const s = raw.trim();
  if (!NUMBER.test(s)) throw new OspreyError('invalid', `${field} must be a number, got "${raw.slice(0, 40)}"`);
  const n = Number(s);
  if (!Number.isFinite(n)) throw new OspreyError('invalid', `${field} is out of range`);
  return n;
}

export function parseUnixTime(raw: string | null | undefined): number {
  if (raw === null || raw === undefined || raw === '') return 0;
  if (!/^\d{1,10}$/.test(raw.trim())) throw new OspreyError('invalid', `t must be a unix time in seconds, got "${raw.slice(0, 40)}"`);
  const t = Number(raw.trim());
  if (t > 0xffffffff) throw new OspreyError('invalid', 't is out of range');
  return t;
}

/** `prefix~a,b,c` posts to "prefix a", "prefix b" and "prefix c". */
export function expandStatName(name: string): string[] {
  const tilde = name.indexOf('~');
  if (tilde < 0) return [name];
  const prefix = name.slice(0, tilde).trim();
  const names = name
    .slice(tilde + 1)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => (prefix ? `${prefix} ${s}` : s));
  return names.length > 0 ? names : [prefix];
}

export function checkStatName(name: string): void {
  if (name.length === 0) throw new OspreyError('invalid', 'stat is required');
  if (name.length > MAX_STAT_NAME) throw new OspreyError('invalid', `stat is longer than ${MAX_STAT_NAME} characters`);
}

/** Validates one /ez call's parameters; every error names the field. */
export function parseEzParams(p: { get(name: string): string | null }): EzPoint {
  const ezkey = p.get('ezkey') ?? p.get('email') ?? '';
  if (!ezkey) throw new OspreyError('invalid', 'ezkey is required');
  const stat = (p.get('stat') ?? '').trim();
  if (!stat) throw new OspreyError('invalid', 'stat is required');
  const stats = expandStatName(stat);
  for (const s of stats) checkStatName(s);
  const count = p.get('count');
  const value = p.get('value');
  if (count !== null && value !== null) throw new OspreyError('invalid', 'give count or value, not both');
  if (count === null && value === null) throw new OspreyError('invalid', 'count or value is required');
  const kind = count !== null ? 'count' : 'value';
  return {
    ezkey,
    stats,
    kind,
    number: parseNumber(kind, (count ?? value)!),
    t: parseUnixTime(p.get('t')),
    verbose: p.get('vb') === '1',
  };
}
