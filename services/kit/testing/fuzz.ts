import fc from 'fast-check';

// Shared by the *.fuzz.test.ts property tests: how many cases to run and how long to allow.
//
// In `npm test` each parser property runs DEFAULT_FUZZ_RUNS cases (a few seconds each);
// `npm run fuzz` sets FUZZ_RUNS (default 2,000,000) for a longer run of the same properties.
// A property with another default (an HTTP one runs 1,000) is scaled by the same factor.
// FUZZ_SEED and FUZZ_PATH replay a failure: fast-check prints both with any counterexample.

export const DEFAULT_FUZZ_RUNS = 100_000;

/** Cases per property: `defaultRuns`, scaled by FUZZ_RUNS / DEFAULT_FUZZ_RUNS when FUZZ_RUNS is set. */
export function fuzzRuns(defaultRuns = DEFAULT_FUZZ_RUNS): number {
  const env = process.env.FUZZ_RUNS;
  if (env === undefined || env === '') return defaultRuns;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new Error(`FUZZ_RUNS must be a positive whole number, got ${JSON.stringify(env)}`);
  return Math.max(1, Math.round((defaultRuns * n) / DEFAULT_FUZZ_RUNS));
}

/** fast-check parameters: the run count, and FUZZ_SEED / FUZZ_PATH to replay a reported failure. */
export function fuzzParams(defaultRuns = DEFAULT_FUZZ_RUNS): { numRuns: number; seed?: number; path?: string } {
  const seed = process.env.FUZZ_SEED;
  const path = process.env.FUZZ_PATH;
  return { numRuns: fuzzRuns(defaultRuns), ...(seed ? { seed: Number(seed) } : {}), ...(path ? { path } : {}) };
}

/** A vitest timeout for a property of `defaultRuns` cases that takes up to `msPerRun` each. */
export function fuzzTimeout(defaultRuns = DEFAULT_FUZZ_RUNS, msPerRun = 0.5): number {
  return Math.max(60_000, Math.ceil(fuzzRuns(defaultRuns) * msPerRun * 2));
}

// ---- drawing inputs from a seed -------------------------------------------------------
//
// Structural fast-check arbitraries (a record per field, an array per list) cost a few µs
// per leaf, so a realistic request or statsd packet costs 50-100 µs to generate: too slow
// for 100,000 cases in a few seconds. The fuzz tests instead build each input from one
// fast-check integer (the seed) and one fast-check pool of characters, with a small
// deterministic builder (Draw) that follows the grammar. Failures still replay (fast-check
// prints seed and path) and print the input; the pool shrinks toward plain characters.


/** Characters inputs are drawn from: grammar and markup characters, other scripts, any code point. */
export const FUZZ_CHAR = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...'abcXYZ019 _-./#@,=+*!$%&()[]{}<>?~^`\'"\\\t:|;'.split('')) },
  { weight: 2, arbitrary: fc.constantFrom('é', 'ü', 'ß', '中', '文', 'ж', '🦅', '\u00a0', '\u2028', '\u0000', '\u007f', '\n', '\r') },
  // Any code point but lone surrogates (fc.string's 'binary' unit costs ten times more here).
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0x10ffff - 0x800 }).map((cp) => String.fromCodePoint(cp < 0xd800 ? cp : cp + 0x800)) },
);

/** An input built by `build` from a seed and a pool of 4..48 characters. */
export function drawn<T>(build: (d: Draw) => T): fc.Arbitrary<T> {
  return fc.tuple(fc.integer(), fc.string({ unit: FUZZ_CHAR, minLength: 4, maxLength: 48 })).map(([seed, pool]) => build(new Draw(seed, [...pool])));
}

const scratch = new DataView(new ArrayBuffer(8));

/** A seeded source of choices (mulberry32: the same sequence on every machine for a seed). */
export class Draw {
  private a: number;
  constructor(
    seed: number,
    private readonly chars: string[],
  ) {
    this.a = seed >>> 0;
    if (chars.length === 0) this.chars = ['a'];
  }

  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** 0 .. n-1 */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  /** `min`..`max` decimal digits. */
  digits(min: number, max: number): string {
    let s = '';
    for (let n = min + this.int(max - min + 1); n > 0; n--) s += String(this.int(10));
    return s;
  }

  /** `min`..`max` characters from the pool, none of `forbidden` (an `a` when the pool has none left). */
  text(forbidden: string, min: number, max: number): string {
    let s = '';
    for (let n = min + this.int(max - min + 1); n > 0; n--) {
      let c = this.chars[this.int(this.chars.length)];
      if (forbidden.includes(c)) c = this.chars.find((x) => !forbidden.includes(x)) ?? 'a';
      s += c;
    }
    return s;
  }

  /**
   * A plain decimal as clients write them: `1`, `-2.5`, `.5`, `3.`, `+1e-3`, `007`, `1E+22`,
   * 25-digit mantissas, and any double's own spelling (`5e-324`, `1.7976931348623157e+308`).
   * Always finite.
   */
  decimal(signs: readonly string[]): string {
    for (;;) {
      let t: string;
      if (this.chance(0.2)) {
        scratch.setUint32(0, this.int(2 ** 32));
        scratch.setUint32(4, this.int(2 ** 32));
        const v = Math.abs(scratch.getFloat64(0));
        if (!Number.isFinite(v)) continue;
        t = this.pick(signs) + String(v);
      } else {
        const int = this.digits(0, this.chance(0.2) ? 25 : 4);
        const frac = this.chance(0.5) ? `.${this.digits(0, this.chance(0.2) ? 25 : 4)}` : '';
        if (int.length + Math.max(0, frac.length - 1) === 0) continue;
        const exp = this.chance(0.3) ? this.pick(['e', 'E']) + this.pick(['', '+', '-']) + (this.chance(0.8) ? String(this.int(40)) : this.digits(1, 4)) : '';
        t = this.pick(signs) + int + frac + exp;
      }
      if (Number.isFinite(Number(t))) return t;
    }
  }
}

/** Deep equality of plain data, numbers by Object.is (so -0 is not 0); far cheaper than expect().toEqual. */
export function sameData(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], bb[i])) return false;
    return true;
  }
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!Object.hasOwn(b, k) || !sameData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/**
 * Runs `fn` with Error.stackTraceLimit at 0. The parsers refuse bad input by throwing, and
 * capturing a stack costs about 10 µs, most of a fuzz case; no parser reads stacks, so
 * this changes what a case costs, not what it does. FUZZ_STACKS=1 keeps them, to debug a
 * failure replayed with FUZZ_SEED.
 */
export function withoutStacks<T>(fn: () => T): T {
  if (process.env.FUZZ_STACKS === '1') return fn();
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return fn();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
