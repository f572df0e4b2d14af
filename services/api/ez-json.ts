import { OspreyError } from '../kit/errors.js';
import { MAX_STAT_NAME, checkStatName, expandStatName, parseNumber, parseUnixTime } from './ez-params.js';

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

/**
 * The points of a JSON batch as found in the body by scanEzJson: item i's stat is the
 * UTF-8 bytes body[statStart[i], statEnd[i]), with its kind (1 counter, 2 value), number
 * and unix time. The arrays are shared by every call and hold the last scan only: read
 * them before anything else can scan (before any await).
 */
export interface EzJsonScan {
  ezkey: string;
  n: number;
  statStart: Int32Array;
  statEnd: Int32Array;
  kind: Uint8Array;
  number: Float64Array;
  t: Float64Array;
}

const scan: EzJsonScan = {
  ezkey: '',
  n: 0,
  statStart: new Int32Array(MAX_BATCH_POINTS),
  statEnd: new Int32Array(MAX_BATCH_POINTS),
  kind: new Uint8Array(MAX_BATCH_POINTS),
  number: new Float64Array(MAX_BATCH_POINTS),
  t: new Float64Array(MAX_BATCH_POINTS),
};

const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const BACKSLASH = 0x5c;
const TILDE = 0x7e;

/**
 * The fast path for the usual JSON batch: one pass over the body's bytes, no JSON.parse,
 * no objects or strings per point (a stat name goes from the body into the RecordRequest
 * as bytes). It takes only the plain shape StatHat's clients send: the keys ezkey (or
 * email) and data; items with stat, count or value, and t; names in printable ASCII
 * without escapes or `~`; numbers as JSON numbers; every item valid. Anything else
 * (another key, an escape, a duplicate key, a bad item, vb, malformed JSON...) returns
 * undefined and the caller uses parseEzJson, so the answers are parseEzJson's in every
 * case: what this accepts, parseEzJson reads to the same points (a test checks it).
 */
export function scanEzJson(b: Buffer): EzJsonScan | undefined {
  const len = b.length;
  let i = skipWs(b, 0);
  if (b[i] !== 0x7b /* { */) return undefined;
  i = skipWs(b, i + 1);
  let ezkey: string | undefined;
  let email: string | undefined;
  let sawData = false;
  let n = 0;
  for (;;) {
    if (b[i] !== QUOTE) return undefined;
    const keyStart = i + 1;
    const keyEnd = b.indexOf(QUOTE, keyStart);
    if (keyEnd < 0) return undefined;
    i = skipWs(b, keyEnd + 1);
    if (b[i] !== COLON) return undefined;
    i = skipWs(b, i + 1);
    const keyLen = keyEnd - keyStart;
    if (keyLen === 4 && b[keyStart] === 0x64 && b[keyStart + 1] === 0x61 && b[keyStart + 2] === 0x74 && b[keyStart + 3] === 0x61 /* data */) {
      if (sawData) return undefined;
      sawData = true;
      const end = scanData(b, i);
      if (end < 0) return undefined;
      n = scan.n;
      i = end;
    } else if (keyLen === 5 && (isKey(b, keyStart, 'ezkey') || isKey(b, keyStart, 'email'))) {
      const isEzkey = b[keyStart + 1] === 0x7a; /* z */
      if (isEzkey ? ezkey !== undefined : email !== undefined) return undefined;
      if (b[i] !== QUOTE) return undefined;
      const start = i + 1;
      let j = start;
      while (j < len && b[j] !== QUOTE) {
        const c = b[j];
        if (c < 0x20 || c >= 0x7f || c === BACKSLASH) return undefined;
        j++;
      }
      if (j >= len || j === start) return undefined;
      const value = b.toString('latin1', start, j);
      if (isEzkey) ezkey = value;
      else email = value;
      i = j + 1;
    } else return undefined;
    i = skipWs(b, i);
    if (b[i] === COMMA) {
      i = skipWs(b, i + 1);
      continue;
    }
    if (b[i] !== 0x7d /* } */) return undefined;
    break;
  }
  if (skipWs(b, i + 1) !== len || !sawData || n === 0) return undefined;
  const key = ezkey ?? email;
  if (key === undefined) return undefined;
  scan.ezkey = key;
  return scan;
}

function isKey(b: Buffer, at: number, key: string): boolean {
  for (let k = 0; k < key.length; k++) if (b[at + k] !== key.charCodeAt(k)) return false;
  return true;
}

function skipWs(b: Buffer, i: number): number {
  for (;;) {
    const c = b[i];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else return i;
  }
}

// Which keys an item has had, to refuse duplicates (JSON.parse would keep the last).
const HAS_STAT = 1;
const HAS_COUNT = 2;
const HAS_VALUE = 4;
const HAS_T = 8;

/** Scans `[{...}, ...]` at i into `scan`; the position after `]`, or -1 to fall back. */
function scanData(b: Buffer, i: number): number {
  if (b[i] !== 0x5b /* [ */) return -1;
  i = skipWs(b, i + 1);
  let n = 0;
  if (b[i] === 0x5d /* ] */) return -1;
  for (;;) {
    if (n === MAX_BATCH_POINTS) return -1;
    if (b[i] !== 0x7b /* { */) return -1;
    i = skipWs(b, i + 1);
    let has = 0;
    for (;;) {
      if (b[i] !== QUOTE) return -1;
      const k = i + 1;
      const c0 = b[k];
      let key = 0;
      // stat, count, value, t: the four keys an item may have.
      if (c0 === 0x73 && b[k + 1] === 0x74 && b[k + 2] === 0x61 && b[k + 3] === 0x74 && b[k + 4] === QUOTE) (key = HAS_STAT), (i = k + 5);
      else if (c0 === 0x63 && b[k + 1] === 0x6f && b[k + 2] === 0x75 && b[k + 3] === 0x6e && b[k + 4] === 0x74 && b[k + 5] === QUOTE) (key = HAS_COUNT), (i = k + 6);
      else if (c0 === 0x76 && b[k + 1] === 0x61 && b[k + 2] === 0x6c && b[k + 3] === 0x75 && b[k + 4] === 0x65 && b[k + 5] === QUOTE) (key = HAS_VALUE), (i = k + 6);
      else if (c0 === 0x74 && b[k + 1] === QUOTE) (key = HAS_T), (i = k + 2);
      else return -1;
      if (has & key) return -1;
      has |= key;
      i = skipWs(b, i);
      if (b[i] !== COLON) return -1;
      i = skipWs(b, i + 1);
      if (key === HAS_STAT) {
        if (b[i] !== QUOTE) return -1;
        let start = i + 1;
        let j = start;
        for (;;) {
          const c = b[j];
          if (c === QUOTE) break;
          // Printable ASCII only: then bytes are characters, and trim() is trimming spaces.
          if (c === undefined || c < 0x20 || c >= TILDE || c === BACKSLASH) return -1;
          j++;
        }
        i = j + 1;
        let end = j;
        while (start < end && b[start] === 0x20) start++;
        while (end > start && b[end - 1] === 0x20) end--;
        if (end === start || end - start > MAX_STAT_NAME) return -1;
        scan.statStart[n] = start;
        scan.statEnd[n] = end;
      } else {
        const end = scanNumber(b, i, key === HAS_T);
        if (end < 0) return -1;
        if (key === HAS_T) scan.t[n] = scannedNumber;
        else scan.number[n] = scannedNumber;
        i = end;
      }
      i = skipWs(b, i);
      if (b[i] === COMMA) {
        i = skipWs(b, i + 1);
        continue;
      }
      if (b[i] !== 0x7d /* } */) return -1;
      break;
    }
    // A valid item: a stat and exactly one of count and value.
    if (!(has & HAS_STAT) || (has & (HAS_COUNT | HAS_VALUE)) === 0 || (has & (HAS_COUNT | HAS_VALUE)) === (HAS_COUNT | HAS_VALUE)) return -1;
    scan.kind[n] = has & HAS_COUNT ? 1 : 2;
    if (!(has & HAS_T)) scan.t[n] = 0;
    n++;
    i = skipWs(b, i + 1);
    if (b[i] === COMMA) {
      i = skipWs(b, i + 1);
      continue;
    }
    if (b[i] !== 0x5d /* ] */) return -1;
    scan.n = n;
    return i + 1;
  }
}

/** The value scanNumber read last (a module variable: no object per number). */
let scannedNumber = 0;

/**
 * A JSON number at i (RFC 8259 grammar exactly: no leading zeros, no `+`, no bare `.`).
 * `unixTime`: only digits, at most 0xffffffff (what parseEzJson takes as t without error).
 * Returns the position after it, or -1.
 */
function scanNumber(b: Buffer, i: number, unixTime: boolean): number {
  const start = i;
  let neg = false;
  if (b[i] === 0x2d /* - */) {
    if (unixTime) return -1;
    neg = true;
    i++;
  }
  const intStart = i;
  let v = 0;
  while (b[i] >= 0x30 && b[i] <= 0x39) v = v * 10 + (b[i++] - 0x30);
  const digits = i - intStart;
  if (digits === 0 || (digits > 1 && b[intStart] === 0x30)) return -1;
  const c = b[i];
  if (c === 0x2e /* . */ || c === 0x65 || c === 0x45 /* e E */) {
    if (unixTime) return -1;
    if (c === 0x2e) {
      i++;
      const f = i;
      while (b[i] >= 0x30 && b[i] <= 0x39) i++;
      if (i === f) return -1;
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++;
      if (b[i] === 0x2b || b[i] === 0x2d) i++;
      const e = i;
      while (b[i] >= 0x30 && b[i] <= 0x39) i++;
      if (i === e) return -1;
    }
    // The grammar is checked; Number() reads a JSON number to the double JSON.parse gives.
    v = Number(b.toString('latin1', start, i));
    if (!Number.isFinite(v)) return -1;
    scannedNumber = v;
    return i;
  }
  // Up to 15 digits the sum above is exact; longer integers go through Number() too.
  if (digits > 15) {
    if (unixTime) return -1;
    v = Number(b.toString('latin1', start, i));
    if (!Number.isFinite(v)) return -1;
    scannedNumber = v;
    return i;
  }
  if (unixTime && v > 0xffffffff) return -1;
  scannedNumber = neg ? -v : v;
  return i;
}
