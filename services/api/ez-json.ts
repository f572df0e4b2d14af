import { OspreyError } from '../kit/errors.js';
import { checkStatName, expandStatName, parseNumber, parseUnixTime } from './ez-params.js';

/** Most points in one JSON batch; more is answered 413. */
export const MAX_BATCH_POINTS = 1000;

export interface EzBatchItem {
  /** Position in `data`. */
  index: number;
  /** One name, or several from `prefix~a,b,c`. */
  stats: string[];
  kind: 'count' | 'value';
  number: number;
  /** Unix seconds, 0 for now. */
  t: number;
}

export interface EzItemError {
  index: number;
  msg: string;
}

export interface EzBatch {
  ezkey: string;
  verbose: boolean;
  /** Length of `data`. */
  size: number;
  items: EzBatchItem[];
  /** Items refused here, by position in `data`; the others are in `items`. */
  errors: EzItemError[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * StatHat's JSON form of /ez: `{"ezkey": "...", "data": [{"stat", "count"|"value", "t"?}]}`.
 * A malformed envelope (not JSON, no ezkey, no data list) throws `invalid`, more than
 * MAX_BATCH_POINTS items throws `too_large`; a bad item is reported in `errors` by its
 * index and never stops the rest. `vb` may be given in the body or the query.
 */
export function parseEzJson(body: string, query?: { get(name: string): string | null }): EzBatch {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    throw new OspreyError('invalid', 'body is not valid JSON');
  }
  if (!isObject(doc)) throw new OspreyError('invalid', 'body must be a JSON object with ezkey and data');
  const ezkey = doc.ezkey ?? doc.email ?? query?.get('ezkey');
  if (typeof ezkey !== 'string' || ezkey === '') throw new OspreyError('invalid', 'ezkey is required');
  const data = doc.data;
  if (!Array.isArray(data)) throw new OspreyError('invalid', 'data must be a list of {"stat", "count" or "value", "t"}');
  if (data.length > MAX_BATCH_POINTS) throw new OspreyError('too_large', `at most ${MAX_BATCH_POINTS} points per request, got ${data.length}`);
  const vb = doc.vb ?? query?.get('vb');
  const batch: EzBatch = { ezkey, verbose: vb === 1 || vb === '1' || vb === true, size: data.length, items: [], errors: [] };
  for (let index = 0; index < data.length; index++) {
    try {
      batch.items.push(parseItem(data[index], index));
    } catch (err) {
      if (!(err instanceof OspreyError)) throw err;
      batch.errors.push({ index, msg: `data[${index}]: ${err.message}` });
    }
  }
  return batch;
}

function parseItem(raw: unknown, index: number): EzBatchItem {
  if (!isObject(raw)) throw new OspreyError('invalid', 'must be an object with stat and count or value');
  const stat = raw.stat;
  if (typeof stat !== 'string' || stat.trim() === '') throw new OspreyError('invalid', 'stat is required');
  const stats = stat.includes('~') ? expandStatName(stat.trim()) : [stat.trim()];
  for (const s of stats) checkStatName(s);
  const count = raw.count;
  const value = raw.value;
  const hasCount = count !== undefined && count !== null;
  const hasValue = value !== undefined && value !== null;
  if (hasCount && hasValue) throw new OspreyError('invalid', 'give count or value, not both');
  if (!hasCount && !hasValue) throw new OspreyError('invalid', 'count or value is required');
  const kind = hasCount ? 'count' : 'value';
  return { index, stats, kind, number: toNumber(kind, hasCount ? count : value), t: toUnixTime(raw.t) };
}

function toNumber(field: string, v: unknown): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new OspreyError('invalid', `${field} is out of range`);
    return v;
  }
  if (typeof v === 'string') return parseNumber(field, v);
  throw new OspreyError('invalid', `${field} must be a number`);
}

function toUnixTime(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) throw new OspreyError('invalid', `t must be a unix time in seconds, got ${v}`);
    if (v > 0xffffffff) throw new OspreyError('invalid', 't is out of range');
    return v;
  }
  if (typeof v === 'string') return parseUnixTime(v);
  throw new OspreyError('invalid', 't must be a unix time in seconds');
}
