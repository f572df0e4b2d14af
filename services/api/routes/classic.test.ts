import { describe, expect, it } from 'vitest';
import { parseClassicParams } from './classic.js';

const parse = (q: string, kind: 'count' | 'value') => parseClassicParams(new URLSearchParams(q), kind);

describe('parseClassicParams', () => {
  it('reads ukey, key, the number, t and vb', () => {
    expect(parse('ukey=U&key=K&count=2.5&t=1700000000&vb=1', 'count')).toEqual({ ukey: 'U', key: 'K', number: 2.5, t: 1700000000, verbose: true });
    expect(parse('ukey=U&key=K&value=-3', 'value')).toEqual({ ukey: 'U', key: 'K', number: -3, t: 0, verbose: false });
    expect(parse('ukey=U&key=K&value=7', 'count')).toMatchObject({ number: 7 });
  });

  it.each([
    ['key=K&count=1', 'count', 'ukey is required'],
    ['ukey=&key=K&count=1', 'count', 'ukey is required'],
    ['ukey=U&count=1', 'count', 'key is required'],
    ['ukey=U&key=K', 'count', 'count is required'],
    ['ukey=U&key=K&count=1', 'value', 'value is required'],
    ['ukey=U&key=K&count=1&value=2', 'count', 'give count or value, not both'],
    ['ukey=U&key=K&count=0x10', 'count', 'count must be a number'],
    ['ukey=U&key=K&value=abc', 'count', 'value must be a number'],
    ['ukey=U&key=K&value=Infinity', 'value', 'value must be a number'],
    ['ukey=U&key=K&value=1&t=-1', 'value', 't must be a unix time'],
  ] as const)('refuses %s on %s', (q, kind, msg) => {
    expect(() => parse(q, kind)).toThrow(msg);
  });
});
