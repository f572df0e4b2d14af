import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { OspreyError } from '../kit/errors.js';
import { Draw, drawn, fuzzParams, fuzzTimeout, sameData, withoutStacks } from '../kit/testing/fuzz.js';
import { MAX_BATCH_POINTS, parseEzJson, type EzBatch, type EzBatchItem } from './ez-json.js';
import { MAX_STAT_NAME, parseEzParams, type EzPoint } from './ez-params.js';
import { formParams, queryOf } from './routes/http-io.js';

// Fuzzing the /ez parsers (issue 7, item 3): the form/query parser and the JSON batch
// parser. Good requests are generated from StatHat's grammar with what each must parse to
// computed from the generated parts (not from the string); arbitrary input must either
// parse to something well-formed or be refused as `invalid` (a 400) or `too_large` (a 413),
// and nothing else may be thrown. `npm run fuzz` runs them longer (FUZZ_RUNS).

// ---- the grammar's parts ------------------------------------------------------------
//
// Inputs are built by a deterministic builder from a seed and a character pool (Draw, in
// kit/testing/fuzz.ts, says why); the expected result is built from the same choices.

/** Whitespace String.prototype.trim removes, as clients pad names with it. */
const PADS = ['', '', '', ' ', '\t', '\u00a0', '\u3000', '\ufeff', '  '];
const pad = (d: Draw) => d.pick(PADS);

/** A name as it is stored: no `~` (nor `forbidden`), nothing to trim, 1..40 characters. */
function storedName(d: Draw, forbidden = ''): string {
  const n = d.text(`~${forbidden}`, 1, 40).trim();
  return n.length > 0 ? n : 'n';
}

/** `stat` as sent, and the names it posts to: a plain name, or StatHat's `prefix~a,b,c`. */
function statField(d: Draw): { raw: string; names: string[] } {
  if (d.chance(0.6)) {
    const n = storedName(d);
    return { raw: pad(d) + n + pad(d), names: [n] };
  }
  const prefix = d.chance(0.8) ? storedName(d, ',') : '';
  const parts = Array.from({ length: (prefix ? 0 : 1) + d.int(4) }, () => storedName(d, ','));
  // Empty parts (`a~x,,y`) are skipped.
  const rendered = parts.map((n) => pad(d) + n + pad(d));
  for (let e = d.int(3); e > 0; e--) rendered.splice(d.int(rendered.length + 1), 0, pad(d));
  const names = parts.length > 0 ? parts.map((n) => (prefix ? `${prefix} ${n}` : n)) : [prefix];
  return { raw: `${pad(d)}${prefix}${pad(d)}~${rendered.join(',')}`, names };
}

/** A number as StatHat clients write it (maybe padded with spaces), and its value. */
function numberField(d: Draw): { raw: string; value: number } {
  const text = d.decimal(['', '', '+', '-']);
  const space = d.chance(0.1) ? ' ' : '';
  return { raw: space + text + space, value: Number(text) };
}

/** `t` as sent (unix seconds, maybe zero-padded, maybe empty) and its value. */
function timeField(d: Draw): { raw: string; value: number } {
  if (d.chance(0.1)) return { raw: '', value: 0 };
  const t = d.chance(0.5) ? 1_700_000_000 + d.int(100_000_000) : d.int(2 ** 32);
  return { raw: String(t).padStart(d.int(11), '0'), value: t };
}

/** Anything a client might put in a field, including what URLSearchParams decodes oddly. */
function junk(d: Draw): string {
  let s = '';
  for (let n = d.int(6); n > 0; n--) s += d.chance(0.5) ? d.text('', 1, 6) : d.pick(['%', '%2', '%zz', '%41', '&', '=', '+', '~', ',', '.', 'e', 'E', '-', '0', '9', 'NaN', 'Infinity', '0x', '1e999', ' ']);
  return s;
}

/** Throws OspreyError of an allowed kind, or returns. Anything else escaping fails the property. */
function refusedAs(run: () => void, kinds: readonly string[]): string | undefined {
  try {
    run();
    return undefined;
  } catch (err) {
    if (!(err instanceof OspreyError) || !kinds.includes(err.kind)) throw err;
    return err.kind;
  }
}

function checkPoint(p: EzPoint): void {
  if (!p.ezkey || p.stats.length === 0 || !(p.kind === 'count' || p.kind === 'value') || !Number.isFinite(p.number) || !Number.isInteger(p.t) || p.t < 0 || p.t > 0xffffffff) {
    throw new Error(`malformed ${JSON.stringify(p)}`);
  }
  for (const s of p.stats) if (s.length === 0 || s.length > MAX_STAT_NAME || s !== s.trim()) throw new Error(`bad stat name ${JSON.stringify(s)}`);
}

const FIELDS = ['ezkey', 'email', 'stat', 'count', 'value', 't', 'vb', 'x'];

describe('/ez form and query parser fuzz', () => {
  it(
    'parses every generated request, form or query, to exactly what was generated',
    () => {
      const request = drawn((d) => {
        const key = d.text('', 1, 30);
        const stat = statField(d);
        const kind = d.pick(['count', 'value'] as const);
        const number = numberField(d);
        const t = d.chance(0.4) ? timeField(d) : undefined;
        const vb = d.chance(0.4) ? d.pick(['1', '0', 'true', '']) : undefined;
        const fields: [string, string][] = [[d.chance(0.2) ? 'email' : 'ezkey', key], ['stat', stat.raw], [kind, number.raw]];
        if (t !== undefined) fields.push(['t', t.raw]);
        if (vb !== undefined) fields.push(['vb', vb]);
        for (let n = d.int(3); n > 0; n--) fields.push([d.pick(['foo', 'vbx', 'Stat', 'COUNT', '_', 'ezkey2']), junk(d)]);
        for (let k = fields.length - 1; k > 0; k--) {
          const j = d.int(k + 1);
          [fields[k], fields[j]] = [fields[j], fields[k]];
        }
        // Later copies of a field are ignored: the first one wins.
        const dupes = Array.from({ length: d.int(3) }, (): [string, string] => [d.pick(fields)[0], junk(d)]);
        const via = d.pick(['query', 'form', 'both'] as const);
        const cut = d.int(fields.length + 1);
        const want: EzPoint = { ezkey: key, stats: stat.names, kind, number: number.value, t: t?.value ?? 0, verbose: vb === '1' };
        return { fields, dupes, via, cut, want };
      });
      withoutStacks(() =>
        fc.assert(
          fc.property(request, ({ fields, dupes, via, cut, want }) => {
            let params;
            if (via === 'query') params = queryOf(`/ez?${new URLSearchParams([...fields, ...dupes])}`);
            else if (via === 'form') params = formParams(new URLSearchParams([...fields, ...dupes]).toString(), queryOf('/ez'));
            // Some fields in the body, the rest in the query: the body's win, so the copies go in the query.
            else params = formParams(new URLSearchParams(fields.slice(0, cut)).toString(), queryOf(`/ez?${new URLSearchParams([...fields.slice(cut), ...dupes])}`));
            const got = parseEzParams(params);
            if (!sameData(got, want)) expect(got).toEqual(want);
          }),
          fuzzParams(),
        ),
      );
    },
    fuzzTimeout(),
  );

  it(
    'answers any query or form with a well-formed point or a 400, never anything else',
    () => {
      const raw = (d: Draw): string => {
        const fields = Array.from({ length: d.int(5) }, () => {
          const k = d.chance(0.8) ? d.pick(FIELDS) : junk(d);
          const v = d.pick([junk, (x: Draw) => numberField(x).raw, (x: Draw) => statField(x).raw, (x: Draw) => timeField(x).raw])(d);
          return [k, v] as [string, string];
        });
        // Encoded properly, or raw as a careless client sends it (stray %, &, =, unencoded bytes).
        return d.chance(0.5) ? new URLSearchParams(fields).toString() : fields.map(([k, v]) => `${k}=${v}`).join('&');
      };
      withoutStacks(() =>
        fc.assert(
          fc.property(
            drawn((d) => [raw(d), raw(d)]),
            ([body, query]) => {
              refusedAs(() => checkPoint(parseEzParams(queryOf(`/ez?${query}`))), ['invalid']);
              refusedAs(() => checkPoint(parseEzParams(formParams(body, queryOf(`/ez?${query}`)))), ['invalid']);
            },
          ),
          fuzzParams(),
        ),
      );
    },
    fuzzTimeout(),
  );
});

// ---- JSON batches ---------------------------------------------------------------------

/** A valid item of `data`, and what it must parse to. */
function goodItem(d: Draw): { json: Record<string, unknown>; item: Omit<EzBatchItem, 'index'> } {
  const stat = statField(d);
  const kind = d.pick(['count', 'value'] as const);
  let number: { json: number | string; value: number };
  if (d.chance(0.5)) {
    const n = Number(d.decimal(['', '-']));
    number = { json: n, value: n + 0 }; // JSON has no -0
  } else {
    const n = numberField(d); // a number in a string, as some clients send
    number = { json: n.raw, value: n.value };
  }
  const json: Record<string, unknown> = { stat: stat.raw, [kind]: number.json };
  // The other field given as null counts as absent.
  if (d.chance(0.2)) json[kind === 'count' ? 'value' : 'count'] = null;
  let t = 0;
  if (d.chance(0.4)) {
    const f = timeField(d);
    const form = d.int(3);
    json.t = form === 0 ? f.value : form === 1 ? f.raw : null;
    t = form === 2 ? 0 : f.value;
  }
  if (d.chance(0.1)) json.note = d.pick([null, 1, 'x', [1, { a: 2 }], { stat: 'inner' }]);
  return { json, item: { stats: stat.names, kind, number: number.value, t } };
}

/** An item that must be refused, and the message naming why. */
function badItem(d: Draw): { json: unknown; msg: string } {
  const cases: (() => { json: unknown; msg: string })[] = [
    () => ({ json: d.pick([null, 1, 'x', true, [], [{ stat: 'x', count: 1 }]]), msg: 'must be an object with stat and count or value' }),
    () => ({ json: d.pick<unknown>([{ count: 1 }, { stat: '', count: 1 }, { stat: ' \t', value: 1 }, { stat: 5, count: 1 }, { stat: null, count: 1 }]), msg: 'stat is required' }),
    () => ({ json: d.pick<unknown>([{ stat: 'x' }, { stat: 'x', count: null }, { stat: 'x', t: 1 }]), msg: 'count or value is required' }),
    () => ({ json: d.pick<unknown>([{ stat: 'x', count: 1, value: 2 }, { stat: 'x', count: '1', value: 0 }]), msg: 'give count or value, not both' }),
    () => {
      const v = d.pick(['abc', '', '1e', '0x10', 'NaN', '1,5', 'Infinity']);
      return { json: { stat: 'x', count: v }, msg: `count must be a number, got ${JSON.stringify(v)}` };
    },
    () => ({ json: { stat: 'x', value: d.pick<unknown>([true, {}, [1]]) }, msg: 'value must be a number' }),
    () => {
      const t = d.pick([-1, 1.5, -0.5]);
      return { json: { stat: 'x', count: 1, t }, msg: `t must be a unix time in seconds, got ${t}` };
    },
    () => ({ json: { stat: 'x', count: 1, t: 2 ** 32 + d.int(1000) }, msg: 't is out of range' }),
    () => {
      const t = d.pick(['now', '-1', '1.5', '12345678901']);
      return { json: { stat: 'x', count: 1, t }, msg: `t must be a unix time in seconds, got ${JSON.stringify(t)}` };
    },
    () => ({ json: { stat: 'n'.repeat(MAX_STAT_NAME + 1 + d.int(10)), count: 1 }, msg: `stat is longer than ${MAX_STAT_NAME} characters` }),
  ];
  return d.pick(cases)();
}

/** Some JSON value, of any shape. */
function anyJson(d: Draw, depth = 0): unknown {
  switch (d.int(depth > 1 ? 5 : 7)) {
    case 0:
      return null;
    case 1:
      return d.chance(0.5);
    case 2:
      return Number(d.decimal(['', '-']));
    case 3:
      return d.text('', 0, 8);
    case 4:
      return d.pick(['1', 'ezkey', 'data', '']);
    case 5:
      return Array.from({ length: d.int(4) }, () => anyJson(d, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: d.int(4) }, () => [d.pick(['stat', 'count', 'value', 't', 'ezkey', 'data', 'vb', d.text('', 0, 4)]), anyJson(d, depth + 1)]));
  }
}

function checkBatch(b: EzBatch): void {
  if (typeof b.ezkey !== 'string' || b.ezkey === '' || b.size > MAX_BATCH_POINTS) throw new Error(`malformed batch ${JSON.stringify(b).slice(0, 200)}`);
  // Every item of `data` is either taken or refused, once, in order.
  const seen = [...b.items.map((i) => i.index), ...b.errors.map((e) => e.index)].sort((x, y) => x - y);
  if (seen.length !== b.size || seen.some((x, i) => x !== i)) throw new Error(`items and errors do not partition data: ${JSON.stringify(seen)}`);
  for (const it of b.items) checkPoint({ ezkey: b.ezkey, stats: it.stats, kind: it.kind, number: it.number, t: it.t, verbose: false });
}

describe('/ez JSON batch parser fuzz', () => {
  it(
    'parses every generated batch to exactly its items, and reports each bad item by index with its reason',
    () => {
      const batch = drawn((d) => {
        const key = d.text('', 1, 30);
        const data = Array.from({ length: d.int(7) }, () => (d.chance(0.8) ? goodItem(d) : badItem(d)));
        const doc: Record<string, unknown> = { data: data.map((x) => x.json) };
        const query = new URLSearchParams();
        const keyField = d.pick(['ezkey', 'email', 'query']);
        if (keyField === 'query') query.set('ezkey', key);
        else doc[keyField] = key;
        let verbose = false;
        if (d.chance(0.5)) {
          const [v, means] = d.pick<[unknown, boolean]>([[1, true], ['1', true], [true, true], [0, false], ['yes', false], [null, false]]);
          if (d.chance(0.5)) {
            query.set('vb', String(v));
            verbose = String(v) === '1';
          } else {
            doc.vb = v;
            verbose = means;
          }
        }
        const items: EzBatchItem[] = [];
        const errors: { index: number; msg: string }[] = [];
        data.forEach((x, index) => {
          if ('item' in x) items.push({ index, ...x.item });
          else errors.push({ index, msg: `data[${index}]: ${x.msg}` });
        });
        const text = JSON.stringify(doc, null, d.pick([undefined, 0, 2, '\t']));
        return { text, query, want: { ezkey: key, verbose, size: data.length, items, errors } };
      });
      withoutStacks(() =>
        fc.assert(
          fc.property(batch, ({ text, query, want }) => {
            const got = parseEzJson(text, query);
            if (!sameData(got, want)) expect(got).toEqual(want);
          }),
          fuzzParams(),
        ),
      );
    },
    fuzzTimeout(),
  );

  it(
    'answers any body with a well-formed batch, a 400 or a 413, never anything else',
    () => {
      const body = drawn((d) => {
        let text: string;
        switch (d.int(4)) {
          case 0: {
            const doc: Record<string, unknown> = {};
            if (d.chance(0.8)) doc.ezkey = d.chance(0.8) ? d.text('', 0, 10) : anyJson(d);
            if (d.chance(0.8)) doc.data = d.chance(0.8) ? Array.from({ length: d.int(8) }, () => d.pick([() => goodItem(d).json, () => badItem(d).json, () => anyJson(d)])()) : anyJson(d);
            if (d.chance(0.3)) doc.vb = anyJson(d);
            text = JSON.stringify(doc);
            break;
          }
          case 1:
            text = JSON.stringify(anyJson(d)) ?? '';
            break;
          case 2: {
            // Broken JSON: a valid document cut short, with junk after.
            const s = JSON.stringify({ ezkey: 'k', data: [goodItem(d).json] });
            text = s.slice(0, d.int(s.length + 1)) + (d.chance(0.5) ? junk(d) : '');
            break;
          }
          default:
            text = junk(d);
        }
        return { text, query: junk(d) };
      });
      withoutStacks(() =>
        fc.assert(
          fc.property(body, ({ text, query }) => {
            refusedAs(() => checkBatch(parseEzJson(text, queryOf(`/ez?${query}`))), ['invalid', 'too_large']);
          }),
          fuzzParams(),
        ),
      );
    },
    fuzzTimeout(),
  );

  it('refuses more than 1,000 items with too_large, and takes exactly 1,000', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1100 }), (n) => {
        const body = JSON.stringify({ ezkey: 'k', data: Array.from({ length: n }, (_, i) => ({ stat: `s${i}`, count: 1 })) });
        const kind = refusedAs(() => checkBatch(parseEzJson(body)), ['too_large']);
        expect(kind).toBe(n > MAX_BATCH_POINTS ? 'too_large' : undefined);
      }),
      { numRuns: 200 },
    );
  });
});
