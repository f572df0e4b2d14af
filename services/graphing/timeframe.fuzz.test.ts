import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Draw, drawn, fuzzParams, fuzzTimeout, sameData, withoutStacks } from '../kit/testing/fuzz.js';
import { EMBED_TIMEFRAMES, MAX_POINTS_PER_SERIES, TimeframeError, embedTimeframe, parseTimeframe, type Timeframe } from './timeframe.js';

// Fuzzing StatHat's timeframe grammar `t=<duration><interval>` (issue 7, item 3): every
// string the grammar produces parses to exactly its duration, interval, point count and
// label (computed here from the generated parts, with this file's own unit table), or is
// refused for the one reason that applies; any other string is refused with a
// TimeframeError (a 400 naming the grammar) and nothing else is ever thrown.

const UNITS = { m: [60, 'minute'], h: [3600, 'hour'], d: [86400, 'day'], w: [604800, 'week'], M: [2592000, 'month'], y: [31536000, 'year'] } as const;
type Unit = keyof typeof UNITS;
const UNIT_LETTERS = Object.keys(UNITS) as Unit[];
const HUNDRED_YEARS = 100 * 31536000;

const label = (n: number, u: Unit) => `${n} ${UNITS[u][1]}${n === 1 ? '' : 's'}`;

/** What `t` must give: the frame, or the words its refusal must contain. */
function expected(dn: number, du: Unit, iN: number, iu: Unit, maxPoints: number): Timeframe | string {
  const durationSec = dn * UNITS[du][0];
  const intervalSec = iN * UNITS[iu][0];
  if (durationSec > HUNDRED_YEARS) return 'longer than 100 years';
  if (intervalSec > durationSec) return 'interval is longer than the duration';
  const points = Math.ceil(durationSec / intervalSec);
  if (points > maxPoints) return `it asks for ${points} points, more than ${maxPoints}`;
  return { durationSec, intervalSec, points, label: `${label(dn, du)} @ ${label(iN, iu)}` };
}

/** A count as the grammar allows it (1..999999, no leading zero), mostly small. */
function count(d: Draw): number {
  switch (d.int(4)) {
    case 0:
      return 1;
    case 1:
      return 1 + d.int(60);
    case 2:
      return 1 + d.int(1000);
    default:
      return 1 + d.int(999_999);
  }
}

function refusal(run: () => unknown): TimeframeError | undefined {
  try {
    run();
    return undefined;
  } catch (err) {
    if (!(err instanceof TimeframeError)) throw err;
    return err;
  }
}

describe('timeframe grammar fuzz', () => {
  it(
    'parses every t the grammar produces to exactly its frame, or refuses it for the one reason that applies',
    () => {
      const frame = drawn((d) => {
        const dn = count(d);
        const du = d.pick(UNIT_LETTERS);
        // Intervals near the duration's size, so frames within the point limit are common.
        const iu = d.chance(0.7) ? d.pick(UNIT_LETTERS.slice(0, UNIT_LETTERS.indexOf(du) + 1)) : d.pick(UNIT_LETTERS);
        const iN = count(d);
        const maxPoints = d.chance(0.8) ? MAX_POINTS_PER_SERIES : 1 + d.int(20_000);
        return { t: `${dn}${du}${iN}${iu}`, maxPoints, want: expected(dn, du, iN, iu, maxPoints) };
      });
      let accepted = 0;
      withoutStacks(() =>
        fc.assert(
          fc.property(frame, ({ t, maxPoints, want }) => {
            if (typeof want === 'string') {
              const err = refusal(() => parseTimeframe(t, maxPoints));
              if (!err || !err.message.includes(want)) expect(err?.message).toContain(want);
              return;
            }
            accepted++;
            const got = parseTimeframe(t, maxPoints);
            if (!sameData(got, want)) expect(got).toEqual(want);
          }),
          fuzzParams(),
        ),
      );
      // The generator must reach the accepting side often, or the property says little.
      expect(accepted).toBeGreaterThan(fuzzParams().numRuns / 10);
    },
    fuzzTimeout(),
  );

  it(
    'refuses any other string with a TimeframeError naming the grammar, and never throws anything else',
    () => {
      const pieces = ['0', '1', '2', '9', '00', '01', '999999', '1000000', '-1', '+1', '1.5', ' ', 'm', 'h', 'd', 'w', 'M', 'y', 'W', 'H', 's', 'mo', '@', '١', '１', '\u0000', 'e3', 'Infinity'];
      const input = drawn((d) => {
        if (d.chance(0.2)) return d.text('', 0, 12);
        let t = '';
        for (let n = d.int(7); n > 0; n--) t += d.chance(0.85) ? d.pick(pieces) : d.text('', 1, 2);
        return t;
      });
      const grammar = /^([1-9][0-9]{0,5})([mhdwMy])([1-9][0-9]{0,5})([mhdwMy])$/;
      withoutStacks(() =>
        fc.assert(
          fc.property(input, fc.option(fc.integer({ min: 1, max: 20_000 }), { nil: undefined }), (t, maxPoints) => {
            const m = grammar.exec(t);
            const want = m ? expected(Number(m[1]), m[2] as Unit, Number(m[3]), m[4] as Unit, maxPoints ?? MAX_POINTS_PER_SERIES) : 'does not match';
            if (t === '') {
              const err = refusal(() => parseTimeframe(t, maxPoints));
              if (!err?.message.includes('it is empty')) expect(err?.message).toContain('it is empty');
              return;
            }
            if (typeof want === 'string') {
              const err = refusal(() => parseTimeframe(t, maxPoints));
              if (!err) throw new Error(`${JSON.stringify(t)} was accepted; want a refusal: ${want}`);
              if (!err.message.includes(want) || !err.message.includes('t = <duration><interval>') || err.code !== 'invalid_timeframe') expect(err.message).toContain(want);
              return;
            }
            const got = parseTimeframe(t, maxPoints);
            if (!sameData(got, want)) expect(got).toEqual(want);
          }),
          fuzzParams(),
        ),
      );
    },
    fuzzTimeout(),
  );

  it(
    'gives every embed tf, known or not, a frame (never an error in someone else’s page)',
    () => {
      const known = Object.keys(EMBED_TIMEFRAMES);
      fc.assert(
        fc.property(fc.oneof(fc.constantFrom(...known, 'Week', 'day_compare ', '__proto__', 'constructor', 'toString', 'hasOwnProperty'), fc.string({ maxLength: 12 })), (tf) => {
          const f = embedTimeframe(tf);
          const name = known.includes(tf) ? tf : 'week';
          if (f.name !== name || f.durationSec !== EMBED_TIMEFRAMES[name as keyof typeof EMBED_TIMEFRAMES].durationSec) expect(f).toMatchObject({ name });
        }),
        fuzzParams(),
      );
    },
    fuzzTimeout(),
  );
});
