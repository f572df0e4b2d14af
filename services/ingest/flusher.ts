import { randomUUID } from 'node:crypto';
import type { Pool, PoolConnection, ResultSetHeader } from 'mysql2/promise';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../kit/log.js';
import { rollUp, type Bucket, type Aggregator } from './aggregator.js';

const TABLES = [
  { table: 'rollups_1m', seconds: 60 },
  { table: 'rollups_1h', seconds: 3600 },
  { table: 'rollups_1d', seconds: 86400 },
] as const;

/** Rows per INSERT statement: large enough to amortise round trips, small enough for max_allowed_packet. */
const ROWS_PER_STATEMENT = 2000;

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

interface PendingFlush {
  id: string;
  minutes: Bucket[];
  samples: number;
}

/**
 * Writes the aggregator's buckets to rollups_1m/1h/1d. A flush is one transaction that
 * also inserts its flush id; a flush that failed (even after a commit whose reply was
 * lost) is retried with the same id and the same rows, so it is applied exactly once.
 * New samples keep accumulating in the aggregator meanwhile and go out in the next flush.
 */
export class RollupFlusher {
  private pending: PendingFlush | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly flushSeconds: Histogram;
  private readonly flushFailures: Counter;
  private readonly flushedRows: Counter;
  /** Test hook: runs after COMMIT and before the flush counts as done. */
  afterCommit: (() => void) | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly aggregator: Aggregator,
    private readonly instance: string,
    private readonly log: Logger,
    metrics: Registry,
  ) {
    this.flushSeconds = new Histogram({ name: 'osprey_flush_seconds', help: 'Time to write one flush to MySQL', registers: [metrics], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
    this.flushFailures = new Counter({ name: 'osprey_flush_failures_total', help: 'Flushes that failed and will be retried', registers: [metrics] });
    this.flushedRows = new Counter({ name: 'osprey_flushed_rows_total', help: 'Rollup rows written', labelNames: ['table'], registers: [metrics] });
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.flush().catch(() => {}), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
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

  /** Flushes until nothing is left, retrying failures, for shutdown. */
  async flushAll(deadlineMs: number): Promise<void> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      try {
        await this.flush();
        if (!this.pending && this.aggregator.size === 0) return;
      } catch (err) {
        if (Date.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private async flushOnce(): Promise<void> {
    if (!this.pending) {
      if (this.aggregator.size === 0) return;
      const samples = this.aggregator.pendingSamples;
      this.pending = { id: randomUUID(), minutes: this.aggregator.take(), samples };
    }
    const flush = this.pending;
    const end = this.flushSeconds.startTimer();
    try {
      const applied = await this.write(flush);
      this.pending = undefined;
      end();
      if (!applied) this.log.info({ flushId: flush.id }, 'flush was already committed; retry skipped');
    } catch (err) {
      this.flushFailures.inc();
      this.log.warn({ err, flushId: flush.id, rows: flush.minutes.length }, 'flush failed; will retry with the same id');
      throw err;
    }
  }

  /** One transaction; false when this flush id had already been committed. */
  private async write(flush: PendingFlush): Promise<boolean> {
    const conn: PoolConnection = await this.pool.getConnection();
    try {
      await conn.beginTransaction();
      const [res] = await conn.query<ResultSetHeader>(
        'INSERT IGNORE INTO flushes (id, instance, points) VALUES (?, ?, ?)',
        [flush.id, this.instance, flush.samples],
      );
      if (res.affectedRows === 0) {
        await conn.rollback();
        return false;
      }
      for (const { table, seconds } of TABLES) {
        const rows = seconds === 60 ? flush.minutes : rollUp(flush.minutes, seconds);
        // Sorted by key so concurrent flushes from two replicas lock rows in the same
        // order and cannot deadlock each other.
        rows.sort((a, b) => a.statId - b.statId || a.bucket - b.bucket);
        for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
          const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
          await conn.query(
            `INSERT INTO ${table} (stat_id, bucket, count, sum, min, max, sumsq, last_value, last_time) VALUES ? ${UPSERT_TAIL}`,
            [chunk.map((b) => [b.statId, b.bucket, b.count, b.sum, b.min, b.max, b.sumsq, b.lastValue, b.lastTime])],
          );
        }
        this.flushedRows.inc({ table }, rows.length);
      }
      await conn.commit();
      this.afterCommit?.();
      return true;
    } catch (err) {
      await conn.rollback().catch(() => {});
      throw err;
    } finally {
      conn.release();
    }
  }
}
