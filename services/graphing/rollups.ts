// The graphing service's reads: the stats a request may see, and their rollup rows.
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { KIND_NAME } from '../kit/db/schema.js';
import { OspreyError } from '../kit/errors.js';
import type { Resolution } from './resolution.js';
import type { MetricKind, RollupRow } from './series.js';

export const ROLLUP_TABLES: Readonly<Record<Resolution, string>> = {
  '1m': 'rollups_1m',
  '1h': 'rollups_1h',
  '1d': 'rollups_1d',
};

/** The rollup column holding a row's serialized sketch (added by ingest's sketch work). */
export const SKETCH_COLUMN = 'sketch';

const BUCKET_SEC: Readonly<Record<Resolution, number>> = { '1m': 60, '1h': 3600, '1d': 86400 };

export interface StatInfo {
  id: number;
  name: string;
  kind: MetricKind;
}

/**
 * The live stats of `accountId` among `ids`, in the order asked. Any id that is another
 * account's, deleted (in the trash) or unknown answers NotFound, with the same message in
 * every case, so a caller cannot tell another account's stat from a missing one.
 */
export async function loadStats(pool: Pool, accountId: number, ids: readonly number[]): Promise<StatInfo[]> {
  const unique = [...new Set(ids)];
  if (unique.length === 0) return [];
  const [rows] = await pool.execute<RowDataPacket[]>(
    `SELECT id, name, kind FROM stats WHERE account_id = ? AND id IN (${marks(unique.length)}) AND deleted_at IS NULL`,
    [accountId, ...unique],
  );
  const byId = new Map<number, StatInfo>();
  for (const r of rows) {
    const kind = KIND_NAME[Number(r.kind)];
    if (kind) byId.set(Number(r.id), { id: Number(r.id), name: String(r.name), kind });
  }
  return ids.map((id) => {
    const s = byId.get(id);
    if (!s) throw new OspreyError('not_found', `stat ${id} not found`);
    return s;
  });
}

/** Which rollup tables carry the sketch column, if pending_sketches exists too (checked once at start: migrations run before services). */
export async function tablesWithSketch(pool: Pool): Promise<Set<Resolution>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT TABLE_NAME AS t FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?) AND COLUMN_NAME = ?',
    [Object.values(ROLLUP_TABLES), SKETCH_COLUMN],
  );
  const names = new Set(rows.map((r) => String(r.t)));
  // Sketches are read together with ingest's not-yet-folded ones (readRollups): both
  // migrations, or neither.
  const [pending] = await pool.query<RowDataPacket[]>(
    "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'pending_sketches'",
  );
  if (pending.length === 0) return new Set();
  return new Set((Object.keys(ROLLUP_TABLES) as Resolution[]).filter((r) => names.has(ROLLUP_TABLES[r])));
}

export interface RollupRange {
  /** Inclusive, unix seconds. */
  fromSec: number;
  /** Exclusive. */
  toSec: number;
}

/** Overlapping or touching ranges joined, so no row is read twice. */
export function mergeRanges(ranges: readonly RollupRange[]): RollupRange[] {
  const sorted = ranges.filter((r) => r.toSec > r.fromSec).sort((a, b) => a.fromSec - b.fromSec);
  const out: RollupRange[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r.fromSec <= last.toSec) last.toSec = Math.max(last.toSec, r.toSec);
    else out.push({ ...r });
  }
  return out;
}

const COLUMNS = 'stat_id, bucket, count, sum, min, max, sumsq, last_value, last_time';

/** `?, ?, ?`: prepared statements take no list parameter, so each id gets its own. */
function marks(n: number): string {
  return new Array<string>(n).fill('?').join(', ');
}

/**
 * The rows of `statIds` in one table over the given ranges, by stat. One SELECT for all
 * stats and ranges: `stat_id IN (...) AND (bucket >= ? AND bucket < ? OR ...)` is a set of
 * ranges on the primary key (stat_id, bucket), so MySQL reads exactly those rows.
 * `sketchFor` picks the stats whose sketch column is read (it is the bulk of a row).
 */
export async function readRollups(
  pool: Pool,
  resolution: Resolution,
  statIds: readonly number[],
  ranges: readonly RollupRange[],
  sketchFor: ReadonlySet<number> = new Set(),
): Promise<Map<number, RollupRow[]>> {
  const byStat = new Map<number, RollupRow[]>();
  for (const id of statIds) byStat.set(id, []);
  const merged = mergeRanges(ranges);
  if (statIds.length === 0 || merged.length === 0) return byStat;
  const withSketch = sketchFor.size > 0;
  const ids = [...new Set(statIds)];
  const where = merged.map(() => '(bucket >= ? AND bucket < ?)').join(' OR ');
  const params: (number | string)[] = [];
  let sketchCol = '';
  let pending = '';
  if (withSketch) {
    sketchCol = `, IF(stat_id IN (${marks(sketchFor.size)}), ${SKETCH_COLUMN}, NULL), 0`;
    params.push(...sketchFor);
  }
  params.push(...ids);
  for (const r of merged) params.push(r.fromSec, r.toSec);
  if (withSketch) {
    // Sketches ingest flushed but has not folded into the rollups yet (at most a few
    // seconds' worth; see services/ingest/flusher.ts), one row per minute. In the same
    // statement, so in the same snapshot: a fold moves a contribution from there into the
    // rollup row in one transaction, so each is read exactly once. A minute belongs to the
    // row of its table bucket; the range is widened by a bucket and the rows matched below.
    const size = BUCKET_SEC[resolution];
    pending = ` UNION ALL SELECT stat_id, bucket, 0, 0, 0, 0, 0, 0, 0, sketch, 1 FROM pending_sketches
      WHERE stat_id IN (${marks(sketchFor.size)}) AND (${merged.map(() => '(bucket >= ? AND bucket < ?)').join(' OR ')})`;
    params.push(...sketchFor);
    for (const r of merged) params.push(r.fromSec, r.toSec + size);
  }
  // A prepared statement (binary protocol): doubles travel as 8 bytes instead of text the
  // server formats and the client parses, which took a day of minutes (1,440 rows) from
  // 9.6 to 3.6 ms. Statements are cached per connection; their shapes are few (number of
  // stats and ranges).
  const [rows] = await pool.execute<RowDataPacket[][]>({
    sql: `SELECT ${COLUMNS}${sketchCol} FROM ${ROLLUP_TABLES[resolution]} WHERE stat_id IN (${marks(ids.length)}) AND (${where})${pending}`,
    values: params,
    // Arrays, not objects: no per-row key lookups for what may be thousands of rows.
    rowsAsArray: true,
  });
  const late: unknown[][] = [];
  for (const r of rows as unknown as unknown[][]) {
    if (withSketch && Number(r[10]) === 1) {
      late.push(r);
      continue;
    }
    const row: RollupRow = {
      bucket: r[1] as number,
      count: r[2] as number,
      sum: r[3] as number,
      min: r[4] as number,
      max: r[5] as number,
      sumsq: r[6] as number,
      lastValue: r[7] as number,
      lastTime: Number(r[8]),
    };
    if (withSketch && r[9] != null) row.sketch = r[9] as Buffer;
    byStat.get(r[0] as number)?.push(row);
  }
  if (late.length > 0) {
    const size = BUCKET_SEC[resolution];
    const index = new Map<number, RollupRow>();
    for (const [id, list] of byStat) for (const row of list) index.set(id * 1e10 + row.bucket, row);
    for (const r of late) {
      const minute = r[1] as number;
      const row = index.get((r[0] as number) * 1e10 + Math.floor(minute / size) * size);
      if (row) (row.pending ??= []).push(r[9] as Buffer);
    }
  }
  return byStat;
}
