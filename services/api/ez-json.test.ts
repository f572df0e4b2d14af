import { describe, expect, it } from 'vitest';
import { MAX_BATCH_POINTS, parseEzJson } from './ez-json.js';

const body = (doc: unknown) => JSON.stringify(doc);

describe('parseEzJson', () => {
  it('reads counts, values, t, prefix~a,b and vb', () => {
    const b = parseEzJson(body({ ezkey: 'k', vb: 1, data: [{ stat: 'hits', count: 2 }, { stat: 'load', value: 0.5, t: 1700000000 }, { stat: 'api~a, b', count: '3' }] }));
    expect(b).toEqual({
      ezkey: 'k',
      verbose: true,
      size: 3,
      errors: [],
      items: [
        { index: 0, stats: ['hits'], kind: 'count', number: 2, t: 0 },
        { index: 1, stats: ['load'], kind: 'value', number: 0.5, t: 1700000000 },
        { index: 2, stats: ['api a', 'api b'], kind: 'count', number: 3, t: 0 },
      ],
    });
  });

  it('takes vb and ezkey from the query string', () => {
    const b = parseEzJson(body({ data: [] }), new URLSearchParams('ezkey=q&vb=1'));
    expect([b.ezkey, b.verbose, b.size]).toEqual(['q', true, 0]);
  });

  it.each([
    ['not json', 'body is not valid JSON'],
    ['[1,2]', 'body must be a JSON object'],
    [body({ data: [] }), 'ezkey is required'],
    [body({ ezkey: '', data: [] }), 'ezkey is required'],
    [body({ ezkey: 'k' }), 'data must be a list'],
    [body({ ezkey: 'k', data: { stat: 'x' } }), 'data must be a list'],
  ])('refuses the envelope %s', (raw, msg) => {
    expect(() => parseEzJson(raw)).toThrow(msg);
  });

  it(`answers too_large beyond ${MAX_BATCH_POINTS} points, and takes exactly ${MAX_BATCH_POINTS}`, () => {
    const data = (n: number) => Array.from({ length: n }, () => ({ stat: 's', count: 1 }));
    expect(parseEzJson(body({ ezkey: 'k', data: data(MAX_BATCH_POINTS) })).items).toHaveLength(MAX_BATCH_POINTS);
    try {
      parseEzJson(body({ ezkey: 'k', data: data(MAX_BATCH_POINTS + 1) }));
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ kind: 'too_large', message: `at most ${MAX_BATCH_POINTS} points per request, got ${MAX_BATCH_POINTS + 1}` });
    }
  });

  it('reports each bad item by index and keeps the good ones', () => {
    const b = parseEzJson(
      // 1e999 is written into the text: JSON.parse reads it as Infinity.
      body({
        ezkey: 'k',
        data: [
          { stat: 'ok', count: 1 },
          null,
          { count: 1 },
          { stat: '  ', count: 1 },
          { stat: 'x' },
          { stat: 'x', count: 1, value: 2 },
          { stat: 'x', count: 'abc' },
          { stat: 'x', value: true },
          { stat: 'x', count: 1, t: -5 },
          { stat: 'x', count: 1, t: 1.5 },
          { stat: 'x', count: 1, t: 'yesterday' },
          { stat: 'a'.repeat(256), count: 1 },
          { stat: 'x', value: 'HUGE' },
          { stat: 'last', value: -1.5e3 },
        ],
      }).replace('"HUGE"', '1e999'),
    );
    expect(b.items.map((i) => i.index)).toEqual([0, 13]);
    expect(b.errors).toEqual([
      { index: 1, msg: 'data[1]: must be an object with stat and count or value' },
      { index: 2, msg: 'data[2]: stat is required' },
      { index: 3, msg: 'data[3]: stat is required' },
      { index: 4, msg: 'data[4]: count or value is required' },
      { index: 5, msg: 'data[5]: give count or value, not both' },
      { index: 6, msg: 'data[6]: count must be a number, got "abc"' },
      { index: 7, msg: 'data[7]: value must be a number' },
      { index: 8, msg: 'data[8]: t must be a unix time in seconds, got -5' },
      { index: 9, msg: 'data[9]: t must be a unix time in seconds, got 1.5' },
      { index: 10, msg: 'data[10]: t must be a unix time in seconds, got "yesterday"' },
      { index: 11, msg: 'data[11]: stat is longer than 255 characters' },
      { index: 12, msg: 'data[12]: value is out of range' },
    ]);
  });
});
