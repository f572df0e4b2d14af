import { randomUUID } from 'node:crypto';
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { KIND, type RollupColumns } from '../kit/db/schema.js';
import type { Logger } from '../kit/log.js';
import { mergeSerializedDistinct } from '../kit/sketch/distinct.js';
import { mergeSerializedQuantiles } from '../kit/sketch/quantile.js';
import { resolveGauges, type Aggregator, type Bucket } from './aggregator.js';

const TABLES = [
  { table: 'rollups_1m', seconds: 60 },
  { table: 'rollups_1h', seconds: 3600 },
  { table: 'rollups_1d', seconds: 86400 },
] as const;

/** Rows per SELECT of stored sketches, and at most this many sketch bytes (max_allowed_packet is 16 MB by default). */
const ROWS_PER_CHUNK = 2000;
const SKETCH_BYTES_PER_CHUNK = 4_000_000;
/** Ids per `IN (...)` of the kind and gauge lookups. */
const IDS_PER_STATEMENT = 5000;
/** Rows per prepared statement: a power of two, so a statement of any length is a few shapes (each connection keeps every shape it prepared; at 1024 rows a heap snapshot of a busy ingest held 200,000 mysql2 ColumnDefinition objects, 37 MB). */
const MAX_PREPARED_ROWS = 256;
/** Pending sketch rows folded per sweep transaction. */
const SWEEP_ROWS = 2000;

/** How long a pending sketch row collects contributions before a flush folds it into the rollups. */
export const DEFAULT_FOLD_AFTER_SEC = 10;

const COLUMNS = 'stat_id, bucket, count, sum, min, max, sumsq, last_value, last_time';

// Assignment order matters: MySQL evaluates left to right with the updated values, so
// last_value is decided before last_time moves.
const UPSERT_TAIL = `ON DUPLICATE KEY UPDATE
  count = count + VALUES(count),
  sum = sum + VALUES(sum),
  min = LEAST(min, VALUES(min)),
  max = GREATEST(max, VALUES(max)),
  sumsq = sumsq + VALUES(sumsq),
  last_value = IF(VALUES(last_time) > last_time OR (VALUES(last_time) = last_time AND VALUES(last_value) > last_value), VALUES(last_value), last_value),
  last_time = GREATEST(last_time, VALUES(last_time))`;

/** A sketch's format, from its stat's kind; stored in pending_sketches.format. */
export const SketchFormat = { quantile: 1, distinct: 2 } as const;
export type SketchFormat = (typeof SketchFormat)[keyof typeof SketchFormat];

/** A rollup row as written: the bucket's columns, and for value and set stats its sketch, serialized. */
export interface RollupRow extends RollupColumns {
  format: SketchFormat | 0;
  sketch: Buffer | null;
}

/** A sketch on its way into one rollup row. */
interface SketchPart {
  statId: number;
  bucket: number;
  format: SketchFormat;
  sketch: Buffer;
}

/** The merge of two serialized sketches of one format (commutative, byte for byte). */
function mergeSketches(format: SketchFormat, a: Uint8Array, b: Uint8Array): Buffer {
  return format === SketchFormat.quantile ? mergeSerializedQuantiles(a, b) : mergeSerializedDistinct(a, b);
}

/**
 * Rolls minute rows (sorted by key) up into rows of `seconds` (3600, 86400): the upsert's
 * rules, in memory, for the buckets several minute rows share (rows alone in their hour or
 * day, the usual case, are staged once for all tables: see stageRows). Sorted by key.
 */
function mergedRows(minutes: readonly RollupRow[], seconds: number): RollupRow[] {
  const out: RollupRow[] = [];
  const n = minutes.length;
  for (let i = 0; i < n; ) {
    const first = minutes[i];
    const bucket = Math.floor(first.bucket / seconds) * seconds;
    let j = i + 1;
    while (j < n && minutes[j].statId === first.statId && Math.floor(minutes[j].bucket / seconds) * seconds === bucket) j++;
    if (j - i > 1) {
      const r = rowOf(first, first.format, null);
      r.bucket = bucket;
      for (let k = i + 1; k < j; k++) {
        const m = minutes[k];
        r.count += m.count;
        r.sum += m.sum;
        if (m.min < r.min) r.min = m.min;
        if (m.max > r.max) r.max = m.max;
        r.sumsq += m.sumsq;
        if (m.lastTime > r.lastTime || (m.lastTime === r.lastTime && m.lastValue > r.lastValue)) {
          r.lastTime = m.lastTime;
          r.lastValue = m.lastValue;
        }
      }
      out.push(r);
    }
    i = j;
  }
  return out;
}

/** Which tables a staged row goes to (flush_rows.levels), one bit per entry of TABLES. */
const LEVEL_BITS = [1, 2, 4] as const;

/**
 * A flush's rows as staged in flush_rows: every minute row once, with the bits of the tables
 * it goes to as it is (always 1m; 1h and 1d when no other minute row of its stat shares its
 * hour, its day), and a merged row per hour or day that several minute rows share. So the
 * numbers cross to MariaDB once, not once per table. `perTable` counts each table's rows.
 */
export function stageRows(minutes: readonly RollupRow[]): { rows: RollupRow[]; levels: number[]; perTable: number[] } {
  const rows: RollupRow[] = minutes.slice();
  const levels: number[] = new Array<number>(minutes.length);
  const perTable = [minutes.length, 0, 0];
  const n = minutes.length;
  const shares = (i: number, k: number, seconds: number) =>
    k >= 0 && k < n && minutes[k].statId === minutes[i].statId && Math.floor(minutes[k].bucket / seconds) === Math.floor(minutes[i].bucket / seconds);
  for (let i = 0; i < n; i++) {
    let l = LEVEL_BITS[0];
    for (let t = 1; t < TABLES.length; t++) {
      const sec = TABLES[t].seconds;
      if (!shares(i, i - 1, sec) && !shares(i, i + 1, sec)) {
        l |= LEVEL_BITS[t];
        perTable[t]++;
      }
    }
    levels[i] = l;
  }
  for (let t = 1; t < TABLES.length; t++) {
    for (const r of mergedRows(minutes, TABLES[t].seconds)) {
      rows.push(r);
      levels.push(LEVEL_BITS[t]);
      perTable[t]++;
    }
  }
  return { rows, levels, perTable };
}

/** Sketch parts of minutes, merged per row of a table with buckets of `seconds`. */
function partsFor(parts: readonly SketchPart[], seconds: number): SketchPart[] {
  const out = new Map<number, SketchPart>();
  for (const p of parts) {
    const bucket = Math.floor(p.bucket / seconds) * seconds;
    const key = p.statId * 1e10 + bucket;
    const have = out.get(key);
    if (have) have.sketch = mergeSketches(p.format, have.sketch, p.sketch);
    else out.set(key, { ...p, bucket });
  }
  return [...out.values()].sort(byKey);
}

const byKey = (a: { statId: number; bucket: number }, b: { statId: number; bucket: number }) => a.statId - b.statId || a.bucket - b.bucket;

/** A rollup row merged from several minutes (the others are the aggregator's buckets themselves). */
class Row implements RollupRow {
  constructor(
    public statId: number,
    public bucket: number,
    public count: number,
    public sum: number,
    public min: number,
    public max: number,
    public sumsq: number,
    public lastValue: number,
    public lastTime: number,
    public format: SketchFormat | 0,
    public sketch: Buffer | null,
  ) {}
}

function rowOf(b: RollupColumns, format: SketchFormat | 0, sketch: Buffer | null): RollupRow {
  return new Row(b.statId, b.bucket, b.count, b.sum, b.min, b.max, b.sumsq, b.lastValue, b.lastTime, format, sketch);
}

interface PendingFlush {
  id: string;
  samples: number;
  /** What the aggregator handed over; dropped once prepared. */
  buckets: Bucket[] | null;
  /** Rows that need nothing from MySQL. */
  rows: RollupRow[];
  /** Gauge buckets with values relative to the stored value, by stat: resolved in each attempt's transaction. */
  relative: Map<number, Bucket[]>;
  /** With a write-ahead log: the LSN below which the logged samples are in this flush. */
  cut: number;
  /** Its intent is on disk in the log. */
  intended: boolean;
}

/** Splits keyed items with sketches into chunks of at most ROWS_PER_CHUNK rows and SKETCH_BYTES_PER_CHUNK bytes. */
function* chunks<T extends { sketch: Buffer | null }>(rows: readonly T[]): Generator<T[]> {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < rows.length; i++) {
    const n = rows[i].sketch?.length ?? 0;
    if (i > start && (i - start >= ROWS_PER_CHUNK || bytes + n > SKETCH_BYTES_PER_CHUNK)) {
      yield rows.slice(start, i);
      start = i;
      bytes = 0;
    }
    bytes += n;
  }
  if (start < rows.length) yield rows.slice(start);
}

const marksCache = new Map<string, string>();
function marks(rows: number, cols: number): string {
  const k = `${rows}x${cols}`;
  let m = marksCache.get(k);
  if (m === undefined) {
    const one = `(${new Array<string>(cols).fill('?').join(',')})`;
    marksCache.set(k, (m = new Array<string>(rows).fill(one).join(',')));
  }
  return m;
}

/**
 * `head VALUES (...), ... tail` for `count` rows of `cols` values each (`fill(i, out)`
 * pushes row i's values), in order, as prepared statements (the binary protocol: doubles
 * and sketches travel as bytes, not as text the server parses) of MAX_PREPARED_ROWS rows, then of
 * the powers of two that make up the rest, so every statement has one of a few shapes and its
 * prepared form is reused. Parameters are built per statement, never for all rows at once.
 * `onDuplicate`, if given, gets the row range [from, to) of a statement that failed on a
 * duplicate key (InnoDB rolled back just that statement).
 */
async function insertRows(
  conn: PoolConnection,
  head: string,
  tail: string,
  cols: number,
  count: number,
  fill: (i: number, out: unknown[]) => void,
  onDuplicate?: (from: number, to: number) => Promise<void>,
): Promise<void> {
  let i = 0;
  while (i < count) {
    const left = count - i;
    const n = left >= MAX_PREPARED_ROWS ? MAX_PREPARED_ROWS : 2 ** Math.floor(Math.log2(left));
    const params: unknown[] = [];
    for (let j = i; j < i + n; j++) fill(j, params);
    try {
      await conn.execute(`${head} VALUES ${marks(n, cols)} ${tail}`, params as never);
    } catch (err) {
      if (!onDuplicate || (err as { code?: string }).code !== 'ER_DUP_ENTRY') throw err;
      await onDuplicate(i, i + n);
    }
    i += n;
  }
}

/** insertRows of already flat values. */
function insertFlat(conn: PoolConnection, head: string, tail: string, cols: number, flat: readonly unknown[], onDuplicate?: (from: number, to: number) => Promise<void>): Promise<void> {
  return insertRows(conn, head, tail, cols, flat.length / cols, (i, out) => {
    for (let k = i * cols; k < (i + 1) * cols; k++) out.push(flat[k]);
  }, onDuplicate);
}

/**
 * The flusher's connection's staging table: a flush's rows, written once (stageRows) and
 * upserted from here into each rollup table. Its columns are named apart from the rollups'
 * so the upsert's unqualified names are the target's. Temporary (per connection, created on
 * first use) and InnoDB (no size limit, rolled back with the flush's transaction).
 */
const STAGE_DDL = `CREATE TEMPORARY TABLE IF NOT EXISTS flush_rows (
  stat_id INT UNSIGNED NOT NULL, bucket INT UNSIGNED NOT NULL, levels TINYINT UNSIGNED NOT NULL,
  c DOUBLE NOT NULL, s DOUBLE NOT NULL, mn DOUBLE NOT NULL, mx DOUBLE NOT NULL, sq DOUBLE NOT NULL,
  lv DOUBLE NOT NULL, lt BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (stat_id, bucket, levels)
) ENGINE=InnoDB`;

/** Makes the staging table empty (before the flush's transaction: TRUNCATE is DDL). */
async function emptyStage(conn: PoolConnection): Promise<void> {
  await conn.query(STAGE_DDL);
  await conn.query('TRUNCATE TABLE flush_rows');
}

/** Writes the staged rows, inside the flush's transaction. */
function fillStage(conn: PoolConnection, staged: { rows: readonly RollupRow[]; levels: readonly number[] }): Promise<void> {
  const { rows, levels } = staged;
  return insertRows(conn, 'INSERT INTO flush_rows (stat_id, bucket, levels, c, s, mn, mx, sq, lv, lt)', '', 10, rows.length, (i, out) => {
    const r = rows[i];
    out.push(r.statId, r.bucket, levels[i], r.count, r.sum, r.min, r.max, r.sumsq, r.lastValue, r.lastTime);
  });
}

/** Upserts the staged rows of table `t` (an index of TABLES), each bucket floored to the table's, in key order. */
async function upsertStaged(conn: PoolConnection, t: number): Promise<void> {
  const { table, seconds } = TABLES[t];
  await conn.query(
    `INSERT INTO ${table} (${COLUMNS}) SELECT stat_id, bucket - bucket % ${seconds}, c, s, mn, mx, sq, lv, lt FROM flush_rows WHERE levels & ${LEVEL_BITS[t]} ORDER BY stat_id, bucket ${UPSERT_TAIL}`,
  );
}

/**
 * Runs a transaction again when InnoDB chose it as a deadlock victim (it rolled back the
 * whole transaction, so running it again is safe; a flush keeps its id and rows). Lock
 * order makes deadlocks rare (see RollupFlusher); one that remains, such as two waiters
 * upgrading the shared lock a duplicate-key check leaves, costs a retry, not a failed flush.
 */
async function retryDeadlocks<T>(run: () => Promise<T>, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await run();
    } catch (err) {
      if ((err as { code?: string }).code !== 'ER_LOCK_DEADLOCK' || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 5 * i + Math.random() * 20));
    }
  }
}

function intLiteral(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a key: ${n}`);
  return String(n);
}

/**
 * `(SELECT s, b UNION ALL ...) k STRAIGHT_JOIN <table> t FORCE INDEX (PRIMARY) ON <t's key
 * is k's>`: the keys as a derived table read first, then each row of `table` by its primary
 * key (eq_ref). A locking read or a DELETE over it touches exactly these keys, in the order
 * given, whatever the optimizer thinks of the table's size: a scan (or a block join, which a
 * small table invites) would lock, in READ COMMITTED too, every row it passes, other
 * replicas' included, and two such scans deadlock. (MariaDB takes no index hint on a
 * single-table DELETE.)
 */
function keyJoin(keys: readonly { statId: number; bucket: number }[], table: string): string {
  const rows = keys.map((k, i) => (i === 0 ? `SELECT ${intLiteral(k.statId)} AS s, ${intLiteral(k.bucket)} AS b` : `SELECT ${intLiteral(k.statId)}, ${intLiteral(k.bucket)}`));
  return `(${rows.join(' UNION ALL ')}) k STRAIGHT_JOIN ${table} t FORCE INDEX (PRIMARY) ON t.stat_id = k.s AND t.bucket = k.b`;
}

/**
 * Writes the aggregator's buckets to rollups_1m/1h/1d. A flush is one transaction that
 * also inserts its flush id; a flush that failed (even after a commit whose reply was
 * lost) is retried with the same id and the same rows, so it is applied exactly once.
 * New samples keep accumulating in the aggregator meanwhile and go out in the next flush.
 *
 * In the transaction (READ COMMITTED: no gap locks, and every plain read sees the latest
 * commit), in this order, which every flush and every sweep follows, so two replicas wait
 * for each other's locks but do not deadlock on them:
 * 1. the flush id (a retried flush that finds it committed does nothing else);
 * 2. gauges with deltas relative to the stored value: their `stats` rows locked FOR UPDATE
 *    (two replicas' deltas to one gauge apply one after the other), the latest stored value
 *    read, the deltas resolved on top of it (aggregator.ts, resolveGauges);
 * 3. sketches (value and set stats), into pending_sketches, one row per (stat, minute)
 *    shared by the replicas: read FOR UPDATE, merged, written back. A row that has
 *    collected for `foldAfterSec` is instead folded: its sketch, merged with this flush's,
 *    goes to step 4 and the row is deleted. So the big hour and day sketches are rewritten
 *    about once per fold delay, not on every flush;
 * 4. per table (1m, 1h, 1d), rows sorted by key: the numeric columns as multi-row upserts
 *    whose every column merges commutatively; then the folded sketches, read-merge-write
 *    under the row lock the upsert took.
 * Sketch merges are commutative byte for byte, so the order replicas commit in does not
 * change any result. A pending row no flush touches any more (the stat went quiet, or its
 * replica stopped) is folded by sweep(), which runs after each flush on every replica and
 * skips rows another transaction holds.
 */
export class RollupFlusher {
  private pending: PendingFlush | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly flushSeconds: Histogram;
  private readonly flushFailures: Counter;
  private readonly flushedRows: Counter;
  private readonly sketchRaces: Counter;
  private readonly folded: Counter;
  /** Seconds a pending sketch row collects before it is folded into the rollups. */
  foldAfterSec = DEFAULT_FOLD_AFTER_SEC;
  /**
   * The write-ahead log's side of a flush (durable.ts): the cut taken with the buckets, the
   * intent logged before the transaction, the checkpoint after it. Unset: no log.
   */
  wal: { cut(): number; intend(id: string, cut: number): Promise<void>; committed(cut: number): Promise<void> } | undefined;
  /** Test hook: runs after COMMIT and before the flush counts as done. */
  afterCommit: (() => void) | undefined;
  /** Test hook: runs after a chunk's pending sketches are read, before the new ones are inserted. */
  beforeFreshPending: (() => Promise<void>) | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly aggregator: Aggregator,
    private readonly instance: string,
    private readonly log: Logger,
    metrics: Registry,
    /** Unix milliseconds (the fold delay is measured with it). */
    private readonly now: () => number = Date.now,
  ) {
    this.flushSeconds = new Histogram({ name: 'osprey_flush_seconds', help: 'Time to write one flush to MySQL', registers: [metrics], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
    this.flushFailures = new Counter({ name: 'osprey_flush_failures_total', help: 'Flushes that failed and will be retried', registers: [metrics] });
    this.flushedRows = new Counter({ name: 'osprey_flushed_rows_total', help: 'Rollup rows written', labelNames: ['table'], registers: [metrics] });
    this.sketchRaces = new Counter({
      name: 'osprey_flush_sketch_races_total',
      help: 'Pending sketch rows another replica inserted between our read and our insert (merged on the slow path)',
      registers: [metrics],
    });
    const self = this;
    new Gauge({
      name: 'osprey_flush_pause_seconds',
      help: 'The pause before the next flush, as last chosen (longer than FLUSH_INTERVAL_MS when flushes are slow)',
      registers: [metrics],
      collect() {
        this.set(self.nextPauseMs / 1000);
      },
    });
    new Gauge({
      name: 'osprey_unflushed_samples',
      help: 'Samples aggregated in memory (or in a flush under way) and not yet committed to MySQL',
      registers: [metrics],
      collect() {
        this.set(self.aggregator.pendingSamples + (self.pending?.samples ?? 0));
      },
    });
    this.folded = new Counter({ name: 'osprey_sketches_folded_total', help: 'Pending sketch rows folded into the rollups', labelNames: ['by'], registers: [metrics] });
  }

  /**
   * Flushes every `intervalMs`, or less often when flushing is slow: a flush and its sweep
   * that took `d` are followed by a pause of at least d × (1 − busyShare) / busyShare, so
   * flushing takes at most `busyShare` of the time (with many live stats a flush costs the
   * same however many samples it carries, so the samples per flush grow instead), but never
   * longer than `maxIntervalMs` between flushes. Flushes never queue up behind a slow one:
   * the next takes everything that accumulated meanwhile.
   */
  start(intervalMs: number, opts: { busyShare?: number; maxIntervalMs?: number } = {}): void {
    const share = opts.busyShare ?? 1;
    const maxMs = Math.max(intervalMs, opts.maxIntervalMs ?? intervalMs);
    this.stop();
    const run = (): void => {
      const began = performance.now();
      void this.flush()
        .then(() => this.sweep())
        .catch((err: unknown) => {
          // A failed flush has logged already; a failed sweep is retried on the next tick.
          if (!this.pending) this.log.warn({ err }, 'folding pending sketches failed; will retry');
        })
        .finally(() => {
          if (this.timer === undefined) return; // stopped meanwhile
          const took = performance.now() - began;
          const pause = Math.max(intervalMs - took, (took * (1 - share)) / share);
          this.nextPauseMs = Math.min(pause, maxMs - Math.min(took, maxMs));
          this.timer = setTimeout(run, this.nextPauseMs);
          this.timer.unref();
        });
    };
    this.timer = setTimeout(run, intervalMs);
    this.timer.unref();
  }

  /** The pause before the next scheduled flush, as last decided (for /metrics and tests). */
  nextPauseMs = 0;

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Flushes what has accumulated; concurrent calls share one run. Rejects if MySQL failed. */
  flush(): Promise<void> {
    if (this.running) return this.running.then(() => this.flush());
    this.running = this.flushOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Flushes until nothing is left, retrying failures, then folds every pending sketch it can, for shutdown. */
  async flushAll(deadlineMs: number): Promise<void> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      try {
        await this.flush();
        if (!this.pending && this.aggregator.size === 0) break;
      } catch (err) {
        if (Date.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // Folding is not needed for durability (pending rows are in MySQL, and any replica
    // folds them), only so the rollups' sketches are complete when every replica stops.
    try {
      await this.foldAll(until);
    } catch (err) {
      this.log.warn({ err }, 'could not fold the pending sketches at shutdown; another replica or the next start will');
    }
  }

  /** Folds every pending sketch row no other transaction holds, whatever its age (until `untilMs`, if given). */
  async foldAll(untilMs = Infinity): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.sweep(Infinity);
      total += n;
      if (n < SWEEP_ROWS || Date.now() > untilMs) return total;
    }
  }

  private async flushOnce(): Promise<void> {
    if (!this.pending) {
      if (this.aggregator.size === 0) return;
      const samples = this.aggregator.pendingSamples;
      // The cut and the take happen in one tick: the flush holds exactly the logged samples below the cut.
      const cut = this.wal ? this.wal.cut() : 0;
      this.pending = { id: randomUUID(), samples, buckets: this.aggregator.take(), rows: [], relative: new Map(), cut, intended: false };
    }
    const flush = this.pending;
    const end = this.flushSeconds.startTimer();
    try {
      if (this.wal && !flush.intended) {
        await this.wal.intend(flush.id, flush.cut);
        flush.intended = true;
      }
      if (flush.buckets) await this.prepare(flush);
      const applied = await retryDeadlocks(() => this.write(flush));
      this.pending = undefined;
      if (this.wal) await this.wal.committed(flush.cut).catch((err: unknown) => this.log.warn({ err }, 'could not record the flush checkpoint in the write-ahead log; a restart asks MySQL'));
      end();
      if (!applied) this.log.info({ flushId: flush.id }, 'flush was already committed; retry skipped');
    } catch (err) {
      this.flushFailures.inc();
      this.log.warn({ err, flushId: flush.id, rows: flush.rows.length }, 'flush failed; will retry with the same id');
      throw err;
    }
  }

  /**
   * Turns the taken buckets into rows once (sketches serialized), so every attempt writes
   * the same thing. Learns the kinds of add() buckets' stats first: a counter's bucket
   * drops the sketch it carried while its kind was unknown.
   */
  private async prepare(flush: PendingFlush): Promise<void> {
    const buckets = flush.buckets!;
    const kinds = this.aggregator.kinds;
    const unknown = new Set<number>();
    for (const b of buckets) if (b.kind === 0 && !kinds.has(b.statId)) unknown.add(b.statId);
    if (unknown.size > 0) {
      const ids = [...unknown];
      for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) {
        const [found] = await this.pool.query<RowDataPacket[]>('SELECT id, kind FROM stats WHERE id IN (?)', [ids.slice(i, i + IDS_PER_STATEMENT)]);
        for (const r of found) this.aggregator.noteKind(Number(r.id), Number(r.kind));
      }
    }
    // Each bucket becomes its own row; its sketch is serialized and let go.
    const rows: RollupRow[] = [];
    for (const b of buckets) {
      // A stat id that is not in `stats` (purged from the trash meanwhile) keeps its sketch.
      const kind = b.kind || kinds.get(b.statId) || KIND.value;
      if (kind === KIND.gauge) {
        if (b.relative) {
          let list = flush.relative.get(b.statId);
          if (!list) flush.relative.set(b.statId, (list = []));
          list.push(b);
          continue;
        }
      } else if (kind === KIND.set) {
        if (b.distinct) {
          b.format = SketchFormat.distinct;
          b.sketch = b.distinct.serialize();
        }
      } else if (kind !== KIND.counter && b.quantiles) {
        b.format = SketchFormat.quantile;
        b.sketch = b.quantiles.serialize();
      }
      b.quantiles = null;
      b.distinct = null;
      rows.push(b);
    }
    flush.rows = rows;
    flush.buckets = null;
  }

  /** One transaction; false when this flush id had already been committed. */
  private async write(flush: PendingFlush): Promise<boolean> {
    const conn: PoolConnection = await this.pool.getConnection();
    try {
      await emptyStage(conn);
      await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await conn.beginTransaction();
      const [res] = await conn.query<ResultSetHeader>(
        'INSERT IGNORE INTO flushes (id, instance, points) VALUES (?, ?, ?)',
        [flush.id, this.instance, flush.samples],
      );
      if (res.affectedRows === 0) {
        await conn.rollback();
        return false;
      }
      const minutes = flush.relative.size > 0 ? [...flush.rows, ...(await this.resolveRelative(conn, flush.relative))] : flush.rows;
      const sketched: SketchPart[] = [];
      for (const r of minutes) if (r.sketch) sketched.push({ statId: r.statId, bucket: r.bucket, format: r.format as SketchFormat, sketch: r.sketch });
      sketched.sort(byKey);
      const folded = await this.stagePending(conn, sketched);
      // Sorted by key so concurrent flushes from two replicas lock rows in the same order
      // and cannot deadlock each other (the hour and day rows keep that order).
      const staged = stageRows(minutes.slice().sort(byKey));
      await fillStage(conn, staged);
      for (let t = 0; t < TABLES.length; t++) {
        const { table, seconds } = TABLES[t];
        await upsertStaged(conn, t);
        if (folded.length > 0) await applySketches(conn, table, partsFor(folded, seconds));
        this.flushedRows.inc({ table }, staged.perTable[t]);
      }
      await conn.commit();
      if (folded.length > 0) this.folded.inc({ by: 'flush' }, folded.length);
      this.afterCommit?.();
      return true;
    } catch (err) {
      await conn.rollback().catch(() => {});
      throw err;
    } finally {
      conn.release();
    }
  }

  /**
   * Merges the flush's minute sketches into pending_sketches (sorted by key). Returns the
   * sketches to fold into the rollups now: those whose pending row had collected for
   * foldAfterSec, merged with this flush's part; their rows are deleted.
   */
  private async stagePending(conn: PoolConnection, parts: readonly SketchPart[]): Promise<SketchPart[]> {
    const nowSec = Math.floor(this.now() / 1000);
    const foldBefore = nowSec - this.foldAfterSec;
    const fold: SketchPart[] = [];
    for (const chunk of chunks(parts)) {
      const [found] = await conn.query<RowDataPacket[]>(`SELECT t.stat_id, t.bucket, t.since, t.sketch FROM ${keyJoin(chunk, 'pending_sketches')} FOR UPDATE`);
      const stored = new Map<number, { since: number; sketch: Buffer }>();
      for (const f of found) stored.set(Number(f.stat_id) * 1e10 + Number(f.bucket), { since: Number(f.since), sketch: f.sketch as Buffer });
      const update: unknown[] = [];
      const fresh: SketchPart[] = [];
      const gone: SketchPart[] = [];
      for (const p of chunk) {
        const old = stored.get(p.statId * 1e10 + p.bucket);
        if (!old) {
          fresh.push(p);
          continue;
        }
        const merged = mergeSketches(p.format, old.sketch, p.sketch);
        if (old.since <= foldBefore) {
          fold.push({ ...p, sketch: merged });
          gone.push(p);
        } else {
          update.push(p.statId, p.bucket, p.format, old.since, merged);
        }
      }
      if (gone.length > 0) await conn.query(`DELETE t FROM ${keyJoin(gone, 'pending_sketches')}`);
      const head = 'INSERT INTO pending_sketches (stat_id, bucket, format, since, sketch)';
      await insertFlat(conn, head, 'ON DUPLICATE KEY UPDATE sketch = VALUES(sketch)', 5, update);
      if (fresh.length === 0) continue;
      await this.beforeFreshPending?.();
      const flat: unknown[] = [];
      for (const p of fresh) flat.push(p.statId, p.bucket, p.format, nowSec, p.sketch);
      await insertFlat(conn, head, '', 5, flat, async (from, to) => {
        // Another replica inserted some of these rows since our read: they exist now, so
        // read them under lock and merge, as above.
        this.sketchRaces.inc();
        const raced = fresh.slice(from, to);
        const [now] = await conn.query<RowDataPacket[]>(`SELECT t.stat_id, t.bucket, t.sketch FROM ${keyJoin(raced, 'pending_sketches')} FOR UPDATE`);
        const have = new Map<number, Buffer>();
        for (const f of now) have.set(Number(f.stat_id) * 1e10 + Number(f.bucket), f.sketch as Buffer);
        const again: unknown[] = [];
        for (const p of raced) {
          const old = have.get(p.statId * 1e10 + p.bucket);
          again.push(p.statId, p.bucket, p.format, nowSec, old ? mergeSketches(p.format, old, p.sketch) : p.sketch);
        }
        await insertFlat(conn, head, 'ON DUPLICATE KEY UPDATE sketch = VALUES(sketch)', 5, again);
      });
    }
    return fold;
  }

  /**
   * Folds pending sketch rows at least `foldAfterSec` old (all of them with Infinity) that
   * no other transaction holds, up to SWEEP_ROWS, in one transaction; returns how many.
   * The rows a running flush holds are skipped: that flush folds or extends them itself.
   */
  sweep(olderThanSec = this.foldAfterSec): Promise<number> {
    return retryDeadlocks(() => this.sweepOnce(olderThanSec));
  }

  private async sweepOnce(olderThanSec: number): Promise<number> {
    const conn: PoolConnection = await this.pool.getConnection();
    try {
      await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await conn.beginTransaction();
      const cutoff = Number.isFinite(olderThanSec) ? Math.floor(this.now() / 1000) - olderThanSec : 2 ** 32;
      const [found] = await conn.query<RowDataPacket[]>(
        'SELECT stat_id, bucket, format, sketch FROM pending_sketches WHERE since <= ? ORDER BY stat_id, bucket LIMIT ? FOR UPDATE SKIP LOCKED',
        [cutoff, SWEEP_ROWS],
      );
      if (found.length === 0) {
        await conn.commit();
        return 0;
      }
      const parts: SketchPart[] = found.map((f) => ({ statId: Number(f.stat_id), bucket: Number(f.bucket), format: Number(f.format) as SketchFormat, sketch: f.sketch as Buffer }));
      await conn.query(`DELETE t FROM ${keyJoin(parts, 'pending_sketches')}`);
      for (const { table, seconds } of TABLES) await applySketches(conn, table, partsFor(parts, seconds));
      await conn.commit();
      this.folded.inc({ by: 'sweep' }, parts.length);
      return parts.length;
    } catch (err) {
      await conn.rollback().catch(() => {});
      throw err;
    } finally {
      conn.release();
    }
  }

  /**
   * Gauge deltas that arrived before any absolute value in their window, applied to each
   * stat's latest stored value (0 when it has none). The stats rows are locked first, in id
   * order, so a concurrent flush with deltas for the same gauge waits for this one and then
   * reads its result. The latest value is the last value of the stat's latest 1d row (the
   * latest day holds the latest point).
   */
  private async resolveRelative(conn: PoolConnection, relative: Map<number, Bucket[]>): Promise<RollupRow[]> {
    const ids = [...relative.keys()].sort((a, b) => a - b);
    const base = new Map<number, { value: number; time: number }>();
    for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) {
      const part = ids.slice(i, i + IDS_PER_STATEMENT);
      // As keyJoin: each stats row by its key, in id order, never a scan.
      const keys = part.map((id, k) => (k === 0 ? `SELECT ${intLiteral(id)} AS i` : `SELECT ${intLiteral(id)}`)).join(' UNION ALL ');
      await conn.query(`SELECT t.id FROM (${keys}) k STRAIGHT_JOIN stats t FORCE INDEX (PRIMARY) ON t.id = k.i FOR UPDATE`);
      const [rows] = await conn.query<RowDataPacket[]>(
        `SELECT r.stat_id, r.last_value, r.last_time FROM rollups_1d r
         JOIN (SELECT stat_id, MAX(bucket) AS b FROM rollups_1d WHERE stat_id IN (?) GROUP BY stat_id) m
           ON m.stat_id = r.stat_id AND m.b = r.bucket`,
        [part],
      );
      for (const r of rows) base.set(Number(r.stat_id), { value: Number(r.last_value), time: Number(r.last_time) });
    }
    const out: RollupRow[] = [];
    for (const [statId, buckets] of relative) {
      const b = base.get(statId);
      for (const g of resolveGauges(buckets, b?.value ?? 0, b?.time ?? -Infinity)) out.push(g);
    }
    return out;
  }
}

/**
 * Merges folded sketch parts (sorted by key, one per row) into one table's sketch column:
 * per chunk, the stored sketches read FOR UPDATE and the merged ones written back in
 * multi-row statements. The rows exist (the flush that staged a part upserted its rows in
 * the same transaction); a sketch the merge leaves unchanged (a set whose members were all
 * seen) is not rewritten.
 */
async function applySketches(conn: PoolConnection, table: string, parts: readonly SketchPart[]): Promise<void> {
  for (const chunk of chunks(parts)) {
    const [found] = await conn.query<RowDataPacket[]>(`SELECT t.stat_id, t.bucket, t.sketch FROM ${keyJoin(chunk, table)} FOR UPDATE`);
    const stored = new Map<number, Buffer | null>();
    for (const f of found) stored.set(Number(f.stat_id) * 1e10 + Number(f.bucket), (f.sketch as Buffer | null) ?? null);
    const flat: unknown[] = [];
    for (const p of chunk) {
      const key = p.statId * 1e10 + p.bucket;
      if (!stored.has(key)) continue; // deleted meanwhile (retention): nothing to add to
      const old = stored.get(key);
      const merged = old ? mergeSketches(p.format, old, p.sketch) : p.sketch;
      if (old && merged.equals(old)) continue;
      // The numeric values only fill the INSERT's columns: the row exists, only its sketch changes.
      flat.push(p.statId, p.bucket, 0, 0, 0, 0, 0, 0, 0, merged);
    }
    await insertFlat(conn, `INSERT INTO ${table} (${COLUMNS}, sketch)`, 'ON DUPLICATE KEY UPDATE sketch = VALUES(sketch)', 10, flat);
  }
}
