// Time frames: StatHat's export grammar (`t=1w3h`), the embed frames (`tf=week_compare`)
// and the web page frames (1h ... 1y). Pure: no clock, no I/O.
//
// Month and year are fixed lengths, not calendar ones: a month is 30 days and a year is
// 365 days. A point series needs a constant step (`1y1M` must give evenly spaced points,
// and a comparison "one month earlier" must shift every point by the same amount so it
// lines up with the main series); calendar months would make both irregular. StatHat's
// documentation does not pin the lengths down; 30/365 is the usual convention.

export type TimeUnit = 'm' | 'h' | 'd' | 'w' | 'M' | 'y';

export const UNIT_SECONDS: Readonly<Record<TimeUnit, number>> = {
  m: 60,
  h: 3_600,
  d: 86_400,
  w: 7 * 86_400,
  M: 30 * 86_400,
  y: 365 * 86_400,
};

const UNIT_NAMES: Readonly<Record<TimeUnit, string>> = {
  m: 'minute',
  h: 'hour',
  d: 'day',
  w: 'week',
  M: 'month',
  y: 'year',
};

/** More points than this in one series is refused: it is a mistake or an attack, never a chart. */
export const MAX_POINTS_PER_SERIES = 10_000;
/** Nothing is older than the epoch; 100 years bounds the arithmetic well inside safe integers. */
export const MAX_DURATION_SEC = 100 * UNIT_SECONDS.y;

export const TIMEFRAME_GRAMMAR =
  't = <duration><interval>, each a positive whole number followed by a unit: ' +
  'm (minute), h (hour), d (day), w (week), M (month = 30 days), y (year = 365 days); ' +
  `the interval must not be longer than the duration, and at most ${MAX_POINTS_PER_SERIES} points ` +
  '(duration / interval). Examples: 1w3h (1 week @ 3 hours), 1d15m, 30m1m.';

/** A `t` that does not parse. The message names the problem and shows the grammar (for a 400). */
export class TimeframeError extends Error {
  override readonly name = 'TimeframeError';
  readonly code = 'invalid_timeframe' as const;
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`invalid timeframe ${JSON.stringify(input.slice(0, 40))}: ${reason}. ${TIMEFRAME_GRAMMAR}`);
  }
}

export interface Timeframe {
  durationSec: number;
  intervalSec: number;
  /** ceil(duration / interval): how many points the series has. */
  points: number;
  /** StatHat's spelling, e.g. "1 week @ 3 hours". */
  label: string;
}

// Up to 6 digits, no leading zero: a value that needs more is absurd for every unit, and
// refusing it here keeps parseInt exact.
const PART = '([1-9][0-9]{0,5})([mhdwMy])';
const TIMEFRAME_RE = new RegExp(`^${PART}${PART}$`);

function unitLabel(n: number, unit: TimeUnit): string {
  return `${n} ${UNIT_NAMES[unit]}${n === 1 ? '' : 's'}`;
}

export function parseTimeframe(t: string, maxPoints: number = MAX_POINTS_PER_SERIES): Timeframe {
  if (typeof t !== 'string' || t.length === 0) throw new TimeframeError(String(t ?? ''), 'it is empty');
  const m = TIMEFRAME_RE.exec(t);
  if (!m) throw new TimeframeError(t, 'it does not match <number><unit><number><unit>');
  const dn = Number(m[1]);
  const du = m[2] as TimeUnit;
  const iN = Number(m[3]);
  const iu = m[4] as TimeUnit;
  const durationSec = dn * UNIT_SECONDS[du];
  const intervalSec = iN * UNIT_SECONDS[iu];
  if (durationSec > MAX_DURATION_SEC) throw new TimeframeError(t, 'the duration is longer than 100 years');
  if (intervalSec > durationSec) throw new TimeframeError(t, 'the interval is longer than the duration');
  const points = Math.ceil(durationSec / intervalSec);
  if (points > maxPoints) {
    throw new TimeframeError(t, `it asks for ${points} points, more than ${maxPoints}`);
  }
  return { durationSec, intervalSec, points, label: `${unitLabel(dn, du)} @ ${unitLabel(iN, iu)}` };
}

/** A range ending now (or at a chosen end), and how far back its dashed comparison sits. */
export interface FrameRange {
  durationSec: number;
  compareOffsetSec?: number;
}

export const EMBED_TIMEFRAMES = {
  hour: { durationSec: UNIT_SECONDS.h },
  day: { durationSec: UNIT_SECONDS.d },
  week: { durationSec: UNIT_SECONDS.w },
  month: { durationSec: UNIT_SECONDS.M },
  year: { durationSec: UNIT_SECONDS.y },
  day_compare: { durationSec: UNIT_SECONDS.d, compareOffsetSec: UNIT_SECONDS.d },
  week_compare: { durationSec: UNIT_SECONDS.w, compareOffsetSec: UNIT_SECONDS.w },
} as const satisfies Record<string, FrameRange>;
export type EmbedTimeframeName = keyof typeof EMBED_TIMEFRAMES;
export const DEFAULT_EMBED_TIMEFRAME: EmbedTimeframeName = 'week';

/**
 * The embed `tf` parameter. Unknown or missing values fall back to the default rather than
 * failing: an embed sits in someone else's page or mail, where a broken image helps nobody.
 */
export function embedTimeframe(tf: string | undefined | null): FrameRange & { name: EmbedTimeframeName } {
  const name: EmbedTimeframeName =
    tf != null && Object.hasOwn(EMBED_TIMEFRAMES, tf) ? (tf as EmbedTimeframeName) : DEFAULT_EMBED_TIMEFRAME;
  return { name, ...EMBED_TIMEFRAMES[name] };
}

// The stat page's frames. Each carries the comparison the page draws dashed by default: the
// previous period of the same length, except the hour, which compares with the same hour a
// day earlier (the previous hour is the line's own neighbour; yesterday shows the daily cycle).
export const PAGE_TIMEFRAMES = {
  '1h': { durationSec: UNIT_SECONDS.h, compareOffsetSec: UNIT_SECONDS.d, label: '1 hour' },
  '1d': { durationSec: UNIT_SECONDS.d, compareOffsetSec: UNIT_SECONDS.d, label: '1 day' },
  '1w': { durationSec: UNIT_SECONDS.w, compareOffsetSec: UNIT_SECONDS.w, label: '1 week' },
  '1M': { durationSec: UNIT_SECONDS.M, compareOffsetSec: UNIT_SECONDS.M, label: '1 month' },
  '3M': { durationSec: 3 * UNIT_SECONDS.M, compareOffsetSec: 3 * UNIT_SECONDS.M, label: '3 months' },
  '1y': { durationSec: UNIT_SECONDS.y, compareOffsetSec: UNIT_SECONDS.y, label: '1 year' },
} as const satisfies Record<string, FrameRange & { label: string }>;
export type PageTimeframeName = keyof typeof PAGE_TIMEFRAMES;

export function isPageTimeframe(s: string): s is PageTimeframeName {
  return Object.hasOwn(PAGE_TIMEFRAMES, s);
}

/** Named comparison offsets ("one day/week/month earlier"), for the query API. */
export const COMPARE_OFFSETS = {
  day: UNIT_SECONDS.d,
  week: UNIT_SECONDS.w,
  month: UNIT_SECONDS.M,
} as const;
export type CompareOffsetName = keyof typeof COMPARE_OFFSETS;
