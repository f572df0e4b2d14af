// Reads a rule's window straight from the rollups. Graphing will own series queries; an
// alert needs only a sum and a count, which one indexed range scan gives.
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { KIND } from '../kit/db/schema.js';
import type { WindowFigures } from './condition.js';

type Queryable = Pool | PoolConnection;

/** 1-minute rollups are kept for 30 days by default; older windows read hours. */
const MINUTE_HORIZON_SEC = 28 * 86400;
/** Hours are kept two years. */
const HOUR_HORIZON_SEC = 700 * 86400;

/** The rollup table and bucket size a window is read from. */
export function rollupFor(windowSec: number, ageSec: number): { table: string; seconds: number } {
  let seconds = windowSec <= 86400 ? 60 : windowSec <= 30 * 86400 ? 3600 : 86400;
  if (seconds === 60 && ageSec > MINUTE_HORIZON_SEC) seconds = 3600;
  if (seconds === 3600 && ageSec > HOUR_HORIZON_SEC) seconds = 86400;
  return { table: seconds === 60 ? 'rollups_1m' : seconds === 3600 ? 'rollups_1h' : 'rollups_1d', seconds };
}

/**
 * Figures for [endSec - windowSec, endSec). Buckets are counted by their start, so a
 * coarse table may take in up to one bucket before the window's start.
 */
export async function windowFigures(db: Queryable, statId: number, statKind: number, endSec: number, windowSec: number, nowSec: number): Promise<WindowFigures> {
  const startSec = endSec - windowSec;
  const { table, seconds } = rollupFor(windowSec, nowSec - startSec);
  const from = Math.floor(startSec / seconds) * seconds;
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT COALESCE(SUM(count), 0) AS c, COALESCE(SUM(sum), 0) AS s FROM ${table} WHERE stat_id = ? AND bucket >= ? AND bucket < ?`,
    [statId, from, endSec],
  );
  const count = Number(rows[0].c);
  const sum = Number(rows[0].s);
  // A counter with no points counted nothing: its sum is 0. A value with no points has no mean.
  if (statKind === KIND.counter) return { value: sum, count };
  return { value: count > 0 ? sum / count : undefined, count };
}
