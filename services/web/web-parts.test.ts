import { describe, expect, it } from 'vitest';
import { TIMEFRAME_GRAMMAR } from '../graphing/timeframe.js';
import { hashPassword, verifyPassword } from './auth/passwords.js';
import { checkEmbedSignature, embedPath, embedSignature } from './embed-sign.js';
import { resolveRange } from './ranges.js';
import { comparedIds } from './routes/analyze.js';
import { parseEmbedPath } from './routes/embed.js';

const NOW = 1_700_000_123_456;
const now = Math.floor(NOW / 1000);

describe('resolveRange', () => {
  it('reads a page frame, with the frame\'s comparison when asked', () => {
    expect(resolveRange({ tf: '1w' }, NOW)).toMatchObject({ from: now - 7 * 86_400, to: now, compareOffsetSec: 0 });
    expect(resolveRange({ tf: '1h', compare: '1' }, NOW).compareOffsetSec).toBe(86_400);
    expect(resolveRange({ tf: '1M', compare: 'week' }, NOW).compareOffsetSec).toBe(7 * 86_400);
    expect(resolveRange({}, NOW)).toMatchObject({ from: now - 86_400, to: now });
  });

  it('reads StatHat\'s t, ending at an interval boundary, or from start', () => {
    const r = resolveRange({ t: '1d1h' }, NOW);
    expect(r.to % 3600).toBe(0);
    expect(r.to - r.from).toBe(86_400);
    expect(r.to).toBeGreaterThanOrEqual(now);
    expect(r.stepSec).toBe(3600);
    expect(r.timeframe!.label).toBe('1 day @ 1 hour');
    expect(resolveRange({ t: '30m1m', from: 1000 }, NOW)).toMatchObject({ from: 1000, to: 1000 + 1800, stepSec: 60 });
  });

  it('refuses a malformed t with the grammar, an unknown tf and an empty range', () => {
    expect(() => resolveRange({ t: '1w' }, NOW)).toThrow(TIMEFRAME_GRAMMAR);
    expect(() => resolveRange({ tf: '2d' }, NOW)).toThrow('tf must be one of 1h, 1d, 1w, 1M, 3M, 1y');
    expect(() => resolveRange({ from: 10, to: 10 }, NOW)).toThrow('from must be before to');
    expect(() => resolveRange({ tf: '1d', compare: 'fortnight' }, NOW)).toThrow('compare must be');
  });
});

describe('embeds', () => {
  it('parses ids and the format from the path', () => {
    expect(parseEmbedPath('12', undefined)).toEqual({ ids: [12], format: 'svg' });
    expect(parseEmbedPath('12/13.png', undefined)).toEqual({ ids: [12, 13], format: 'png' });
    expect(parseEmbedPath('1/2/3', 'html')).toEqual({ ids: [1, 2, 3], format: 'html' });
    for (const bad of ['', '1/2/3/4', 'abc', '0', '1/../2', '01']) expect(() => parseEmbedPath(bad, undefined)).toThrow('no such graph');
  });

  it('signs exactly the ids of the URL', () => {
    const sig = embedSignature('secret-0123456789', [1, 2]);
    expect(checkEmbedSignature('secret-0123456789', [1, 2], sig)).toBe(true);
    expect(checkEmbedSignature('secret-0123456789', [2, 1], sig)).toBe(false);
    expect(checkEmbedSignature('secret-0123456789', [1], sig)).toBe(false);
    expect(checkEmbedSignature('other-secret-0123', [1, 2], sig)).toBe(false);
    expect(checkEmbedSignature('secret-0123456789', [1, 2], undefined)).toBe(false);
    expect(embedPath('s', [7], { anyPrivate: false, tf: 'day' })).toBe('/embed/graph/7.svg?tf=day');
    expect(embedPath('s', [7], { anyPrivate: true, format: 'png' })).toBe(`/embed/graph/7.png?sig=${embedSignature('s', [7])}`);
  });
});

it('takes up to three distinct stat ids for a comparison', () => {
  expect(comparedIds(['3', '', '1,3', '2', '4'])).toEqual([3, 1, 2]);
  expect(() => comparedIds(['x'])).toThrow('no stat');
});

it('hashes passwords with scrypt and checks them', async () => {
  const h = await hashPassword('hunter2 hunter2');
  expect(h).toMatch(/^scrypt\$32768\$8\$1\$[\w-]{22}\$[\w-]{43}$/);
  expect(await verifyPassword('hunter2 hunter2', h)).toBe(true);
  expect(await verifyPassword('hunter3 hunter3', h)).toBe(false);
  expect(await verifyPassword('x', 'garbage')).toBe(false);
});
