import { describe, expect, it } from 'vitest';
import { stageRows, type RollupRow } from './flusher.js';

function row(statId: number, bucket: number, value: number, lastTime = bucket * 1000): RollupRow {
  return { statId, bucket, count: 1, sum: value, min: value, max: value, sumsq: value * value, lastValue: value, lastTime, format: 0, sketch: null };
}

describe('stageRows', () => {
  it('stages each minute once with the tables it goes to as it is, and a merged row per shared hour or day', () => {
    const day = 86400 * 20000;
    const minutes = [
      row(1, day + 60, 5), // alone in its hour and day: all three tables
      row(2, day + 60, 1), // shares its hour (and day) with the next
      row(2, day + 120, 3),
      row(2, day + 7200, 10), // another hour of the same day: alone in the hour, not in the day
      row(3, day + 86400 - 60, 7), // alone: 1m, 1h, 1d
    ];
    const { rows, levels, perTable } = stageRows(minutes);
    expect(rows.slice(0, 5)).toEqual(minutes);
    expect(levels.slice(0, 5)).toEqual([7, 1, 1, 3, 7]);
    // merged: stat 2's first hour, then stat 2's day
    expect(levels.slice(5)).toEqual([2, 4]);
    expect(rows[5]).toMatchObject({ statId: 2, bucket: day, count: 2, sum: 4, min: 1, max: 3, sumsq: 10, lastValue: 3, lastTime: (day + 120) * 1000 });
    expect(rows[6]).toMatchObject({ statId: 2, bucket: day, count: 3, sum: 14, min: 1, max: 10, sumsq: 110, lastValue: 10, lastTime: (day + 7200) * 1000 });
    expect(perTable).toEqual([5, 4, 3]);
    // the minute rows themselves are not changed by the merge
    expect(minutes[1]).toMatchObject({ count: 1, sum: 1, bucket: day + 60 });
  });

  it('breaks a tie in last time by the larger value, as the upsert does', () => {
    const { rows } = stageRows([row(9, 3600, 4, 5000), row(9, 3660, 2, 5000)]);
    expect(rows[2]).toMatchObject({ bucket: 3600, lastValue: 4 });
  });
});
