import { describe, expect, it } from 'vitest';
import { judge, percentChange } from './condition.js';
import { describeRule, parseStatHatAlertForm } from './rules.js';
import { rollupFor } from './window-figures.js';

describe('parseStatHatAlertForm', () => {
  it('reads a value alert as StatHat posts it', () => {
    expect(parseStatHatAlertForm({ stat_id: '7', kind: 'value', time_window: '1h', operator: 'greater than', threshold: '500' })).toEqual({
      statId: 7, kind: 'value', windowSec: 3600, operator: 'greater', threshold: 500, percentage: 0, deltaSec: 0,
    });
  });

  it('reads a delta alert with a percentage and a time delta', () => {
    expect(parseStatHatAlertForm({ stat_id: '7', kind: 'delta', time_window: '5m', operator: 'different+than', percentage: '20%', time_delta: '1w' })).toEqual({
      statId: 7, kind: 'delta', windowSec: 300, operator: 'different', threshold: 0, percentage: 20, deltaSec: 7 * 86400,
    });
  });

  it('reads a data alert and ignores fields it does not use', () => {
    expect(parseStatHatAlertForm({ stat_id: '3', kind: 'data', time_window: '1M', threshold: 'x' })).toMatchObject({ kind: 'data', windowSec: 30 * 86400, operator: undefined });
  });

  it('names the bad field', () => {
    expect(() => parseStatHatAlertForm({ stat_id: '1', kind: 'value', time_window: '2h', operator: 'greater than', threshold: '1' })).toThrow(/time_window must be one of 5m, 1h/);
    expect(() => parseStatHatAlertForm({ stat_id: '1', kind: 'value', time_window: '1h', operator: 'different than', threshold: '1' })).toThrow(/value alert takes operator/);
    expect(() => parseStatHatAlertForm({ stat_id: '1', kind: 'value', time_window: '1h', operator: 'less than' })).toThrow(/threshold is required/);
    expect(() => parseStatHatAlertForm({ stat_id: 'abc', kind: 'data', time_window: '1h' })).toThrow(/stat_id/);
    expect(() => parseStatHatAlertForm({ stat_id: '1', kind: 'delta', time_window: '1h', operator: 'less than', percentage: '5' })).toThrow(/time_delta is required/);
    expect(() => parseStatHatAlertForm({ stat_id: '1', kind: 'other', time_window: '1h' })).toThrow(/kind must be/);
  });

  it('describes rules in words', () => {
    expect(describeRule(parseStatHatAlertForm({ stat_id: '1', kind: 'value', time_window: '1h', operator: 'greater than', threshold: '500' }), 'hits', true)).toBe('hits: 1h sum greater than 500');
    expect(describeRule(parseStatHatAlertForm({ stat_id: '1', kind: 'data', time_window: '1d' }), 'hits', true)).toBe('hits: no data for 1d');
  });
});

describe('judge', () => {
  const value = parseStatHatAlertForm({ stat_id: '1', kind: 'value', time_window: '5m', operator: 'less than', threshold: '10' });
  const delta = parseStatHatAlertForm({ stat_id: '1', kind: 'delta', time_window: '5m', operator: 'less than', percentage: '50', time_delta: '1h' });
  const data = parseStatHatAlertForm({ stat_id: '1', kind: 'data', time_window: '5m' });

  it('compares the window with the threshold, and keeps the state when there is no value', () => {
    expect(judge(value, { value: 9, count: 3 }).firing).toBe(true);
    expect(judge(value, { value: 10, count: 3 }).firing).toBe(false);
    expect(judge(value, { value: undefined, count: 0 }).firing).toBeUndefined();
  });

  it('fires a "less than" delta on a fall of more than the percentage', () => {
    expect(judge(delta, { value: 40, count: 1 }, { value: 100, count: 1 })).toEqual({ firing: true, value: -60 });
    expect(judge(delta, { value: 60, count: 1 }, { value: 100, count: 1 }).firing).toBe(false);
    expect(judge(delta, { value: 200, count: 1 }, { value: 100, count: 1 }).firing).toBe(false);
    expect(judge({ ...delta, operator: 'different' }, { value: 200, count: 1 }, { value: 100, count: 1 }).firing).toBe(true);
  });

  it('fires a data alert only when nothing arrived', () => {
    expect(judge(data, { value: 0, count: 0 }).firing).toBe(true);
    expect(judge(data, { value: 0, count: 1 }).firing).toBe(false);
  });

  it('treats growth from zero as infinite', () => {
    expect(percentChange(0, 5)).toBe(Infinity);
    expect(percentChange(0, 0)).toBe(0);
    expect(percentChange(-10, -5)).toBe(50);
  });
});

describe('rollupFor', () => {
  it('reads minutes for short recent windows, hours and days for long or old ones', () => {
    expect(rollupFor(300, 300).table).toBe('rollups_1m');
    expect(rollupFor(86400, 86400).table).toBe('rollups_1m');
    expect(rollupFor(7 * 86400, 7 * 86400).table).toBe('rollups_1h');
    expect(rollupFor(3600, 366 * 86400).table).toBe('rollups_1h');
    expect(rollupFor(365 * 86400, 365 * 86400).table).toBe('rollups_1d');
    expect(rollupFor(3600, 800 * 86400).table).toBe('rollups_1d');
  });
});
