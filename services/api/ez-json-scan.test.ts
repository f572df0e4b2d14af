import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_BATCH_POINTS, parseEzJson, scanEzJson } from './ez-json.js';

// scanEzJson is the fast path for /ez JSON batches and must never disagree with
// parseEzJson: whatever it takes, parseEzJson reads to the same points with no error;
// whatever it is unsure of, it leaves to parseEzJson (returns undefined).

/** What the scan found, in parseEzJson's terms; undefined when it fell back. */
function scanned(body: Buffer) {
  const s = scanEzJson(body);
  if (!s) return undefined;
  return {
    ezkey: s.ezkey,
    verbose: false,
    size: s.n,
    errors: [],
    items: Array.from({ length: s.n }, (_, i) => ({
      index: i,
      stats: [body.toString('utf8', s.statStart[i], s.statEnd[i])],
      kind: s.kind[i] === 1 ? 'count' : 'value',
      number: s.number[i],
      t: s.t[i],
    })),
  };
}

function parsed(body: Buffer) {
  try {
    return parseEzJson(body.toString());
  } catch (err) {
    return { threw: (err as Error).message };
  }
}

/** The scan either falls back or agrees with parseEzJson exactly (-0 included). */
function agrees(body: Buffer): boolean {
  const fast = scanned(body);
  if (fast === undefined) return false;
  const slow = parsed(body);
  expect(slow).toEqual(fast);
  const items = (slow as { items: { number: number }[] }).items;
  items.forEach((it, i) => expect(Object.is(it.number, fast.items[i].number)).toBe(true));
  return true;
}

const asciiName = fc.string({ unit: fc.constantFrom(...'abcxyz09 ._-:/|#%AZ'.split('')), minLength: 1, maxLength: 30 }).filter((s) => s.trim() !== '');
const number = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, -0, 1e21, 123456789012345678, 0.1, 1e-7));
const item = fc.record(
  {
    stat: asciiName,
    count: number,
    value: number,
    t: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constant(2 ** 32)),
  },
  { requiredKeys: ['stat'] },
);
const plainItem = fc.tuple(asciiName, fc.constantFrom('count', 'value'), number, fc.option(fc.integer({ min: 0, max: 0xffffffff }))).map(([stat, kind, n, t]) => (t === null ? { stat, [kind]: n } : { stat, [kind]: n, t }));
const doc = fc.record(
  {
    ezkey: fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.constant('Ab3_k-ey')),
    email: fc.constantFrom('a@example.com', ''),
    data: fc.array(fc.oneof({ arbitrary: plainItem, weight: 20 }, { arbitrary: item, weight: 1 }), { maxLength: 12 }),
  },
  { requiredKeys: ['data'] },
);

describe('scanEzJson', () => {
  it('takes what StatHat clients send, to the points parseEzJson reads', () => {
    const bodies = [
      { ezkey: 'k', data: [{ stat: 'page views', count: 1 }] },
      { ezkey: 'k', data: [{ stat: ' spaced ', value: -2.5e-3, t: 1700000000 }, { stat: 'b', count: 0 }] },
      { data: [{ count: 2, stat: 'x' }], email: 'me@example.com' },
      { ezkey: 'k', data: Array.from({ length: MAX_BATCH_POINTS }, (_, i) => ({ stat: `s${i % 7}`, count: i })) },
    ];
    for (const b of bodies) expect(agrees(Buffer.from(JSON.stringify(b)))).toBe(true);
    expect(agrees(Buffer.from(' \r\n{ "ezkey" : "k" ,\t"data" : [ { "stat" : "a" , "count" : -0 } ] }\n'))).toBe(true);
  });

  it.each([
    ['a query-only shape', '{"data":[{"stat":"a","count":1}]}'],
    ['vb', '{"ezkey":"k","vb":1,"data":[{"stat":"a","count":1}]}'],
    ['another key', '{"ezkey":"k","data":[{"stat":"a","count":1,"note":1}]}'],
    ['an escape', '{"ezkey":"k","data":[{"stat":"a\\u0062","count":1}]}'],
    ['prefix~a,b', '{"ezkey":"k","data":[{"stat":"p~a,b","count":1}]}'],
    ['a name that is not ASCII', '{"ezkey":"k","data":[{"stat":"café","count":1}]}'],
    ['a duplicate key', '{"ezkey":"k","data":[{"stat":"a","count":1,"count":2}]}'],
    ['count and value', '{"ezkey":"k","data":[{"stat":"a","count":1,"value":2}]}'],
    ['a number in a string', '{"ezkey":"k","data":[{"stat":"a","count":"1"}]}'],
    ['null', '{"ezkey":"k","data":[{"stat":"a","count":1,"value":null}]}'],
    ['a leading zero', '{"ezkey":"k","data":[{"stat":"a","count":01}]}'],
    ['t with a fraction', '{"ezkey":"k","data":[{"stat":"a","count":1,"t":1.0}]}'],
    ['an empty list', '{"ezkey":"k","data":[]}'],
    ['trailing bytes', '{"ezkey":"k","data":[{"stat":"a","count":1}]} x'],
    ['a trailing comma', '{"ezkey":"k","data":[{"stat":"a","count":1},]}'],
    ['a name of spaces', '{"ezkey":"k","data":[{"stat":"  ","count":1}]}'],
    ['too many points', JSON.stringify({ ezkey: 'k', data: Array.from({ length: MAX_BATCH_POINTS + 1 }, () => ({ stat: 'a', count: 1 })) })],
    ['infinity', '{"ezkey":"k","data":[{"stat":"a","count":1e999}]}'],
  ])('leaves %s to parseEzJson', (_, body) => {
    expect(scanEzJson(Buffer.from(body))).toBeUndefined();
  });

  it('agrees with parseEzJson on generated batches', () => {
    let taken = 0;
    fc.assert(
      fc.property(doc, (d) => {
        if (agrees(Buffer.from(JSON.stringify(d)))) taken++;
      }),
      { numRuns: 2000 },
    );
    // Most generated batches are plain: the fast path must really be used.
    expect(taken).toBeGreaterThan(200);
  });

  it('agrees with parseEzJson on any mutation of a batch (bytes changed, inserted, removed)', () => {
    const significant = fc.constantFrom(...'{}[]",:\\ \t\n-+.eE0123456789tnul~\u00e9\u0000'.split(''));
    fc.assert(
      fc.property(doc, fc.array(fc.tuple(fc.nat(), fc.nat(2), significant), { minLength: 1, maxLength: 4 }), (d, edits) => {
        let s = JSON.stringify(d);
        for (const [at, op, ch] of edits) {
          const i = s.length === 0 ? 0 : at % s.length;
          s = op === 0 ? s.slice(0, i) + ch + s.slice(i + 1) : op === 1 ? s.slice(0, i) + ch + s.slice(i) : s.slice(0, i) + s.slice(i + 1);
        }
        agrees(Buffer.from(s));
      }),
      { numRuns: 20000 },
    );
  });

  it('keeps the last scan only in its shared arrays: a second scan replaces the first', () => {
    const a = Buffer.from('{"ezkey":"a","data":[{"stat":"x","count":1},{"stat":"y","count":2}]}');
    const b = Buffer.from('{"ezkey":"b","data":[{"stat":"z","value":3}]}');
    expect(scanEzJson(a)!.n).toBe(2);
    const s = scanEzJson(b)!;
    expect([s.ezkey, s.n, s.kind[0], s.number[0]]).toEqual(['b', 1, 2, 3]);
  });
});
