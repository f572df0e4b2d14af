/**
 * Durable acceptance: every sample ingest takes is written to the write-ahead log before it
 * is acknowledged, and what a flush committed to MySQL is never replayed. `accepted()` is
 * what an acknowledgement waits for: by default the log's write (the page cache: a crash of
 * the process loses nothing, a crash of the machine about the last UNAWAITED_SYNC_MS, as for
 * statsd lines); with `WAL_SYNC=ack` its fdatasync too.
 *
 * Log records:
 *   SAMPLES     the samples taken in one tick, in order (see the entry format below)
 *   FLUSH       a flush about to be written: its id (the `flushes` row it commits) and its
 *               cut, the LSN up to which samples are in it
 *   CHECKPOINT  a cut that MySQL is known to hold (written after the flush committed)
 *
 * The protocol, with the flusher:
 *   1. `cut()` seals the current tick's samples into the log and returns the LSN where the
 *      log ends; in the same tick the flusher takes the aggregator's buckets. So the flush
 *      holds exactly the samples logged below the cut.
 *   2. `intend(id, cut)` logs the FLUSH record and waits until it is on disk, before the
 *      flush transaction starts. (Were the flush committed and that record lost, a replay
 *      would count the flush again.)
 *   3. After COMMIT, `committed(cut)` logs a CHECKPOINT and deletes the segments below it.
 *
 * On start, `recover()` finds the highest cut known to be in MySQL: the last CHECKPOINT, or
 * a later FLUSH whose id is in the `flushes` table (committed, but the replica died before
 * it logged the checkpoint); then it re-adds every sample logged at or above that cut. A
 * sample is therefore in MySQL once: below the cut by a committed flush, above it by the
 * replay's flushes.
 *
 * SAMPLES entry format (little endian), u8 op first:
 *   op 5 (time)         f64 time (unix ms) of the entries after it in the same record
 *   op 6 (add)          u32 stat id, f64 value, f64 weight
 *   op 7 (add)          u32 stat id, f64 value (weight 1)
 *   op 8 (gauge)        u32 stat id, f64 value
 *   op 9 (gauge delta)  u32 stat id, f64 delta
 *   op 10 (set)         u32 stat id, u16 length, UTF-8 member
 * A tick's samples share one time (a statsd read has one), so most entries are 13 bytes
 * rather than the 21-29 of the entries earlier versions wrote, with their own time, which
 * replay still reads: u8 op, u32 stat id, f64 time, then op 1 (add) f64 value, f64 weight;
 * op 2 (gauge) f64 value; op 3 (gauge delta) f64 delta; op 4 (set) u16 length, member.
 */
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { BucketCache } from './aggregator.js';
import { WalFullError, type WriteAheadLog } from './wal.js';

/**
 * What an acknowledgement waits for: 'interval', the log's write (fdatasync within
 * UNAWAITED_SYNC_MS); 'ack', the write and its fdatasync (group commit).
 */
export const WAL_SYNCS = ['interval', 'ack'] as const;
export type WalSync = (typeof WAL_SYNCS)[number];

export const REC_SAMPLES = 1;
export const REC_FLUSH = 2;
export const REC_CHECKPOINT = 3;

// Entries with their own time (written by earlier versions; read on replay).
const OP_ADD = 1;
const OP_GAUGE = 2;
const OP_GAUGE_DELTA = 3;
const OP_SET = 4;
// Entries timed by the record's last OP_TIME.
const OP_TIME = 5;
const OP_ADD_T = 6;
const OP_ADD1_T = 7;
const OP_GAUGE_T = 8;
const OP_GAUGE_DELTA_T = 9;
const OP_SET_T = 10;

/** Where samples go: the aggregator, or anything with its three methods. */
export interface SampleTarget {
  add(statId: number, timeMs: number, value: number, weight?: number, cache?: BucketCache): void;
  addGauge(statId: number, timeMs: number, value: number, isDelta: boolean, cache?: BucketCache): void;
  addSet(statId: number, timeMs: number, member: string, cache?: BucketCache): void;
}

export interface RecoveryReport {
  /** Samples re-added from the log. */
  samples: number;
  /** The cut replay started from. */
  fromLsn: number;
  /** Bytes of the log read at open. */
  logBytes: number;
}

export class DurableRecorder implements SampleTarget {
  private buf = Buffer.allocUnsafe(64 * 1024);
  private off = 0;
  /** The time the entries being recorded are timed by (NaN: none yet in this record). */
  private time = NaN;
  private sealScheduled = false;
  /** The highest cut MySQL holds. */
  private confirmed: number;

  constructor(
    private readonly wal: WriteAheadLog,
    private readonly target: SampleTarget,
    /** Refuse new samples once this many log bytes wait for MySQL. */
    private readonly budgetBytes: number,
    /** 'ack': accepted() waits for the fdatasync, not only the write (WAL_SYNC). */
    private readonly sync: WalSync = 'interval',
  ) {
    this.confirmed = wal.start;
  }

  /** See WriteAheadLog.backlogged: stream readers pause while it holds (listeners.ts). */
  get backlogged(): boolean {
    return this.wal.backlogged;
  }

  onceRelieved(fn: () => void): void {
    this.wal.onceRelieved(fn);
  }

  /** Log bytes not yet known to be in MySQL. */
  get pendingBytes(): number {
    return this.wal.end + this.off - this.confirmed;
  }

  /** Throws WalFullError when the log is over its budget: call before taking a batch. */
  checkRoom(): void {
    const pending = this.pendingBytes;
    if (pending > this.budgetBytes) throw new WalFullError(pending, this.budgetBytes);
  }

  add(statId: number, timeMs: number, value: number, weight = 1, cache?: BucketCache): void {
    if (weight === 1) {
      const o = this.timed(timeMs, 13);
      const b = this.buf;
      b[o] = OP_ADD1_T;
      b.writeUInt32LE(statId, o + 1);
      b.writeDoubleLE(value, o + 5);
    } else {
      const o = this.timed(timeMs, 21);
      const b = this.buf;
      b[o] = OP_ADD_T;
      b.writeUInt32LE(statId, o + 1);
      b.writeDoubleLE(value, o + 5);
      b.writeDoubleLE(weight, o + 13);
    }
    this.target.add(statId, timeMs, value, weight, cache);
  }

  addGauge(statId: number, timeMs: number, value: number, isDelta: boolean, cache?: BucketCache): void {
    const o = this.timed(timeMs, 13);
    const b = this.buf;
    b[o] = isDelta ? OP_GAUGE_DELTA_T : OP_GAUGE_T;
    b.writeUInt32LE(statId, o + 1);
    b.writeDoubleLE(value, o + 5);
    this.target.addGauge(statId, timeMs, value, isDelta, cache);
  }

  addSet(statId: number, timeMs: number, member: string, cache?: BucketCache): void {
    const len = Buffer.byteLength(member);
    if (len > 0xffff) throw new RangeError('set member longer than 65535 bytes');
    const o = this.timed(timeMs, 7 + len);
    const b = this.buf;
    b[o] = OP_SET_T;
    b.writeUInt32LE(statId, o + 1);
    b.writeUInt16LE(len, o + 5);
    b.write(member, o + 7, len, 'utf8');
    this.target.addSet(statId, timeMs, member, cache);
  }

  /**
   * Room for an entry of `n` bytes timed `timeMs`, after an OP_TIME entry unless the record's
   * time is that already (room for one is reserved first and given back if not needed, so a
   * seal inside reserve(), which starts a record with no time, cannot be missed).
   */
  private timed(timeMs: number, n: number): number {
    const o = this.reserve(n + 9);
    if (timeMs === this.time) {
      this.off = o + n;
      return o;
    }
    this.buf[o] = OP_TIME;
    this.buf.writeDoubleLE(timeMs, o + 1);
    this.time = timeMs;
    return o + 9;
  }

  /** Resolves when every sample recorded so far is on disk. */
  durable(): Promise<void> {
    this.seal();
    return this.wal.durable();
  }

  /** Resolves when every sample recorded so far may be acknowledged: in the log's file, and on disk with WAL_SYNC=ack. */
  accepted(): Promise<void> {
    this.seal();
    return this.sync === 'ack' ? this.wal.durable() : this.wal.written();
  }

  /** Writes what is recorded, then closes the log. */
  async close(): Promise<void> {
    this.seal();
    await this.wal.close();
  }

  /** Seals the samples so far into the log; returns the LSN they end at. Take the buckets in the same tick. */
  cut(): number {
    this.seal();
    return this.wal.end;
  }

  /** Logs that flush `id` holds the samples below `cut`, and waits until that is on disk. */
  intend(id: string, cut: number): Promise<void> {
    const idBytes = Buffer.from(id, 'utf8');
    const payload = Buffer.allocUnsafe(8 + idBytes.length);
    payload.writeDoubleLE(cut, 0);
    idBytes.copy(payload, 8);
    this.wal.append(REC_FLUSH, payload);
    return this.wal.durable();
  }

  /** The flush that held the samples below `cut` is committed: drop what is no longer needed. */
  async committed(cut: number): Promise<void> {
    if (cut <= this.confirmed) return;
    this.confirmed = cut;
    const payload = Buffer.allocUnsafe(8);
    payload.writeDoubleLE(cut, 0);
    this.wal.append(REC_CHECKPOINT, payload);
    await this.wal.release(cut);
  }

  /**
   * Replays what the log holds beyond the last cut MySQL has (asking `flushes` about flushes
   * whose fate the log does not know), into the target. Call once, before taking samples.
   */
  async recover(pool: Pool): Promise<RecoveryReport> {
    const records = this.wal.takeReplayed();
    let checkpoint = this.wal.start;
    let intents: { id: string; cut: number }[] = [];
    for (const r of records) {
      if (r.type === REC_CHECKPOINT) {
        checkpoint = Math.max(checkpoint, r.payload.readDoubleLE(0));
        intents = [];
      } else if (r.type === REC_FLUSH) {
        intents.push({ cut: r.payload.readDoubleLE(0), id: r.payload.subarray(8).toString('utf8') });
      }
    }
    if (intents.length > 0) {
      const [rows] = await pool.query<RowDataPacket[]>('SELECT id FROM flushes WHERE id IN (?)', [intents.map((i) => i.id)]);
      const done = new Set(rows.map((r) => String(r.id)));
      for (const i of intents) if (done.has(i.id)) checkpoint = Math.max(checkpoint, i.cut);
    }
    let samples = 0;
    let logBytes = 0;
    for (const r of records) {
      logBytes += r.payload.length + 9;
      if (r.type === REC_SAMPLES && r.lsn >= checkpoint) samples += decodeSamples(r.payload, this.target);
    }
    this.confirmed = checkpoint;
    if (intents.length > 0 || records.length > 0) {
      // Record the cut we start from, so the next start need not ask MySQL again.
      const payload = Buffer.allocUnsafe(8);
      payload.writeDoubleLE(checkpoint, 0);
      this.wal.append(REC_CHECKPOINT, payload);
      await this.wal.durable();
    }
    return { samples, fromLsn: checkpoint, logBytes };
  }

  private reserve(n: number): number {
    if (this.off + n > this.buf.length) {
      if (this.off > 0) this.seal();
      if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
    }
    const o = this.off;
    this.off += n;
    if (!this.sealScheduled) {
      this.sealScheduled = true;
      queueMicrotask(() => {
        this.sealScheduled = false;
        try {
          this.seal();
        } catch {
          // The log is broken or closed: whoever waits in durable() is told so.
        }
      });
    }
    return o;
  }

  private seal(): void {
    if (this.off === 0) return;
    // append() copies the bytes into its frame, so the buffer can be reused at once.
    this.wal.append(REC_SAMPLES, this.buf.subarray(0, this.off));
    this.off = 0;
    this.time = NaN;
  }
}

/** Re-adds the samples of one SAMPLES payload; returns how many. */
export function decodeSamples(p: Buffer, target: SampleTarget): number {
  let o = 0;
  let n = 0;
  let time = 0;
  let timed = false;
  while (o < p.length) {
    const op = p[o];
    if (op === OP_TIME) {
      time = p.readDoubleLE(o + 1);
      timed = true;
      o += 9;
      continue;
    }
    if (op === 0 || op > OP_SET_T) throw new Error(`write-ahead log: unknown sample op ${op} at byte ${o}`);
    // Ops 1-4 carry their own time after the stat id; the others use the record's.
    const own = op <= OP_SET;
    if (!own && !timed) throw new Error(`write-ahead log: sample op ${op} before any time at byte ${o}`);
    const statId = p.readUInt32LE(o + 1);
    const t = own ? p.readDoubleLE(o + 5) : time;
    const f = own ? o + 13 : o + 5; // the entry's own fields
    switch (op) {
      case OP_ADD:
      case OP_ADD_T:
        target.add(statId, t, p.readDoubleLE(f), p.readDoubleLE(f + 8));
        o = f + 16;
        break;
      case OP_ADD1_T:
        target.add(statId, t, p.readDoubleLE(f), 1);
        o = f + 8;
        break;
      case OP_GAUGE:
      case OP_GAUGE_T:
      case OP_GAUGE_DELTA:
      case OP_GAUGE_DELTA_T:
        target.addGauge(statId, t, p.readDoubleLE(f), op === OP_GAUGE_DELTA || op === OP_GAUGE_DELTA_T);
        o = f + 8;
        break;
      default: {
        // OP_SET, OP_SET_T
        const len = p.readUInt16LE(f);
        target.addSet(statId, t, p.toString('utf8', f + 2, f + 2 + len));
        o = f + 2 + len;
      }
    }
    n++;
  }
  return n;
}
