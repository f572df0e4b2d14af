import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Draw, drawn, fuzzParams, fuzzTimeout, sameData } from '../../kit/testing/fuzz.js';
import { BAD_LINE_REASONS, LineSplitter, StatsdParser, type BadLineReason, type StatsdKind, type StatsdSink } from './parse.js';

// Fuzzing the statsd parser (issue 7, item 3). Lines are generated from the grammar at the
// top of parse.ts, with the samples each must give computed here by an independent model
// (canonical identity, kinds, rates, deltas, set members), so a generated good line must
// parse to exactly what was generated; bad lines are built with a known reason, mixed into
// packets of good ones; and arbitrary bytes must never throw and always be parsed or
// counted, line by line. `npm run fuzz` runs the same properties longer (FUZZ_RUNS).

interface Sample {
  name: string;
  kind: StatsdKind;
  value: number;
  rate: number;
  delta: boolean;
  member: string | null;
  token: string | null;
}
type Event = Sample | { reason: BadLineReason; bytes: string };

/** Records what the parser hands over, samples and bad lines in one sequence. */
class Recorder implements StatsdSink {
  events: Event[] = [];
  samples = 0;
  bads = 0;
  sample(name: string, kind: StatsdKind, value: number, rate: number, delta: boolean, member: string | null, token: string | null): void {
    this.samples++;
    this.events.push({ name, kind, value, rate, delta, member, token });
  }
  bad(reason: BadLineReason, buf: Buffer, start: number, end: number): void {
    this.bads++;
    this.events.push({ reason, bytes: buf.toString('hex', start, end) });
  }
}

// ---- the model ----------------------------------------------------------------------

/** DogStatsD `k:v` / Graphite `k=v` tag → its canonical form, or null when empty (dropped). */
function renderTag(raw: string, sep: ':' | '='): string | null {
  if (raw === '') return null;
  const i = raw.indexOf(sep);
  const key = (i >= 0 ? raw.slice(0, i) : raw).replace(/[;=]/g, '_');
  return i >= 0 ? `${key}=${raw.slice(i + 1).replace(/;/g, '_')}` : key;
}

/** The canonical identity: base, then the distinct tags sorted by UTF-16 code units. */
function identity(base: string, graphite: string[], dog: string[]): string {
  const parts = [...graphite.map((t) => renderTag(t, '=')), ...dog.map((t) => renderTag(t, ':'))].filter((t): t is string => t !== null);
  const sorted = [...new Set(parts)].sort();
  return base + sorted.map((p) => `;${p}`).join('');
}

// ---- generators ----------------------------------------------------------------------
//
// Lines are built by a deterministic builder from a seed and a character pool (Draw, in
// kit/testing/fuzz.ts, says why); every choice follows the grammar at the top of parse.ts.

/** A sample rate in (0, 1], written in any of the ways a client might. */
function rateText(d: Draw): string {
  switch (d.int(3)) {
    case 0:
      return d.pick(['1', '1.', '1.0', '+1', '1e0', '10e-1', '0.5', '.5', '5e-1', '5E-1', '+.25', '0.1', '0.001', '1.000000000000000000001']);
    case 1:
      return `0.${d.digits(0, 11)}${1 + d.int(9)}`;
    default:
      return `.${d.digits(0, 5)}${1 + d.int(9)}e0`;
  }
}

interface GoodLine {
  text: string;
  samples: Sample[];
}

type SegmentKind = 'c' | 'ms' | 'h' | 'd' | 'g' | 's';
const KIND_OF: Record<SegmentKind, StatsdKind> = { c: 'counter', ms: 'value', h: 'value', d: 'value', g: 'gauge', s: 'set' };

/** A valid line and the samples it must give, by the grammar at the top of parse.ts. */
function buildGoodLine(d: Draw, tokenMode: boolean): GoodLine {
  const token = tokenMode ? d.text('\n\r.:|', 1, 8) : null;
  // The base name: anything but the separators; `_e{` and `_sc|` start DogStatsD events.
  let base = d.text('\n\r:|;', 1, 16);
  if (base.startsWith('_e{')) base = `x${base}`;
  const graphite = Array.from({ length: d.chance(0.3) ? 1 + d.int(3) : 0 }, () => d.text('\n\r:|;', 0, 8));
  const dogTags = d.chance(0.4) ? Array.from({ length: d.int(5) }, () => d.text('\n\r|,', 0, 8)) : undefined;
  const name = identity(base, graphite, dogTags ?? []);
  const samples: Sample[] = [];
  const segments = 1 + (d.chance(0.3) ? d.int(3) : 0);
  const rendered: string[] = [];
  for (let i = 0; i < segments; i++) {
    const type = d.pick<SegmentKind>(['c', 'ms', 'h', 'd', 'g', 's']);
    const rateText_ = d.chance(0.3) ? rateText(d) : undefined;
    const rate = type === 'g' || type === 's' ? 1 : Number(rateText_ ?? '1');
    const values: string[] = [];
    if (type === 's') {
      values.push(d.text('\n\r|', 1, 12)); // a member may hold ':' (user:42, URLs): one member, never packed
    } else {
      for (let n = 1 + (d.chance(0.2) ? d.int(3) : 0); n > 0; n--) {
        values.push(d.decimal(type === 'c' ? ['', '', '+', '-'] : type === 'g' ? ['', '', '+', '-'] : ['', '', '+']));
      }
    }
    for (const v of values) {
      samples.push({
        name,
        kind: KIND_OF[type],
        value: type === 's' ? 0 : type === 'c' || type === 'g' ? Number(v) : Number(v) + 0,
        rate,
        delta: type === 'g' && (v.startsWith('+') || v.startsWith('-')),
        member: type === 's' ? v : null,
        token,
      });
    }
    let out = `${values.join(':')}|${type}`;
    if (i < segments - 1) {
      // Only a rate may follow the type before the next segment.
      rendered.push(rateText_ === undefined ? out : `${out}|@${rateText_}`);
      continue;
    }
    // The last segment's fields come in any order: tags and unknown fields run to the next `|`.
    const fields = [...(rateText_ === undefined ? [] : [`@${rateText_}`]), ...(dogTags === undefined ? [] : [`#${dogTags.join(',')}`])];
    for (let n = d.chance(0.3) ? 1 + d.int(2) : 0; n > 0; n--) {
      let f = d.text('\n\r|', 0, 10);
      if (f.startsWith('@') || f.startsWith('#')) f = `x${f}`;
      fields.push(f);
    }
    for (let k = fields.length - 1; k > 0; k--) {
      const j = d.int(k + 1);
      [fields[k], fields[j]] = [fields[j], fields[k]];
    }
    for (const f of fields) out += `|${f}`;
    rendered.push(out);
  }
  const nameText = base + graphite.map((t) => `;${t}`).join('');
  return { text: `${token === null ? '' : `${token}.`}${nameText}:${rendered.join(':')}`, samples };
}

const MAX_LINE = 4096;

/** A line that must be refused for `reason`, whatever surrounds it. */
function buildBadLine(d: Draw, tokenMode: boolean): { text: string; reason: BadLineReason } {
  const p = tokenMode ? `${d.text('\n\r.:|', 1, 8)}.` : '';
  let n = d.text('\n\r:|;', 1, 12);
  if (n.startsWith('_')) n = `x${n}`;
  const cases: (() => { text: string; reason: BadLineReason })[] = [
    () => ({ text: `${p}${n}:1|${d.pick(['x', 'cc', 'm', 'msx', 'G', 'C', 'gauge', 'sets', 'ms '])}`, reason: 'bad_type' }),
    () => {
      let v = d.decimal(['']);
      if (Number(v) === 0) v = '1';
      return { text: `${p}${n}:-${v}|${d.pick(['ms', 'h', 'd'])}`, reason: 'negative_timer' };
    },
    () => ({ text: `${p}${n}:1|c|@${d.pick(['0', '0.0', '1.5', '-0.5', '2', 'abc', '', '1e1', 'NaN', '.', '1 ', '0x1'])}`, reason: 'bad_rate' }),
    () => ({
      text: `${p}${n}:${d.pick(['NaN', 'Infinity', '-Infinity', '0x10', '1e999', '-1e400', '1 ', ' 1', 'abc', '1e', '--1', '1.2.3', 'e5', '.', '+', '1_000'])}|${d.pick(['c', 'g', 'ms'])}`,
      reason: 'bad_value',
    }),
    () => ({ text: `${p}${n}${d.pick([':1', ':1|', ':1:2', ':1|c:2'])}`, reason: 'missing_type' }),
    () => ({ text: `${p}${n}${d.pick(['', ':', ':|c', ':1|c::2|c', '|x:1|c'])}`, reason: 'no_value' }),
    () => ({ text: `${p}${d.pick([':1|c', ';k=v:1|c', ';;:2|g'])}`, reason: 'empty_name' }),
    () => ({ text: `${p}${d.pick(['_e{5,4}:title|text', '_sc|check|0'])}`, reason: 'unsupported' }),
    () => ({ text: `${p}${'n'.repeat(MAX_LINE + d.int(50))}:1|c`, reason: 'too_long' }),
  ];
  if (tokenMode) cases.push(() => ({ text: d.pick(['name:1|c', '.name:1|c', 'a|b.c:1|c']), reason: 'no_token' }));
  return d.pick(cases)();
}

/** A packet of 1..5 lines drawn by `line`. */
function packet<L>(line: (d: Draw, tokenMode: boolean) => L) {
  return drawn((d) => {
    const tokenMode = d.chance(0.5);
    const lines = Array.from({ length: 1 + d.int(5) }, () => line(d, tokenMode));
    return { tokenMode, lines, eol: d.pick(['\n', '\r\n']), trailing: d.chance(0.5), blank: d.int(6) };
  });
}
const goodOrBad = (d: Draw, tokenMode: boolean) => (d.chance(0.5) ? buildGoodLine(d, tokenMode) : buildBadLine(d, tokenMode));

/** Events compared cheaply (numbers by Object.is, so -0 is not 0); vitest's diff only on a mismatch. */
function expectEvents(got: Event[], want: Event[]): void {
  if (!sameData(got, want)) expect(got).toEqual(want);
}

// One parser per token mode for the whole run, as a listener has: a small name table makes
// it start over often, so lookups after a reset are exercised too.
const parsers = { plain: new StatsdParser({ maxLineLength: MAX_LINE, tokenMode: false, maxNames: 64 }), token: new StatsdParser({ maxLineLength: MAX_LINE, tokenMode: true, maxNames: 64 }) };
const parserFor = (tokenMode: boolean) => (tokenMode ? parsers.token : parsers.plain);
const hex = (s: string | Buffer) => (typeof s === 'string' ? Buffer.from(s) : s).toString('hex');

/** Throws (fast-check reports the case) when `ok` is false; cheaper than expect() in hot loops. */
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

describe('statsd parser fuzz', () => {
  it(
    'parses every generated packet of valid lines to exactly the samples generated',
    () => {
      fc.assert(
        fc.property(packet(buildGoodLine), ({ tokenMode, lines, eol, trailing, blank }) => {
          const texts = lines.map((l) => l.text);
          // Empty lines are skipped wherever they are.
          if (blank < texts.length) texts.splice(blank, 0, '');
          const buf = Buffer.from(texts.join(eol) + (trailing ? eol : ''));
          const sink = new Recorder();
          const seen = parserFor(tokenMode).parse(buf, 0, buf.length, sink);
          expectEvents(sink.events, lines.flatMap((l) => l.samples));
          check(seen === lines.length, `${seen} lines seen, ${lines.length} sent`);
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'counts every bad line with its reason and never loses a good line beside it',
    () => {
      fc.assert(
        fc.property(packet(goodOrBad), ({ tokenMode, lines, eol }) => {
          const buf = Buffer.from(lines.map((l) => l.text).join(eol));
          const sink = new Recorder();
          const seen = parserFor(tokenMode).parse(buf, 0, buf.length, sink);
          const expected = lines.flatMap((l): Event[] => ('samples' in l ? l.samples : [{ reason: l.reason, bytes: hex(Buffer.from(l.text).subarray(0, MAX_LINE)) }]));
          expectEvents(sink.events, expected);
          check(seen === lines.length, `${seen} lines seen, ${lines.length} sent`);
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'never throws on arbitrary bytes, and parses or counts each line on its own',
    () => {
      // Mostly grammar bytes, so the soup reaches deep into the parser; any byte at all otherwise.
      const grammar = Buffer.from(':|@#,;=.+-0123456789eEcmsghd\n\r_{}');
      const bytes = fc.uint8Array({ maxLength: 120 }).map((a) => a.map((b) => (b < 192 ? grammar[b % grammar.length] : b)));
      const kinds = new Set<string>(['counter', 'value', 'gauge', 'set']);
      const reasons = new Set<string>(BAD_LINE_REASONS);
      const parsers = new Map<string, StatsdParser>();
      fc.assert(
        fc.property(bytes, fc.boolean(), fc.integer({ min: 1, max: 80 }), (raw, tokenMode, max) => {
          const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
          const key = `${tokenMode}/${max}`;
          let parser = parsers.get(key);
          if (!parser) parsers.set(key, (parser = new StatsdParser({ maxLineLength: max, tokenMode, maxNames: 16 })));
          const whole = new Recorder();
          const seen = parser.parse(buf, 0, buf.length, whole);
          // Line by line, as the grammar defines lines: cut at \n, one trailing \r dropped, empty skipped.
          const each = new Recorder();
          let lines = 0;
          let start = 0;
          while (start <= buf.length) {
            let nl = buf.indexOf(10, start);
            if (nl < 0) nl = buf.length;
            const end = nl > start && buf[nl - 1] === 13 ? nl - 1 : nl;
            if (end > start) {
              lines++;
              const samples = each.samples;
              const bads = each.bads;
              // Handed over with its \r: the parser drops it itself.
              parser.parse(buf, start, nl, each);
              // A line gives its samples or is counted once as bad, never both, never neither.
              check(each.samples > samples ? each.bads === bads : each.bads === bads + 1, `line at ${start}: ${each.samples - samples} samples, ${each.bads - bads} bad`);
            }
            start = nl + 1;
          }
          check(seen === lines, `${seen} lines seen, ${lines} in the bytes`);
          // A bad line never changes what its neighbours give.
          expectEvents(whole.events, each.events);
          for (const e of whole.events) {
            if ('reason' in e) {
              check(reasons.has(e.reason) && e.bytes.length / 2 <= max, `bad ${JSON.stringify(e)}`);
              continue;
            }
            check(
              e.name.length > 0 &&
                kinds.has(e.kind) &&
                Number.isFinite(e.value) &&
                e.rate > 0 &&
                e.rate <= 1 &&
                (e.member !== null) === (e.kind === 'set') &&
                (!e.delta || e.kind === 'gauge') &&
                (e.kind !== 'value' || e.value >= 0) &&
                (e.kind === 'counter' || e.kind === 'value' || e.rate === 1) &&
                (e.token !== null) === tokenMode,
              `sample ${JSON.stringify(e)}`,
            );
          }
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );

  it(
    'gives the same events for a stream however it is cut into reads, at any line limit',
    () => {
      // Good and bad lines, and now and then a line of pool characters with no structure at all.
      const line = (d: Draw) => (d.chance(0.2) ? { text: d.text('', 0, 40) } : goodOrBad(d, false));
      fc.assert(
        fc.property(
          packet(line),
          fc.array(fc.nat(), { maxLength: 8 }),
          // Small limits put lines right at the limit (and at limit + 1 with a \r) often.
          fc.oneof(fc.integer({ min: 8, max: 64 }), fc.constant(MAX_LINE)),
          ({ lines, eol }, cuts, max) => {
            const buf = Buffer.from(lines.map((l) => l.text).join(eol));
            const whole = new Recorder();
            new StatsdParser({ maxLineLength: max, tokenMode: false }).parse(buf, 0, buf.length, whole);
            const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
            const splitter = new LineSplitter(new StatsdParser({ maxLineLength: max, tokenMode: false }));
            const chunked = new Recorder();
            let prev = 0;
            for (const p of [...points, buf.length]) {
              splitter.push(buf.subarray(prev, p), chunked);
              prev = p;
            }
            splitter.end(chunked);
            expectEvents(chunked.events, whole.events);
          },
        ),
        fuzzParams(20_000),
      );
    },
    fuzzTimeout(20_000),
  );
});
