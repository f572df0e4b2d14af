import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  BAD_LINE_REASONS,
  LineSplitter,
  StatsdParser,
  canonicalStatName,
  type NameRef,
  parseDecimal,
  type BadLineReason,
  type StatsdKind,
  type StatsdSink,
} from './parse.js';

interface Sample {
  name: string;
  kind: StatsdKind;
  value: number;
  rate: number;
  delta: boolean;
  member: string | null;
  token: string | null;
}
interface Bad {
  reason: BadLineReason;
  line: string;
}

class Collect implements StatsdSink {
  samples: Sample[] = [];
  bads: Bad[] = [];
  events: (Sample | Bad)[] = [];
  /** firstOfLine of each sample, beside `samples`. */
  firsts: boolean[] = [];
  /** The NameRef of each sample, beside `samples`. */
  refs: (NameRef | undefined)[] = [];
  sample(
    name: string,
    kind: StatsdKind,
    value: number,
    rate: number,
    delta: boolean,
    member: string | null,
    token: string | null,
    firstOfLine: boolean,
    ref?: NameRef,
  ): void {
    const s = { name, kind, value, rate, delta, member, token };
    this.firsts.push(firstOfLine);
    this.refs.push(ref);
    this.samples.push(s);
    this.events.push(s);
  }
  bad(reason: BadLineReason, buf: Buffer, start: number, end: number): void {
    const b = { reason, line: buf.toString('latin1', start, end) };
    this.bads.push(b);
    this.events.push(b);
  }
}

const MAX = 64;

function parse(text: string | Buffer, tokenMode = false, maxLineLength = MAX): Collect {
  const sink = new Collect();
  const buf = typeof text === 'string' ? Buffer.from(text) : text;
  new StatsdParser({ maxLineLength, tokenMode }).parse(buf, 0, buf.length, sink);
  return sink;
}

function one(line: string, tokenMode = false): Sample {
  const r = parse(line, tokenMode);
  expect(r.bads).toEqual([]);
  expect(r.samples).toHaveLength(1);
  return r.samples[0];
}

function badReason(line: string, tokenMode = false): BadLineReason {
  const r = parse(line, tokenMode);
  expect(r.samples).toEqual([]);
  expect(r.bads).toHaveLength(1);
  expect(r.bads[0].line).toBe(line.length > MAX ? line.slice(0, MAX) : line);
  return r.bads[0].reason;
}

const s = (
  name: string,
  kind: StatsdKind,
  value: number,
  rate = 1,
  delta = false,
  member: string | null = null,
  token: string | null = null,
): Sample => ({ name, kind, value, rate, delta, member, token });

describe('statsd grammar', () => {
  it('parses each kind', () => {
    expect(one('a.b:1|c')).toEqual(s('a.b', 'counter', 1));
    expect(one('a:-2.5|c')).toEqual(s('a', 'counter', -2.5));
    expect(one('a:+3|c')).toEqual(s('a', 'counter', 3));
    expect(one('t:320|ms')).toEqual(s('t', 'value', 320));
    expect(one('t:0.25|h')).toEqual(s('t', 'value', 0.25));
    expect(one('t:7|d')).toEqual(s('t', 'value', 7));
    expect(one('t:-0|ms')).toEqual(s('t', 'value', 0));
    expect(one('g:5|g')).toEqual(s('g', 'gauge', 5));
    expect(one('g:+5|g')).toEqual(s('g', 'gauge', 5, 1, true));
    expect(one('g:-5.5|g')).toEqual(s('g', 'gauge', -5.5, 1, true));
    expect(one('g:0|g')).toEqual(s('g', 'gauge', 0));
    expect(one('u:alice|s')).toEqual(s('u', 'set', 0, 1, false, 'alice'));
    expect(one('u:1.5|s')).toEqual(s('u', 'set', 0, 1, false, '1.5'));
    expect(one('u:héllo wörld|s')).toEqual(s('u', 'set', 0, 1, false, 'héllo wörld'));
    expect(one('u:user:42|s')).toEqual(s('u', 'set', 0, 1, false, 'user:42'));
    expect(one('u:http://x/y?a=1|s|#t:1').member).toBe('http://x/y?a=1');
    expect(one('u:2001:db8::1|s').member).toBe('2001:db8::1');
    expect(one('u:::|s').member).toBe('::');
    expect(one('u:x:|s').member).toBe('x:');
    expect(one('ünï.cødé:1|c')).toEqual(s('ünï.cødé', 'counter', 1));
  });

  it('reads sample rates on counters and timers, and ignores them on gauges and sets', () => {
    expect(one('a:2|c|@0.5')).toEqual(s('a', 'counter', 2, 0.5));
    expect(one('a:2|c|@1')).toEqual(s('a', 'counter', 2, 1));
    expect(one('t:9|ms|@0.1')).toEqual(s('t', 'value', 9, 0.1));
    expect(one('t:9|h|@.25')).toEqual(s('t', 'value', 9, 0.25));
    expect(one('g:9|g|@0.5')).toEqual(s('g', 'gauge', 9, 1));
    expect(one('u:x|s|@0.5')).toEqual(s('u', 'set', 0, 1, false, 'x'));
  });

  it('reads plain decimal numbers', () => {
    for (const [text, v] of [
      ['1e3', 1000],
      ['1E-3', 0.001],
      ['2.5e+2', 250],
      ['.5', 0.5],
      ['5.', 5],
      ['007', 7],
      ['123456789012345678901234567890', 123456789012345678901234567890],
      ['0.1', 0.1],
      ['1e-400', 0],
    ] as const) {
      expect(one(`a:${text}|c`).value).toBe(v);
    }
  });

  it('splits Etsy multi-value lines into samples of one name', () => {
    const r = parse('a:1|c:250|ms:-3|g:x|s:2|c|@0.5');
    expect(r.bads).toEqual([]);
    expect(r.samples).toEqual([
      s('a', 'counter', 1),
      s('a', 'value', 250),
      s('a', 'gauge', -3, 1, true),
      s('a', 'set', 0, 1, false, 'x'),
      s('a', 'counter', 2, 0.5),
    ]);
    expect(parse('a:1|ms|@0.5:2|ms').samples).toEqual([s('a', 'value', 1, 0.5), s('a', 'value', 2)]);
  });

  it('marks the first sample of each line', () => {
    const r = parse('a:1|c:250|ms\nb:1:2|h\nbad\nc:3|g\n');
    expect(r.samples.map((x) => x.name)).toEqual(['a', 'a', 'b', 'b', 'c']);
    expect(r.firsts).toEqual([true, false, true, false, true]);
  });

  it('splits DogStatsD packed values', () => {
    expect(parse('a:1|c:2001:db8::1|s:2|ms').samples).toEqual([
      s('a', 'counter', 1),
      s('a', 'set', 0, 1, false, '2001:db8::1'),
      s('a', 'value', 2),
    ]);
    expect(parse('a:1:2:3|h|@0.5').samples).toEqual([
      s('a', 'value', 1, 0.5),
      s('a', 'value', 2, 0.5),
      s('a', 'value', 3, 0.5),
    ]);
    expect(parse('a:1:2|c:4|g').samples).toEqual([s('a', 'counter', 1), s('a', 'counter', 2), s('a', 'gauge', 4)]);
  });

  it('handles several lines, empty lines, CRLF and a trailing newline', () => {
    const r = parse('a:1|c\n\nb:2|ms\r\n\r\nc:3|g\n');
    expect(r.bads).toEqual([]);
    expect(r.samples).toEqual([s('a', 'counter', 1), s('b', 'value', 2), s('c', 'gauge', 3)]);
    expect(parse('').samples).toEqual([]);
    expect(parse('\n\n\r\n').events).toEqual([]);
  });

  it('ignores unknown fields, including DogStatsD container ids and timestamps', () => {
    expect(one('a:1|c|c:0123abc|T1656581400')).toEqual(s('a', 'counter', 1));
    expect(one('a:1|c|x|@0.5|zz:yy')).toEqual(s('a', 'counter', 1, 0.5));
    expect(one('a:1|c|')).toEqual(s('a', 'counter', 1));
    expect(one('a:1|c||@0.5')).toEqual(s('a', 'counter', 1, 0.5));
  });

  it('folds DogStatsD tags into the canonical name', () => {
    expect(one('a:1|c|#env:prod,flag').name).toBe('a;env=prod;flag');
    expect(one('a:1|c|@0.5|#z:1,b,z:1,,b').name).toBe('a;b;z=1');
    expect(one('a:1|c|#url:http://x:80/y').name).toBe('a;url=http://x:80/y');
    expect(one('a:1|c|#k:').name).toBe('a;k=');
    expect(one('a:1|c|#').name).toBe('a');
    expect(one('a:1|c|#k;x=y:v;w').name).toBe('a;k_x_y=v_w');
    expect(one('a:1|c|#env:prod|c:abc|T12').name).toBe('a;env=prod');
    // Graphite tags already in the name land in the same identity
    expect(one('a;env=prod;flag:1|c').name).toBe('a;env=prod;flag');
    expect(one('a;flag:1|c|#env:prod').name).toBe('a;env=prod;flag');
    expect(one('a;z=1;;:1|c').name).toBe('a;z=1');
    // tags of a multi-value line apply to all its samples
    const r = parse('a:1|c:250|ms|#env:prod');
    expect(r.samples.map((x) => [x.name, x.kind])).toEqual([
      ['a;env=prod', 'counter'],
      ['a;env=prod', 'value'],
    ]);
  });

  it('builds canonical names through the exported function', () => {
    expect(canonicalStatName('a', [])).toBe('a');
    expect(canonicalStatName('a', ['b:2', 'a:1', 'a:1', 'c'])).toBe('a;a=1;b=2;c');
    expect(canonicalStatName('a;b=2', ['a:1'])).toBe('a;a=1;b=2');
    expect(canonicalStatName('a', ['x=y'])).toBe('a;x_y');
    // order of tags never matters
    expect(canonicalStatName('m', ['x:1', 'y', 'w:2'])).toBe(canonicalStatName('m;w=2', ['y', 'x:1']));
  });

  it('hands out the token in token mode', () => {
    expect(one('tok123.a.b:1|c', true)).toEqual(s('a.b', 'counter', 1, 1, false, null, 'tok123'));
    const r = parse('t1.a:1|c\nt2.a:2|c\nt1.b:x|s', true);
    expect(r.samples.map((x) => [x.token, x.name])).toEqual([
      ['t1', 'a'],
      ['t2', 'a'],
      ['t1', 'b'],
    ]);
  });

  it('keeps names right while the interning table grows and starts over', () => {
    for (const maxNames of [7, 100_000]) {
      const parser = new StatsdParser({ maxLineLength: 200, tokenMode: false, maxNames });
      const sink = new Collect();
      const expected: string[] = [];
      for (let round = 0; round < 3; round++) {
        const lines: string[] = [];
        for (let i = 0; i < 3000; i++) {
          const tags = i % 3 === 0 ? `|#t:${i % 11}` : '';
          lines.push(`n${i % 1500}:1|c${tags}`);
          expected.push(`n${i % 1500}${i % 3 === 0 ? `;t=${i % 11}` : ''}`);
        }
        const buf = Buffer.from(lines.join('\n'));
        parser.parse(buf, 0, buf.length, sink);
      }
      expect(sink.samples.map((x) => x.name)).toEqual(expected);
    }
  });

  it('returns the same string object for a repeated name', () => {
    const r = parse('abc:1|c\nabc:2|c\nx:1|c|#a:b\nx:2|c|#a:b');
    expect(r.samples[0].name).toBe(r.samples[1].name);
    expect(r.samples[2].name).toBe('x;a=b');
  });

  it('hands over one NameRef per interned name, with its memo kept, and a new one after the table starts over', () => {
    const parser = new StatsdParser({ maxLineLength: 200, tokenMode: false, maxNames: 3 });
    const sink = new Collect();
    const feed = (text: string) => parser.parse(Buffer.from(text), 0, text.length, sink);
    feed('a:1|c\nb:1|ms|#t:1\na:2|g\nb:3|ms|#t:1');
    const [a1, b1, a2, b2] = sink.refs;
    expect(a1).toBe(a2);
    expect(b1).toBe(b2);
    expect(a1).not.toBe(b1);
    expect([a1!.name, b1!.name]).toEqual(['a', 'b;t=1']);
    a1!.memo = 'mine';
    feed('a:3|c');
    expect(sink.refs[4]).toBe(a1);
    expect(sink.refs[4]!.memo).toBe('mine');
    feed('c:1|c\nd:1|c\na:4|c'); // the fourth name empties the table: a comes back as a new NameRef
    const a3 = sink.refs[7]!;
    expect(a3.name).toBe('a');
    expect(a3).not.toBe(a1);
    expect(a3.memo).toBeUndefined();
  });
});

describe('bad lines', () => {
  const cases: [string, BadLineReason, boolean?][] = [
    ['x'.repeat(MAX - 3) + ':1|c', 'too_long'],
    ['a:1|c', 'no_token', true],
    ['.a:1|c', 'no_token', true],
    ['tok|a:1|c', 'no_token', true],
    [':1|c', 'empty_name'],
    [';a=b:1|c', 'empty_name'],
    ['tok.:1|c', 'empty_name', true],
    ['a', 'no_value'],
    ['a|c', 'no_value'],
    ['a:', 'no_value'],
    ['a:|c', 'no_value'],
    ['a:|s', 'no_value'],
    ['a:1|c:', 'no_value'],
    ['a:1::2|c', 'no_value'],
    ['a::1|ms', 'no_value'],
    ['a:1', 'missing_type'],
    ['a:1|', 'missing_type'],
    ['a:1:2', 'missing_type'],
    ['a:1||c', 'missing_type'],
    ['a:1|x', 'bad_type'],
    ['a:1|cc', 'bad_type'],
    ['a:1|MS', 'bad_type'],
    ['a:1|C', 'bad_type'],
    ['a:abc|c', 'bad_value'],
    ['a:NaN|c', 'bad_value'],
    ['a:Infinity|ms', 'bad_value'],
    ['a:-Infinity|g', 'bad_value'],
    ['a:0x10|c', 'bad_value'],
    ['a:1e999|c', 'bad_value'],
    ['a: 1|c', 'bad_value'],
    ['a:1 |c', 'bad_value'],
    ['a:1.2.3|c', 'bad_value'],
    ['a:-|c', 'bad_value'],
    ['a:+|g', 'bad_value'],
    ['a:1e|c', 'bad_value'],
    ['a:.|c', 'bad_value'],
    ['a:1|c:x|ms', 'bad_value'],
    ['a:-1|ms', 'negative_timer'],
    ['a:-0.5|h', 'negative_timer'],
    ['a:-3|d', 'negative_timer'],
    ['a:1|c|@0', 'bad_rate'],
    ['a:1|c|@-0.5', 'bad_rate'],
    ['a:1|c|@1.5', 'bad_rate'],
    ['a:1|ms|@abc', 'bad_rate'],
    ['a:1|c|@', 'bad_rate'],
    ['a:1|c|@NaN', 'bad_rate'],
    ['a:1|g|@2', 'bad_rate'],
    ['_e{5,4}:title|text', 'unsupported'],
    ['_sc|db.up|0|#env:prod', 'unsupported'],
  ];

  it.each(cases)('%j is %s', (line, reason, tokenMode) => {
    expect(badReason(line, tokenMode ?? false)).toBe(reason);
  });

  it('covers every reason code', () => {
    expect(new Set(cases.map((c) => c[1]))).toEqual(new Set(BAD_LINE_REASONS));
  });

  it('accepts a line of exactly the maximum length, with or without CRLF', () => {
    const line = 'x'.repeat(MAX - 4) + ':1|c';
    expect(line.length).toBe(MAX);
    expect(parse(line).samples).toHaveLength(1);
    expect(parse(line + '\r\n').samples).toHaveLength(1);
    expect(parse('y' + line + '\r\n').bads.map((b) => b.reason)).toEqual(['too_long']);
  });

  it('never drops the good lines of a packet', () => {
    for (const [badLine, reason, tokenMode] of cases) {
      const p = (n: string) => (tokenMode ? `tok.${n}` : n);
      const text = `${p('g1:1|c')}\n${badLine}\n${p('g2:2|ms')}\r\n${badLine}\n${p('g3:x|s')}`;
      const r = parse(text, tokenMode ?? false);
      expect(r.events.map((e) => ('reason' in e ? e.reason : e.name))).toEqual([
        'g1',
        reason,
        'g2',
        reason,
        'g3',
      ]);
    }
  });
});

describe('parseDecimal', () => {
  it('agrees with Number() on every decimal it accepts', () => {
    const decimal = fc
      .tuple(
        fc.constantFrom('', '+', '-'),
        fc.stringMatching(/^[0-9]{0,25}$/),
        fc.option(fc.stringMatching(/^[0-9]{0,25}$/), { nil: undefined }),
        fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.integer({ min: 0, max: 400 })), {
          nil: undefined,
        }),
      )
      .map(([sign, int, frac, exp]) => {
        let t = sign + int;
        if (frac !== undefined) t += '.' + frac;
        if (exp !== undefined) t += exp[0] + exp[1] + String(exp[2]);
        return t;
      });
    fc.assert(
      fc.property(decimal, (text) => {
        const b = Buffer.from(text);
        const got = parseDecimal(b, 0, b.length);
        const hasDigit = /[0-9]/.test(text.split(/[eE]/)[0]);
        if (!hasDigit) return Number.isNaN(got);
        expect(Object.is(got, Number(text))).toBe(true);
        return true;
      }),
      { numRuns: 3000 },
    );
  });
});

// Generators for valid lines and the sample each must give.
const nameArb = fc.stringMatching(/^[a-zA-Z0-9_.\-]{1,30}$/);
const tagArb = fc.stringMatching(/^[a-z]{1,5}(:[a-z0-9:]{0,5})?$/);
const rateArb = fc.constantFrom(1, 0.5, 0.25, 0.1, 0.01, 0.333);
const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
const lineArb = fc
  .record({
    token: fc.option(fc.stringMatching(/^[a-zA-Z0-9]{1,12}$/), { nil: undefined }),
    name: nameArb,
    tags: fc.array(tagArb, { maxLength: 4 }),
    kind: fc.constantFrom('c', 'ms', 'h', 'd', 'g', 'g+', 's'),
    num: finite,
    member: fc.stringMatching(/^[^|\n\r]{1,20}$/),
    rate: rateArb,
    withRate: fc.boolean(),
    extra: fc.constantFrom('', '|c:abcdef', '|T1700000000'),
  })
  .map((r) => {
    let value: string;
    let expected: Omit<Sample, 'name' | 'token'>;
    const rate = r.withRate ? r.rate : 1;
    switch (r.kind) {
      case 'c':
        value = String(r.num);
        expected = { kind: 'counter', value: r.num + 0, rate, delta: false, member: null };
        break;
      case 'ms':
      case 'h':
      case 'd':
        value = String(Math.abs(r.num));
        expected = { kind: 'value', value: Math.abs(r.num), rate, delta: false, member: null };
        break;
      case 'g':
        value = String(Math.abs(r.num));
        expected = { kind: 'gauge', value: Math.abs(r.num), rate: 1, delta: false, member: null };
        break;
      case 'g+':
        value = (r.num >= 0 ? '+' : '') + String(r.num);
        expected = { kind: 'gauge', value: Number(value), rate: 1, delta: true, member: null };
        break;
      default:
        value = r.member;
        expected = { kind: 'set', value: 0, rate: 1, delta: false, member: r.member };
    }
    const type = r.kind === 'g+' ? 'g' : r.kind;
    let line = `${r.token !== undefined ? r.token + '.' : ''}${r.name}:${value}|${type}`;
    if (r.withRate) line += `|@${r.rate}`;
    if (r.tags.length > 0) line += `|#${r.tags.join(',')}`;
    line += r.extra;
    return {
      line,
      tokenMode: r.token !== undefined,
      sample: { ...expected, name: canonicalStatName(r.name, r.tags), token: r.token ?? null } as Sample,
    };
  });

describe('properties', () => {
  it('(a) every generated valid line gives its sample', () => {
    fc.assert(
      fc.property(lineArb, ({ line, tokenMode, sample }) => {
        const r = parse(line, tokenMode, 1000);
        expect(r.bads).toEqual([]);
        expect(r.samples).toHaveLength(1);
        expect(Object.is(r.samples[0].value, sample.value) || r.samples[0].value === sample.value).toBe(true);
        expect(r.samples[0]).toEqual(sample);
      }),
      { numRuns: 2000 },
    );
  });

  it('(a) a packet of valid lines gives all their samples in order', () => {
    fc.assert(
      fc.property(fc.array(lineArb, { minLength: 1, maxLength: 20 }), fc.boolean(), (lines, crlf) => {
        const sink = new Collect();
        const parsers = [false, true].map((tokenMode) => new StatsdParser({ maxLineLength: 1000, tokenMode }));
        // one packet per token mode, as a listener would have it
        for (const tm of [false, true]) {
          const group = lines.filter((l) => l.tokenMode === tm);
          const buf = Buffer.from(group.map((l) => l.line).join(crlf ? '\r\n' : '\n'));
          parsers[tm ? 1 : 0].parse(buf, 0, buf.length, sink);
        }
        expect(sink.bads).toEqual([]);
        const expected = [...lines.filter((l) => !l.tokenMode), ...lines.filter((l) => l.tokenMode)].map((l) => l.sample);
        expect(sink.samples).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('(b) random bytes never throw, and every line is parsed or counted bad', () => {
    const byteSoup = fc.array(
      fc.oneof(
        fc.integer({ min: 0, max: 255 }),
        fc.constantFrom(...Buffer.from(':|@#\n\r.+-0123456789ecmsghd')),
      ),
      { maxLength: 300 },
    );
    fc.assert(
      fc.property(byteSoup, fc.boolean(), fc.integer({ min: 1, max: 100 }), (bytes, tokenMode, max) => {
        const buf = Buffer.from(bytes);
        const sink = new Collect();
        let goodLines = 0;
        const counting: StatsdSink = {
          sample: (...args) => sink.sample(...args),
          bad: (...args) => sink.bad(...args),
        };
        const parser = new StatsdParser({ maxLineLength: max, tokenMode });
        // parse line by line to count the lines that gave samples
        // raw lines, each still with its \r if it had one
        const expectedLines = buf
          .toString('latin1')
          .split('\n')
          .filter((l) => l.length > 0 && l !== '\r');
        let lines = 0;
        for (const l of expectedLines) {
          const before = sink.samples.length + sink.bads.length;
          const lb = Buffer.from(l, 'latin1');
          lines += parser.parse(lb, 0, lb.length, counting);
          const added = sink.samples.length + sink.bads.length - before;
          expect(added).toBeGreaterThan(0);
          if (sink.events[sink.events.length - 1] && !('reason' in sink.events[sink.events.length - 1])) goodLines++;
          else expect(sink.events.length - before).toBe(1);
        }
        expect(lines).toBe(expectedLines.length);
        expect(goodLines + sink.bads.length).toBe(expectedLines.length);
        // and the whole buffer at once gives the same events
        const whole = new Collect();
        expect(parser.parse(buf, 0, buf.length, whole)).toBe(expectedLines.length);
        expect(whole.events).toEqual(sink.events);
        for (const sm of whole.samples) {
          expect(Number.isFinite(sm.value)).toBe(true);
          expect(sm.rate > 0 && sm.rate <= 1).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('LineSplitter', () => {
  const max = 40;
  const stream = Buffer.from(
    [
      'a:1|c',
      'b:2|ms|@0.5',
      '',
      'c:+3|g\r',
      'tok-less-bad-line',
      'u:ünïcode|s|#env:prod,z',
      'x'.repeat(max - 4) + ':1|c', // exactly max
      'y'.repeat(max - 4) + ':1|c\r', // exactly max, CRLF
      'z'.repeat(max) + ':1|c', // too long
      'w'.repeat(3 * max), // far too long, no colon
      'e'.repeat(max - 4) + ':1|c' + 'q', // one byte too long
      'f:1|c:2|ms',
      '\r',
      'g:bad|c',
      'h:4|d',
      '',
    ].join('\n'),
  );

  function whole(buf: Buffer): Collect {
    const sink = new Collect();
    new StatsdParser({ maxLineLength: max, tokenMode: false }).parse(buf, 0, buf.length, sink);
    return sink;
  }

  function chunked(chunks: Buffer[]): { sink: Collect; lines: number } {
    const sink = new Collect();
    const splitter = new LineSplitter(new StatsdParser({ maxLineLength: max, tokenMode: false }));
    let lines = 0;
    for (const c of chunks) lines += splitter.push(c, sink);
    lines += splitter.end(sink);
    return { sink, lines };
  }

  const reference = whole(stream);

  it('the reference stream has the cases it is meant to have', () => {
    expect(reference.bads.map((b) => b.reason)).toEqual(['no_value', 'too_long', 'too_long', 'too_long', 'bad_value']);
    expect(reference.samples.map((x) => x.name)).toEqual(['a', 'b', 'c', 'u;env=prod;z', 'x'.repeat(max - 4), 'y'.repeat(max - 4), 'f', 'f', 'h']);
  });

  it('gives the same events when split at any byte offset', () => {
    for (let i = 0; i <= stream.length; i++) {
      const { sink, lines } = chunked([stream.subarray(0, i), stream.subarray(i)]);
      expect(sink.events, `split at ${i}`).toEqual(reference.events);
      expect(lines).toBe(13);
    }
  });

  it('gives the same events when split at any two offsets', () => {
    for (let i = 0; i <= stream.length; i += 3) {
      for (let j = i; j <= stream.length; j += 5) {
        const { sink } = chunked([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]);
        expect(sink.events, `split at ${i}, ${j}`).toEqual(reference.events);
      }
    }
  });

  it('gives the same events fed one byte at a time', () => {
    const chunks = [...stream].map((b) => Buffer.from([b]));
    const { sink, lines } = chunked(chunks);
    expect(sink.events).toEqual(reference.events);
    expect(lines).toBe(13);
  });

  it('gives the same events for random streams cut at random places', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(lineArb.map((l) => l.line), fc.stringMatching(/^[a-z:|.@#0-9\r]{0,60}$/)), { maxLength: 15 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (lines, cuts) => {
          const buf = Buffer.from(lines.join('\n'));
          const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const pt of points) {
            chunks.push(buf.subarray(prev, pt));
            prev = pt;
          }
          chunks.push(buf.subarray(prev));
          expect(chunked(chunks).sink.events).toEqual(whole(buf).events);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('resynchronises after a too-long line that spans many reads', () => {
    const sink = new Collect();
    const splitter = new LineSplitter(new StatsdParser({ maxLineLength: 10, tokenMode: false }));
    splitter.push(Buffer.from('a:1|c\nxxxxxxxx'), sink);
    for (let i = 0; i < 5; i++) splitter.push(Buffer.from('yyyyyyyyyy'), sink);
    splitter.push(Buffer.from('zz\nb:2|c\n'), sink);
    expect(sink.events).toEqual([
      s('a', 'counter', 1),
      { reason: 'too_long', line: 'xxxxxxxxyy' },
      s('b', 'counter', 2),
    ]);
  });
});
