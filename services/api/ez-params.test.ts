import { describe, expect, it } from 'vitest';
import { expandStatName, parseEzParams } from './ez-params.js';

const parse = (q: string) => parseEzParams(new URLSearchParams(q));

describe('parseEzParams', () => {
  it('reads a count, a value, t and vb', () => {
    expect(parse('ezkey=k&stat=page+views&count=1')).toEqual({ ezkey: 'k', stats: ['page views'], kind: 'count', number: 1, t: 0, verbose: false });
    expect(parse('ezkey=k&stat=load&value=0.25&t=1700000000&vb=1')).toMatchObject({ kind: 'value', number: 0.25, t: 1700000000, verbose: true });
    expect(parse('ezkey=k&stat=x&count=2.5')).toMatchObject({ number: 2.5 });
  });

  it.each([
    ['stat=x&count=1', 'ezkey is required'],
    ['ezkey=k&count=1', 'stat is required'],
    ['ezkey=k&stat=x', 'count or value is required'],
    ['ezkey=k&stat=x&count=1&value=2', 'give count or value, not both'],
    ['ezkey=k&stat=x&count=abc', 'count must be a number'],
    ['ezkey=k&stat=x&value=NaN', 'value must be a number'],
    ['ezkey=k&stat=x&value=1e999', 'value is out of range'],
    ['ezkey=k&stat=x&count=1&t=yesterday', 't must be a unix time'],
    [`ezkey=k&stat=${'a'.repeat(256)}&count=1`, 'stat is longer than 255 characters'],
  ])('refuses %s', (q, msg) => {
    expect(() => parse(q)).toThrow(msg);
  });

  it('expands prefix~a,b,c', () => {
    expect(expandStatName('api~hits,misses, errors')).toEqual(['api hits', 'api misses', 'api errors']);
    expect(expandStatName('plain')).toEqual(['plain']);
  });
});
