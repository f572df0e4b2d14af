/**
 * statsd line parser, working on bytes.
 *
 * Accepted grammar (one line; a packet or stream is lines separated by `\n`, `\r\n` is
 * accepted, empty lines are skipped):
 *
 *   line     := [token "."] name ":" segment (":" segment)*
 *   segment  := value (":" value)* "|" type ("|" field)*
 *   type     := "c" | "ms" | "h" | "d" | "g" | "s"
 *   field    := "@" rate | "#" tags | anything-else (ignored: DogStatsD `c:<container>`,
 *               `T<timestamp>`, future fields)
 *
 * - Etsy multi-value lines `a:1|c:250|ms` give one sample per segment, all under `a`
 *   (here a counter and a value; the kind travels beside the name, see `StatsdSink`).
 * - DogStatsD packed values `a:1:2:3|h` give one sample per value, all of the segment's type
 *   (not for sets, see below).
 * - `ms`, `h` and `d` are all `value` samples. A `value` must be >= 0.
 * - `@rate` must be in (0, 1]. Counters contribute value/rate, a value sample counts 1/rate;
 *   the parser hands the rate over untouched and leaves the arithmetic to the aggregator.
 *   On gauges and sets the rate is checked and then ignored (reported as 1), as Etsy does.
 * - Gauges: a leading `+` or `-` means a delta (`isDelta`), otherwise the value is set.
 * - Sets: the value is any non-empty string without `|` or newline, `:` included (`user:42`,
 *   URLs, IPv6 addresses: a set segment is never split as packed values); it is handed over
 *   as the member string (UTF-8 decoded).
 * - A `|#...` field runs to the next `|` or the end of the line (tags contain `:`), and so
 *   do ignored fields; a `:` right after the type or the rate starts the next segment.
 * - A line is atomic: if any of its segments is bad, none of its samples is emitted and the
 *   line is reported once with the first reason found. A bad line never affects other lines.
 * - Numbers are plain decimals: optional sign, digits with an optional fraction, optional
 *   exponent (`1`, `-2.5`, `.5`, `3.`, `1e-3`). Hex, `NaN`, `Infinity`, whitespace and values
 *   that overflow to infinity are `bad_value`.
 *
 * Canonical stat identity (tags). DogStatsD tags `|#k:v,flag` and Graphite-style tags already
 * in the name (`name;k=v`, which Etsy statsd lets through) are folded into one string:
 *
 *   base ";" tag (";" tag)*        tag := key "=" value | key
 *
 * - DogStatsD `k:v` splits at the first `:`; Graphite `k=v` at the first `=`. A tag without a
 *   separator is a bare `key` (`k:` with an empty value is `k=`, which is different).
 * - In keys `;` and `=` become `_`; in values `;` becomes `_` (they would break the form).
 * - Empty tags are dropped, the rest sorted by JavaScript string order (UTF-16 code units, the
 *   same on every replica) and deduplicated; with no tags the identity is the bare name.
 * So `a:1|c|#z:1,b,z:1`, `a;b;z=1:1|c` and `a;z=1:1|c|#b` are all the stat `a;b;z=1`.
 * `canonicalStatName` builds it. The kind is not part of this string: the caller keys its
 * aggregation on (identity, kind), which is how Etsy keeps `a|c` and `a|ms` apart.
 *
 * Tokens (statsgod): with `tokenMode`, every line is `<token>.<name>:...`; the token is the
 * bytes before the first `.` and is passed to the sink beside each sample, unchecked.
 */

export type StatsdKind = 'counter' | 'value' | 'gauge' | 'set';

/** Why a line was rejected. A fixed set, so counters per reason stay bounded. */
export const BAD_LINE_REASONS = [
  /** longer than `maxLineLength` bytes (not counting `\r\n`) */
  'too_long',
  /** `tokenMode` and the line does not start with `<token>.` */
  'no_token',
  /** nothing before the first `:` (or only Graphite tags) */
  'empty_name',
  /** no `:` at all, a `|` inside the name, or an empty value or set member */
  'no_value',
  /** a value with no `|type` after it, or an empty type */
  'missing_type',
  /** a type other than c, ms, h, d, g, s */
  'bad_type',
  /** not a plain decimal number, NaN, Infinity, or overflowing */
  'bad_value',
  /** a `ms`/`h`/`d` value below zero */
  'negative_timer',
  /** `@` not followed by a number in (0, 1] */
  'bad_rate',
  /** DogStatsD events (`_e{`) and service checks (`_sc|`), which Osprey does not store */
  'unsupported',
] as const;
export type BadLineReason = (typeof BAD_LINE_REASONS)[number];

export interface StatsdParseOptions {
  /** Longest accepted line in bytes, without its `\r\n`. */
  maxLineLength: number;
  /** statsgod-style `<token>.` prefix on every line. */
  tokenMode: boolean;
  /** How many distinct names the interning table keeps before it starts over (default 100,000). */
  maxNames?: number;
}

/**
 * Receives the parse results. Called synchronously; the parser allocates nothing per packet
 * beyond the strings it hands over (names and tokens are interned, so the same name yields
 * the same string object while it stays in the cache).
 */
export interface StatsdSink {
  /**
   * One sample. `name` is the canonical identity (see the top of this file).
   * `sampleRate` is in (0, 1]; always 1 for gauges and sets. `isDelta` only for gauges.
   * `setMember` is the member for sets (and `value` is 0), null otherwise.
   * `token` is the statsgod token in token mode, null otherwise.
   * `firstOfLine` is true for the first sample of its line (a line `a:1|c:250|ms` gives two
   * samples), so a sink can count lines, not samples, when it drops one for its token.
   */
  sample(
    name: string,
    kind: StatsdKind,
    value: number,
    sampleRate: number,
    isDelta: boolean,
    setMember: string | null,
    token: string | null,
    firstOfLine: boolean,
    /**
     * The interned identity behind `name`: the same object for every sample of that (name,
     * tags) while it stays in the parser's table, with a `memo` the sink may use to keep what
     * it derives from the name (intake keeps the stat it resolves to: no map lookup per line).
     */
    ref?: NameRef,
  ): void;
  /**
   * One rejected line: `buf[start, end)` is the line without its newline (for `too_long`, only
   * its first `maxLineLength` bytes). The bytes are only valid during the call: copy them to
   * keep them.
   */
  bad(reason: BadLineReason, buf: Buffer, start: number, end: number): void;
}

const NL = 10;
const CR = 13;
const HASH = 35;
const PLUS = 43;
const COMMA = 44;
const MINUS = 45;
const DOT = 46;
const COLON = 58;
const SEMI = 59;
const EQ = 61;
const AT = 64;
const PIPE = 124;

const K_COUNTER = 0;
const K_VALUE = 1;
const K_GAUGE = 2;
const K_SET = 3;
const KIND_NAMES: readonly StatsdKind[] = ['counter', 'value', 'gauge', 'set'];

const POW10 = [
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
  1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
const MAX_EXACT = 9007199254740991;

/**
 * Parses a plain decimal number in `buf[s, e)`; NaN when the bytes are not one.
 * Correctly rounded: mantissas below 2^53 with |exponent| <= 22 are one exact multiply or
 * divide (both operands exact, so IEEE rounds once); anything else goes through `Number()`
 * after the syntax has been checked here, so `Number`'s leniency (hex, spaces) never applies.
 */
export function parseDecimal(buf: Buffer, s: number, e: number): number {
  let p = s;
  let neg = false;
  if (p < e) {
    const c = buf[p];
    if (c === MINUS) {
      neg = true;
      p++;
    } else if (c === PLUS) {
      p++;
    }
  }
  let mant = 0;
  let exact = true;
  let digits = 0;
  let exp10 = 0;
  while (p < e) {
    const d = buf[p] - 48;
    if (d < 0 || d > 9) break;
    mant = mant * 10 + d;
    if (mant > MAX_EXACT) exact = false;
    digits++;
    p++;
  }
  if (p < e && buf[p] === DOT) {
    p++;
    while (p < e) {
      const d = buf[p] - 48;
      if (d < 0 || d > 9) break;
      if (exact) {
        mant = mant * 10 + d;
        if (mant > MAX_EXACT) exact = false;
        exp10--;
      }
      digits++;
      p++;
    }
  }
  if (digits === 0) return NaN;
  if (p < e) {
    const c = buf[p];
    if (c !== 101 && c !== 69) return NaN; // e, E
    p++;
    let eneg = false;
    if (p < e) {
      const c2 = buf[p];
      if (c2 === MINUS) {
        eneg = true;
        p++;
      } else if (c2 === PLUS) {
        p++;
      }
    }
    let ex = 0;
    let edigits = 0;
    while (p < e) {
      const d = buf[p] - 48;
      if (d < 0 || d > 9) return NaN;
      if (ex < 100000) ex = ex * 10 + d;
      edigits++;
      p++;
    }
    if (edigits === 0) return NaN;
    exp10 += eneg ? -ex : ex;
  }
  if (exact) {
    if (mant === 0) return neg ? -0 : 0;
    if (exp10 === 0) return neg ? -mant : mant;
    if (exp10 > 0 && exp10 <= 22) {
      const r = mant * POW10[exp10];
      return neg ? -r : r;
    }
    if (exp10 < 0 && exp10 >= -22) {
      const r = mant / POW10[-exp10];
      return neg ? -r : r;
    }
  }
  return Number(buf.toString('latin1', s, e));
}

function sanitizeKey(key: string): string {
  return key.indexOf(';') >= 0 || key.indexOf('=') >= 0 ? key.replace(/[;=]/g, '_') : key;
}

function sanitizeValue(value: string): string {
  return value.indexOf(';') >= 0 ? value.replace(/;/g, '_') : value;
}

function renderTag(key: string, value: string | null): string {
  return value === null ? sanitizeKey(key) : sanitizeKey(key) + '=' + sanitizeValue(value);
}

/**
 * The canonical stat identity of `name` (which may carry Graphite tags `;k=v`) with the
 * DogStatsD tags `tags` (`k:v` or bare `k`). See the top of this file.
 */
export function canonicalStatName(name: string, tags: readonly string[]): string {
  const semi = name.indexOf(';');
  const base = semi >= 0 ? name.slice(0, semi) : name;
  const parts: string[] = [];
  if (semi >= 0) {
    for (const t of name.slice(semi + 1).split(';')) {
      if (t.length === 0) continue;
      const eq = t.indexOf('=');
      parts.push(eq >= 0 ? renderTag(t.slice(0, eq), t.slice(eq + 1)) : renderTag(t, null));
    }
  }
  for (const t of tags) {
    if (t.length === 0) continue;
    const colon = t.indexOf(':');
    parts.push(colon >= 0 ? renderTag(t.slice(0, colon), t.slice(colon + 1)) : renderTag(t, null));
  }
  if (parts.length === 0) return base;
  parts.sort();
  let out = base;
  let prev: string | null = null;
  for (const p of parts) {
    if (p === prev) continue;
    out += ';' + p;
    prev = p;
  }
  return out;
}

/** Decodes bytes that are ASCII (the common case) or UTF-8. */
function decode(buf: Buffer, s: number, e: number, ascii: boolean): string {
  return buf.toString(ascii ? 'latin1' : 'utf8', s, e);
}

const NAME_KEY_MAX = 1024; // longer (name, tags) keys are decoded every time

/** An interned identity (see StatsdSink.sample): its canonical string and the sink's memo. */
export class NameRef {
  memo: unknown = undefined;
  constructor(readonly name: string) {}
}
const SLOT = 4; // Int32s per NameTable slot (3 used: 16 bytes keep slots aligned to cache lines)

/**
 * Interning table from the raw bytes of (name, tags) to the canonical identity (a NameRef):
 * open addressing on a 32-bit hash, keys kept in one arena buffer so an insert allocates
 * nothing but the string and its NameRef. Saves the decode and the tag sort on every line but
 * a stat's first, and hands the sink the same NameRef each time, whose memo spares it its own
 * lookup.
 * When it holds `maxEntries` names it is emptied and refills (bounded memory, no LRU cost).
 */
class NameTable {
  private cap = 0;
  private count = 0;
  /**
   * Per slot, side by side so a probe touches one cache line: the hash (0: empty), the
   * key's offset in the arena, and its lengths (key | name << 16, both <= NAME_KEY_MAX).
   */
  private slots = new Int32Array(0);
  private values: (NameRef | null)[] = [];
  private arena = Buffer.allocUnsafe(1 << 16);
  private arenaUsed = 0;

  constructor(private readonly maxEntries: number) {
    this.reset(1024);
  }

  private reset(cap: number): void {
    this.cap = cap;
    this.count = 0;
    this.slots = new Int32Array(cap * SLOT);
    this.values = new Array(cap).fill(null);
    this.arenaUsed = 0;
  }

  lookup(buf: Buffer, ns: number, ne: number, ts: number, te: number, hash: number, ascii: boolean): NameRef | null {
    const nlen = ne - ns;
    const klen = nlen + (te - ts);
    if (klen > NAME_KEY_MAX) {
      const long = build(buf, ns, ne, ts, te, ascii);
      return long === null ? null : new NameRef(long);
    }
    const h = hash === 0 ? 1 : hash | 0;
    const lens = klen | (nlen << 16);
    const slots = this.slots;
    const arena = this.arena;
    let mask = this.cap - 1;
    let i = h & mask;
    for (;;) {
      const at = i * SLOT;
      const sh = slots[at];
      if (sh === 0) break;
      if (sh === h && slots[at + 2] === lens) {
        const o = slots[at + 1];
        let j = 0;
        while (j < nlen && arena[o + j] === buf[ns + j]) j++;
        if (j === nlen) {
          const o2 = o + nlen - ts;
          let k = ts;
          while (k < te && arena[o2 + k] === buf[k]) k++;
          if (k === te) return this.values[i];
        }
      }
      i = (i + 1) & mask;
    }
    const name = build(buf, ns, ne, ts, te, ascii);
    if (name === null) return null;
    const value = new NameRef(name);
    if (this.count >= this.maxEntries) {
      this.reset(this.cap);
      mask = this.cap - 1;
      i = h & mask;
    } else if ((this.count + 1) * 2 > this.cap) {
      this.grow();
      mask = this.cap - 1;
      i = h & mask;
      while (this.slots[i * SLOT] !== 0) i = (i + 1) & mask;
    }
    if (this.arenaUsed + klen > this.arena.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.arenaUsed + klen));
      this.arena.copy(bigger, 0, 0, this.arenaUsed);
      this.arena = bigger;
    }
    const o = this.arenaUsed;
    buf.copy(this.arena, o, ns, ne);
    if (te > ts) buf.copy(this.arena, o + nlen, ts, te);
    this.arenaUsed += klen;
    const at = i * SLOT;
    this.slots[at] = h;
    this.slots[at + 1] = o;
    this.slots[at + 2] = lens;
    this.values[i] = value;
    this.count++;
    return value;
  }

  private grow(): void {
    const oldSlots = this.slots;
    const oldValues = this.values;
    const cap = this.cap * 2;
    this.cap = cap;
    this.slots = new Int32Array(cap * SLOT);
    this.values = new Array(cap).fill(null);
    const mask = cap - 1;
    for (let s = 0; s < oldValues.length; s++) {
      const h = oldSlots[s * SLOT];
      if (h === 0) continue;
      let i = h & mask;
      while (this.slots[i * SLOT] !== 0) i = (i + 1) & mask;
      this.slots.set(oldSlots.subarray(s * SLOT, s * SLOT + SLOT), i * SLOT);
      this.values[i] = oldValues[s];
    }
  }
}

/** The identity for name bytes [ns, ne) and tag bytes [ts, te); null if the base is empty. */
function build(buf: Buffer, ns: number, ne: number, ts: number, te: number, ascii: boolean): string | null {
  const name = decode(buf, ns, ne, ascii);
  let id: string;
  if (te > ts) {
    id = canonicalStatName(name, buf.toString('utf8', ts, te).split(','));
  } else if (name.indexOf(';') >= 0) {
    id = canonicalStatName(name, []);
  } else {
    id = name;
  }
  if (id.length === 0 || id.charCodeAt(0) === SEMI) return null;
  return id;
}

/** Per-line scratch, reused across lines and packets. */
class Scratch {
  cap = 16;
  valueStart = new Int32Array(16);
  valueEnd = new Int32Array(16);
  kinds = new Uint8Array(16);
  values = new Float64Array(16);
  rates = new Float64Array(16);
  deltas = new Uint8Array(16);

  grow(): void {
    const cap = this.cap * 2;
    const g32 = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    const g8 = (a: Uint8Array) => {
      const b = new Uint8Array(cap);
      b.set(a);
      return b;
    };
    const g64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.valueStart = g32(this.valueStart);
    this.valueEnd = g32(this.valueEnd);
    this.kinds = g8(this.kinds);
    this.values = g64(this.values);
    this.rates = g64(this.rates);
    this.deltas = g8(this.deltas);
    this.cap = cap;
  }
}

/**
 * A statsd parser with its own scratch space and name table: make one per thread (the
 * listeners of a replica share theirs, listeners.ts statsdParsers) and feed it packets.
 * Not safe to re-enter from inside its own sink on the same instance (it falls back to a
 * temporary parser if that happens).
 */
export class StatsdParser {
  readonly maxLineLength: number;
  readonly tokenMode: boolean;
  private readonly scratch = new Scratch();
  private readonly names: NameTable;
  private busy = false;
  private lastToken: Buffer = Buffer.alloc(0);
  private lastTokenString = '';

  constructor(opts: StatsdParseOptions) {
    if (!(opts.maxLineLength >= 1)) throw new RangeError('maxLineLength must be at least 1');
    this.maxLineLength = opts.maxLineLength;
    this.tokenMode = opts.tokenMode;
    this.names = new NameTable(opts.maxNames ?? 100_000);
  }

  /**
   * Parses the lines in `buf[start, end)` (a UDP datagram, or whole lines from a stream).
   * A final line without a newline is parsed too. Returns the number of non-empty lines seen
   * (good and bad).
   */
  parse(buf: Buffer, start: number, end: number, sink: StatsdSink): number {
    if (this.busy) {
      return new StatsdParser({ maxLineLength: this.maxLineLength, tokenMode: this.tokenMode, maxNames: 1000 }).parse(buf, start, end, sink);
    }
    this.busy = true;
    let lines = 0;
    // indexOf searches to the end of its buffer: a view that ends at `end` keeps a last line
    // without a newline (every 1-line datagram) from scanning the rest of a large buffer.
    if (end < buf.length) buf = buf.subarray(0, end);
    try {
      let ls = start;
      while (ls < end) {
        let nl = buf.indexOf(NL, ls);
        if (nl < 0 || nl >= end) nl = end;
        let le = nl;
        if (le > ls && buf[le - 1] === CR) le--;
        if (le > ls) {
          lines++;
          this.parseLine(buf, ls, le, sink);
        }
        ls = nl + 1;
      }
    } finally {
      this.busy = false;
    }
    return lines;
  }

  /** Parses one line `buf[ls, le)` (no newline, no trailing `\r`). */
  private parseLine(buf: Buffer, ls: number, le: number, sink: StatsdSink): void {
    if (le - ls > this.maxLineLength) {
      sink.bad('too_long', buf, ls, ls + this.maxLineLength);
      return;
    }
    let p = ls;
    let token: string | null = null;
    if (this.tokenMode) {
      while (p < le) {
        const c = buf[p];
        if (c === DOT || c === COLON || c === PIPE) break;
        p++;
      }
      if (p === le || p === ls || buf[p] !== DOT) {
        sink.bad('no_token', buf, ls, le);
        return;
      }
      token = this.tokenString(buf, ls, p);
      p++;
    }

    // name
    const ns = p;
    if (le - p >= 3 && buf[p] === 95 /* _ */) {
      if (
        (buf[p + 1] === 101 /* e */ && buf[p + 2] === 123) /* { */ ||
        (le - p >= 4 && buf[p + 1] === 115 /* s */ && buf[p + 2] === 99 /* c */ && buf[p + 3] === PIPE)
      ) {
        sink.bad('unsupported', buf, ls, le);
        return;
      }
    }
    let hash = 0x811c9dc5;
    let high = 0;
    while (p < le) {
      const c = buf[p];
      if (c === COLON || c === PIPE) break;
      hash = Math.imul(hash ^ c, 0x01000193);
      high |= c;
      p++;
    }
    const ne = p;
    if (p === le || buf[p] === PIPE) {
      sink.bad('no_value', buf, ls, le);
      return;
    }
    if (ne === ns) {
      sink.bad('empty_name', buf, ls, le);
      return;
    }
    p++; // ':'

    const sc = this.scratch;
    let n = 0;
    let pending = 0;
    let ts = 0;
    let te = 0;
    for (;;) {
      // value
      const vs = p;
      while (p < le) {
        const c = buf[p];
        if (c === PIPE || c === COLON) break;
        p++;
      }
      if (n === sc.cap) sc.grow();
      sc.valueStart[n] = vs;
      sc.valueEnd[n] = p;
      n++;
      if (p === le) {
        sink.bad(p === vs ? 'no_value' : 'missing_type', buf, ls, le);
        return;
      }
      p++;
      if (buf[p - 1] === COLON) continue; // DogStatsD packed value: same type follows

      // type
      const tys = p;
      while (p < le) {
        const c = buf[p];
        if (c === PIPE || c === COLON) break;
        p++;
      }
      const tlen = p - tys;
      let kind: number;
      if (tlen === 1) {
        const t = buf[tys];
        if (t === 99 /* c */) kind = K_COUNTER;
        else if (t === 103 /* g */) kind = K_GAUGE;
        else if (t === 115 /* s */) kind = K_SET;
        else if (t === 104 /* h */ || t === 100 /* d */) kind = K_VALUE;
        else {
          sink.bad('bad_type', buf, ls, le);
          return;
        }
      } else if (tlen === 2 && buf[tys] === 109 /* m */ && buf[tys + 1] === 115 /* s */) {
        kind = K_VALUE;
      } else {
        sink.bad(tlen === 0 ? 'missing_type' : 'bad_type', buf, ls, le);
        return;
      }

      // fields
      let rate = 1;
      while (p < le && buf[p] === PIPE) {
        p++;
        const fs = p;
        if (p < le && buf[p] === AT) {
          p++;
          while (p < le) {
            const c = buf[p];
            if (c === PIPE || c === COLON) break;
            p++;
          }
          rate = parseDecimal(buf, fs + 1, p);
          if (!(rate > 0 && rate <= 1)) {
            sink.bad('bad_rate', buf, ls, le);
            return;
          }
        } else {
          while (p < le && buf[p] !== PIPE) p++;
          if (p > fs && buf[fs] === HASH) {
            ts = fs + 1;
            te = p;
          }
        }
      }

      // values of this segment, now that the type is known
      if (kind === K_GAUGE || kind === K_SET) rate = 1;
      if (kind === K_SET && n - pending > 1) {
        // a set member may contain ':' (ids like user:42, URLs, IPv6): one member, not packed
        sc.valueEnd[pending] = sc.valueEnd[n - 1];
        n = pending + 1;
      }
      for (let i = pending; i < n; i++) {
        if (sc.valueEnd[i] === sc.valueStart[i]) {
          sink.bad('no_value', buf, ls, le);
          return;
        }
        sc.kinds[i] = kind;
        sc.rates[i] = rate;
        sc.deltas[i] = 0;
        if (kind === K_SET) {
          sc.values[i] = 0;
          continue;
        }
        const s = sc.valueStart[i];
        const e = sc.valueEnd[i];
        const v = parseDecimal(buf, s, e);
        if (v - v !== 0) {
          // NaN or +-Infinity
          sink.bad('bad_value', buf, ls, le);
          return;
        }
        if (kind === K_VALUE) {
          if (v < 0) {
            sink.bad('negative_timer', buf, ls, le);
            return;
          }
          sc.values[i] = v + 0; // -0 -> 0
        } else {
          if (kind === K_GAUGE) {
            const c = buf[s];
            if (c === PLUS || c === MINUS) sc.deltas[i] = 1;
          }
          sc.values[i] = v;
        }
      }
      pending = n;
      if (p < le) {
        p++; // ':' after the type or the rate: the next segment
        continue;
      }
      break;
    }

    // the whole line is good: emit
    if (te > ts) {
      for (let i = ts; i < te; i++) hash = Math.imul(hash ^ buf[i], 0x01000193);
    }
    const ref = this.names.lookup(buf, ns, ne, ts, te, Math.imul(hash ^ (hash >>> 16), 0x85ebca6b) ^ (hash >>> 13), high < 0x80);
    if (ref === null) {
      sink.bad('empty_name', buf, ls, le);
      return;
    }
    for (let i = 0; i < n; i++) {
      const kind = sc.kinds[i];
      sink.sample(
        ref.name,
        KIND_NAMES[kind],
        sc.values[i],
        sc.rates[i],
        sc.deltas[i] === 1,
        kind === K_SET ? buf.toString('utf8', sc.valueStart[i], sc.valueEnd[i]) : null,
        token,
        i === 0,
        ref,
      );
    }
  }

  private tokenString(buf: Buffer, s: number, e: number): string {
    const last = this.lastToken;
    const len = e - s;
    if (last.length === len) {
      let i = 0;
      while (i < len && last[i] === buf[s + i]) i++;
      if (i === len) return this.lastTokenString;
    }
    const copy = Buffer.allocUnsafe(len);
    buf.copy(copy, 0, s, e);
    this.lastToken = copy;
    this.lastTokenString = buf.toString('utf8', s, e);
    return this.lastTokenString;
  }
}

/**
 * Cuts a TCP or Unix stream into lines for a `StatsdParser`, whatever the read boundaries.
 * Whole lines inside a read are parsed in place; only a line split across reads is copied
 * (into a buffer of `maxLineLength + 1` bytes). A line longer than the limit is reported once
 * as `too_long` (with its first `maxLineLength` bytes) and skipped up to its newline, so the
 * stream resynchronises there. One splitter per connection.
 */
export class LineSplitter {
  private readonly parser: StatsdParser;
  private readonly max: number;
  private readonly pending: Buffer;
  private pendingLen = 0;
  private discarding = false;

  constructor(parser: StatsdParser) {
    this.parser = parser;
    this.max = parser.maxLineLength;
    this.pending = Buffer.allocUnsafe(this.max + 1);
  }

  /** Feeds one read. Returns the number of non-empty lines completed by it. */
  push(chunk: Buffer, sink: StatsdSink): number {
    let pos = 0;
    const len = chunk.length;
    let lines = 0;
    if (this.discarding) {
      const nl = chunk.indexOf(NL);
      if (nl < 0) return 0;
      this.discarding = false;
      pos = nl + 1;
    } else if (this.pendingLen > 0) {
      const nl = chunk.indexOf(NL);
      if (nl < 0) {
        this.append(chunk, 0, len, sink);
        return this.discarding ? 1 : 0;
      }
      if (this.append(chunk, 0, nl, sink)) {
        // the line is complete and within the limit
        lines += this.parser.parse(this.pending, 0, this.pendingLen, sink);
      } else if (this.discarding) {
        lines++;
      }
      this.discarding = false;
      this.pendingLen = 0;
      pos = nl + 1;
    }
    const last = chunk.lastIndexOf(NL);
    if (last >= pos) {
      lines += this.parser.parse(chunk, pos, last + 1, sink);
      pos = last + 1;
    }
    if (pos < len) {
      this.append(chunk, pos, len, sink);
      if (this.discarding) lines++;
    }
    return lines;
  }

  /** The stream ended: parses a last line that had no newline. */
  end(sink: StatsdSink): number {
    const lines = this.pendingLen > 0 ? this.parser.parse(this.pending, 0, this.pendingLen, sink) : 0;
    this.pendingLen = 0;
    this.discarding = false;
    return lines;
  }

  /**
   * Appends `chunk[s, e)` to the pending line. Returns false (and reports `too_long`, and
   * starts discarding) once the line can no longer fit: more than `max + 1` bytes, or
   * `max + 1` bytes whose last is not the `\r` of a `\r\n`.
   */
  private append(chunk: Buffer, s: number, e: number, sink: StatsdSink): boolean {
    const total = this.pendingLen + (e - s);
    const max = this.max;
    if (total > max + 1 || (total === max + 1 && (e > s ? chunk[e - 1] : this.pending[this.pendingLen - 1]) !== CR)) {
      if (this.pendingLen < max) chunk.copy(this.pending, this.pendingLen, s, s + (max - this.pendingLen));
      this.pendingLen = 0;
      this.discarding = true;
      sink.bad('too_long', this.pending, 0, max);
      return false;
    }
    chunk.copy(this.pending, this.pendingLen, s, e);
    this.pendingLen = total;
    return true;
  }
}
