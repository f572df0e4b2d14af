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

/**
 * A form /ez call as scanEzForm found it: the stat's name is the bytes
 * `statBytes[0, statLength)`, already decoded. Shared by every call and holding the last
 * scan only: read it before anything else can scan (before any await).
 */
export interface EzFormScan {
  ezkey: string;
  statBytes: Buffer;
  statLength: number;
  /** 1 counter, 2 value (MetricKind). */
  kind: number;
  number: number;
  t: number;
  verbose: boolean;
}

const formScan: EzFormScan = { ezkey: '', statBytes: Buffer.alloc(4 * MAX_STAT_NAME), statLength: 0, kind: 0, number: 0, t: 0, verbose: false };
/** A decoded field value (ezkey, numbers, vb) before it is read. */
const fieldBytes = Buffer.alloc(4 * MAX_STAT_NAME);

// Which fields the form has, first occurrence only (URLSearchParams.get takes the first).
const F_EZKEY = 1;
const F_EMAIL = 2;
const F_STAT = 4;
const F_COUNT = 8;
const F_VALUE = 16;
const F_T = 32;
const F_VB = 64;

/**
 * The fast path for the usual form body (`ezkey=K&stat=page+views&count=1`): one pass
 * over its bytes with no URLSearchParams, no string per field but the ezkey's, and the
 * stat name decoded into bytes that go into the RecordRequest as they are. It takes only
 * what is certain to mean the same as URLSearchParams + parseEzParams: field names
 * without `%`, values that decode (`+`, `%XX`) to ASCII, one stat name without `~`, a
 * count or value of plain digits (a sign, a decimal point), t of up to ten digits, and a
 * valid call. Anything else returns undefined and the caller takes the general path.
 */
export function scanEzForm(b: Buffer): EzFormScan | undefined {
  const s = formScan;
  const len = b.length;
  let has = 0;
  let vb = false;
  let i = 0;
  while (i <= len) {
    let amp = b.indexOf(0x26 /* & */, i);
    if (amp < 0) amp = len;
    if (amp > i) {
      let eq = i;
      while (eq < amp && b[eq] !== 0x3d /* = */) {
        if (b[eq] === 0x25 /* % */) return undefined;
        eq++;
      }
      const field = fieldOf(b, i, eq);
      if (field !== 0 && (has & field) === 0) {
        has |= field;
        const vStart = eq < amp ? eq + 1 : amp;
        if (field === F_STAT) {
          const n = decodeInto(b, vStart, amp, s.statBytes);
          if (n < 0) return undefined;
          // trim(): ASCII whitespace (\t \n \v \f \r and space) at both ends.
          let start = 0;
          let end = n;
          while (start < end && isSpace(s.statBytes[start])) start++;
          while (end > start && isSpace(s.statBytes[end - 1])) end--;
          if (end === start || end - start > MAX_STAT_NAME) return undefined;
          if (start > 0) s.statBytes.copy(s.statBytes, 0, start, end);
          s.statLength = end - start;
          if (s.statBytes.subarray(0, s.statLength).includes(0x7e /* ~ */)) return undefined;
        } else {
          const n = decodeInto(b, vStart, amp, fieldBytes);
          if (n < 0) return undefined;
          if (field === F_EZKEY || field === F_EMAIL) {
            // An empty ezkey (or email, with no ezkey) is an error: parseEzParams says which.
            if (n === 0) return undefined;
            if (field === F_EZKEY || (has & F_EZKEY) === 0) s.ezkey = fieldBytes.toString('latin1', 0, n);
          } else if (field === F_COUNT || field === F_VALUE) {
            const v = plainNumber(fieldBytes, n);
            if (v === undefined) return undefined;
            s.number = v;
            s.kind = field === F_COUNT ? 1 : 2;
          } else if (field === F_T) {
            if (n === 0) s.t = 0;
            else {
              if (n > 10) return undefined;
              let t = 0;
              for (let k = 0; k < n; k++) {
                const c = fieldBytes[k];
                if (c < 0x30 || c > 0x39) return undefined;
                t = t * 10 + (c - 0x30);
              }
              if (t > 0xffffffff) return undefined;
              s.t = t;
            }
          } else vb = n === 1 && fieldBytes[0] === 0x31; /* vb=1 */
        }
      }
    }
    i = amp + 1;
  }
  if ((has & (F_EZKEY | F_EMAIL)) === 0 || (has & F_STAT) === 0) return undefined;
  // Exactly one of count and value.
  if ((has & (F_COUNT | F_VALUE)) === 0 || (has & (F_COUNT | F_VALUE)) === (F_COUNT | F_VALUE)) return undefined;
  if ((has & F_T) === 0) s.t = 0;
  s.verbose = vb;
  return s;
}

function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** The field a name stands for (0 for a field /ez does not read). */
function fieldOf(b: Buffer, start: number, end: number): number {
  const n = end - start;
  const c = b[start];
  if (n === 5) {
    if (c === 0x65 && b[start + 1] === 0x7a && b[start + 2] === 0x6b && b[start + 3] === 0x65 && b[start + 4] === 0x79) return F_EZKEY;
    if (c === 0x65 && b[start + 1] === 0x6d && b[start + 2] === 0x61 && b[start + 3] === 0x69 && b[start + 4] === 0x6c) return F_EMAIL;
    if (c === 0x63 && b[start + 1] === 0x6f && b[start + 2] === 0x75 && b[start + 3] === 0x6e && b[start + 4] === 0x74) return F_COUNT;
    if (c === 0x76 && b[start + 1] === 0x61 && b[start + 2] === 0x6c && b[start + 3] === 0x75 && b[start + 4] === 0x65) return F_VALUE;
  } else if (n === 4) {
    if (c === 0x73 && b[start + 1] === 0x74 && b[start + 2] === 0x61 && b[start + 3] === 0x74) return F_STAT;
  } else if (n === 1) {
    if (c === 0x74) return F_T;
  } else if (n === 2) {
    if (c === 0x76 && b[start + 1] === 0x62) return F_VB;
  }
  return 0;
}

const hexValue = (c: number) => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1);

/**
 * Form-decodes b[start, end) into `out` (`+` is a space, `%XX` a byte) and returns the
 * length, or -1 when the result would not be plain ASCII, a `%` is not followed by two
 * hex digits, or it does not fit: the cases where a byte-wise decode could differ from
 * URLSearchParams (which decodes UTF-8 and keeps a bad `%` as it is).
 */
function decodeInto(b: Buffer, start: number, end: number, out: Buffer): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    if (n === out.length) return -1;
    let c = b[i];
    if (c === 0x2b /* + */) c = 0x20;
    else if (c === 0x25 /* % */) {
      const hi = hexValue(b[i + 1]);
      const lo = hexValue(b[i + 2]);
      if (i + 2 >= end || hi < 0 || lo < 0) return -1;
      c = (hi << 4) | lo;
      i += 2;
    }
    if (c >= 0x80) return -1;
    out[n++] = c;
  }
  return n;
}

/**
 * A count or value written the plain way (`1`, `-2`, `+0.25`, `3.`, `.5`): what
 * parseNumber reads, to the same double. Up to 15 significant digits the value is
 * computed here exactly; anything else (exponents, spaces, more digits) is undefined.
 */
function plainNumber(b: Buffer, n: number): number | undefined {
  let i = 0;
  let neg = false;
  if (b[0] === 0x2d || b[0] === 0x2b) {
    neg = b[0] === 0x2d;
    i = 1;
  }
  let int = 0;
  let digits = 0;
  while (i < n && b[i] >= 0x30 && b[i] <= 0x39) {
    int = int * 10 + (b[i++] - 0x30);
    digits++;
  }
  if (i < n) {
    if (b[i] !== 0x2e /* . */) return undefined;
    i++;
    const f = i;
    while (i < n && b[i] >= 0x30 && b[i] <= 0x39) i++;
    if (i < n || digits + (i - f) === 0 || digits + (i - f) > 15) return undefined;
    // The decimal text to a double as Number() reads it (dividing by 10^k could round twice).
    return Number(b.toString('latin1', 0, n));
  }
  if (digits === 0 || digits > 15) return undefined;
  return neg ? -int : int;
}
