import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseEzParams, scanEzForm } from './ez-params.js';
import { formParams, NO_PARAMS } from './routes/http-io.js';

// scanEzForm is the fast path for /ez form bodies and must never disagree with
// URLSearchParams + parseEzParams: whatever it takes reads to the same point; whatever it
// is unsure of it leaves to them (returns undefined).

function scanned(body: Buffer) {
  const s = scanEzForm(body);
  if (!s) return undefined;
  return { ezkey: s.ezkey, stats: [s.statBytes.toString('latin1', 0, s.statLength)], kind: s.kind === 1 ? 'count' : 'value', number: s.number, t: s.t, verbose: s.verbose };
}

function parsed(body: Buffer) {
  try {
    return parseEzParams(formParams(body.toString(), NO_PARAMS));
  } catch (err) {
    return { threw: (err as Error).message };
  }
}

function agrees(body: Buffer): boolean {
  const fast = scanned(body);
  if (fast === undefined) return false;
  const slow = parsed(body);
  expect(slow).toEqual(fast);
  expect(Object.is((slow as { number: number }).number, fast.number)).toBe(true);
  return true;
}

const printable = fc.string({ unit: fc.constantFrom(...'abcxyz09 ._-:/|#AZ'.split('')), minLength: 1, maxLength: 30 });
const numberText = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.constantFrom('1', '-0', '+3', '0.25', '.5', '3.', '007', '1e3', '123456789012345', '1234567890123456', ' 1', ''),
);
const field = fc.oneof(
  fc.tuple(fc.constant('ezkey'), fc.oneof(printable, fc.constant(''))),
  fc.tuple(fc.constant('email'), fc.constantFrom('a@example.com', '')),
  fc.tuple(fc.constant('stat'), fc.oneof(printable, fc.constantFrom('p~a,b', '  x  ', '\tx', 'caf\u00e9', ''))),
  fc.tuple(fc.constantFrom('count', 'value'), numberText),
  fc.tuple(fc.constant('t'), fc.oneof(fc.nat().map(String), fc.constantFrom('', '4294967296', '12345678901', 'now', '0012'))),
  fc.tuple(fc.constant('vb'), fc.constantFrom('1', '0', '')),
  fc.tuple(fc.constantFrom('other', 'ez key', 'stat2'), printable),
);
// Encoded the way clients do: URLSearchParams (+ for spaces) or encodeURIComponent (%20).
const plain = fc.tuple(printable, printable.filter((x) => x.trim() !== ''), fc.constantFrom('count', 'value'), fc.oneof(fc.integer().map(String), fc.constantFrom('0.5', '-2.25', '.5')), fc.array(field, { maxLength: 3 })).map(
  ([k, stat, kind, n, more]): [string, string][] => [['ezkey', k], ['stat', stat], [kind, n], ...more],
);
const body = fc.tuple(fc.oneof(plain, fc.array(field, { maxLength: 8 })), fc.boolean()).map(([fields, plus]) =>
  plus ? new URLSearchParams(fields).toString() : fields.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'),
);

describe('scanEzForm', () => {
  it('takes what StatHat clients send, to the point parseEzParams reads', () => {
    for (const b of ['ezkey=k&stat=page+views&count=1', 'stat=page%20views&ezkey=k&value=-0.25&t=1700000000&vb=1', 'email=me%40example.com&stat=x&count=2', 'ezkey=k&stat=x&count=1&count=2&other=%zz'])
      expect(agrees(Buffer.from(b))).toBe(true);
  });

  it.each([
    ['prefix~a,b', 'ezkey=k&stat=p~a,b&count=1'],
    ['an exponent', 'ezkey=k&stat=x&count=1e3'],
    ['a name that is not ASCII', 'ezkey=k&stat=caf%C3%A9&count=1'],
    ['a bad escape', 'ezkey=k&stat=a%zz&count=1'],
    ['an escaped field name', 'ez%6Bey=k&stat=x&count=1'],
    ['count and value', 'ezkey=k&stat=x&count=1&value=2'],
    ['no number', 'ezkey=k&stat=x'],
    ['an empty ezkey', 'ezkey=&email=a@b&stat=x&count=1'],
    ['an empty stat', 'ezkey=k&stat=+&count=1'],
    ['a long t', 'ezkey=k&stat=x&count=1&t=12345678901'],
  ])('leaves %s to parseEzParams', (_, b) => {
    expect(scanEzForm(Buffer.from(b))).toBeUndefined();
  });

  it('agrees with parseEzParams on generated forms', () => {
    let taken = 0;
    fc.assert(
      fc.property(body, (b) => {
        if (agrees(Buffer.from(b))) taken++;
      }),
      { numRuns: 5000 },
    );
    expect(taken).toBeGreaterThan(100);
  });

  it('agrees with parseEzParams on any mutation of a form (bytes changed, inserted, removed)', () => {
    const significant = fc.constantFrom(...'&=+%20%7e~ 09.-eE\t\u00e9\u0000azAF'.split(''));
    fc.assert(
      fc.property(fc.constantFrom('ezkey=k&stat=page+views&count=1', 'stat=a%20b&ezkey=Kq_z&value=-2.5&t=17&vb=1'), fc.array(fc.tuple(fc.nat(), fc.nat(2), significant), { minLength: 1, maxLength: 4 }), (base, edits) => {
        let s: string = base;
        for (const [at, op, ch] of edits) {
          const i = at % s.length;
          s = op === 0 ? s.slice(0, i) + ch + s.slice(i + 1) : op === 1 ? s.slice(0, i) + ch + s.slice(i) : s.slice(0, i) + s.slice(i + 1);
        }
        agrees(Buffer.from(s));
      }),
      { numRuns: 20000 },
    );
  });
});
