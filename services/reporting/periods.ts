// Report periods in UTC: a day, or an ISO week (Monday to Monday).
export type PeriodName = 'daily' | 'weekly';

export interface PeriodRange {
  period: PeriodName;
  /** Unix seconds, inclusive. */
  startSec: number;
  /** Unix seconds, exclusive. */
  endSec: number;
  /** The period before, for the change. */
  prevStartSec: number;
}

const DAY = 86400;

/** The last period that is complete at `nowMs`. */
export function lastCompletePeriod(period: PeriodName, nowMs: number): PeriodRange {
  const today = Math.floor(nowMs / 1000 / DAY);
  if (period === 'daily') {
    const endSec = today * DAY;
    return { period, startSec: endSec - DAY, endSec, prevStartSec: endSec - 2 * DAY };
  }
  // 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays.
  const monday = today - ((today + 3) % 7);
  const endSec = monday * DAY;
  return { period, startSec: endSec - 7 * DAY, endSec, prevStartSec: endSec - 14 * DAY };
}

/** "Monday 5 January 2026" or "week of 29 December 2025", for subjects. */
export function periodLabel(r: PeriodRange): string {
  const d = new Date(r.startSec * 1000);
  const day = d.toLocaleDateString('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'long', year: 'numeric' });
  if (r.period === 'daily') return `${d.toLocaleDateString('en-GB', { timeZone: 'UTC', weekday: 'long' })} ${day}`;
  return `week of ${day}`;
}
