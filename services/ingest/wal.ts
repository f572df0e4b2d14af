/**
 * A local write-ahead log: what ingest has accepted is on disk before it says so.
 *
 * Records are appended to an in-memory batch and written with group commit: when no write
 * is running, the batch goes out at once (write + fdatasync); while one runs, new records
 * wait and leave together when it returns. So a lone record pays one fsync and a flood pays
 * one fsync per batch. `durable()` resolves when everything appended before the call is on
 * disk; `written()` when it is in the file (the page cache: a crash of the process loses
 * none of it), with the fdatasync to follow within UNAWAITED_SYNC_MS like any record that
 * nobody awaits durably.
 *
 * Records nobody waits for (statsd samples: UDP has no acknowledgement) are written at once,
 * into the page cache, so a crash of the process loses none of them, but the fdatasync that
 * would make them survive a crash of the machine comes at most UNAWAITED_SYNC_MS later, or
 * with the next awaited record's, whichever is first: one fdatasync per turn of the event
 * loop cost a seventh of a core at 1,000 turns a second.
 *
 * Positions (LSNs) are byte offsets in the log as a whole, across segments; a record's LSN
 * is where it starts, and `end` is where the next one will start. Segments are files named
 * by the LSN they start at (16 hex digits + ".wal"); a new one is started once the current
 * one holds `segmentBytes`. `release(lsn)` deletes every segment that lies wholly below
 * `lsn` (what MySQL has durably).
 *
 * Record frame: u32 payload length, u32 CRC-32 of (type, payload), u8 type, payload (all
 * little endian). On open, the last segment is scanned and cut at the first incomplete or
 * corrupt frame: a torn write at a crash only loses records that were never acknowledged,
 * because acknowledgement waits for fdatasync.
 *
 * Records overwrite zeros: ahead of the write position the segment is filled with zeros
 * (ZERO_AHEAD bytes, in the background, each chunk fdatasync'ed), so a record's fdatasync
 * changes no file size or block map, and the file system has no journal commit to wait
 * for (as PostgreSQL's zero-filled WAL segments). Measured on the development machine, a
 * loop of 200-byte writes each followed by fdatasync, appending vs. overwriting zeros:
 * p50 236-322 -> 184-243 µs, p99.9 2.9-15.7 -> 0.9-3.5 ms (docs/perf.md). So a segment's file is
 * longer than its records: the records end at the first frame that is not valid, and
 * everything after it must be zeros (a torn tail is zeroed at open).
 *
 * One process owns a log directory: a lock file holding the owner's pid is taken with
 * O_EXCL and is stolen only when that pid no longer runs.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';

const HEADER = 9;
/** How far ahead of the write position a segment is kept zero-filled, and the chunk it is filled in. */
const ZERO_AHEAD = 4 << 20;
const ZERO_CHUNK = 1 << 20;
const ZEROS = Buffer.alloc(ZERO_CHUNK);
/** How long records that nobody awaits may stay written but not fdatasync'ed. */
export const UNAWAITED_SYNC_MS = 100;
const SUFFIX = '.wal';
const LOCK = 'LOCK';

export interface WalRecord {
  lsn: number;
  type: number;
  payload: Buffer;
}

export interface WalOptions {
  /** Start a new segment once the current one holds this many bytes. */
  segmentBytes?: number;
  /** Skip fdatasync (tests of the logic only; never in a service). */
  noSync?: boolean;
  /** `backlogged` once more than this many appended bytes wait to be written (default 8 MiB). */
  backlogBytes?: number;
}

/** The log refused a record: more than its budget is waiting for MySQL. */
export class WalFullError extends Error {
  constructor(readonly pendingBytes: number, readonly budgetBytes: number) {
    super(`the write-ahead log holds ${pendingBytes} bytes not yet in MySQL (budget ${budgetBytes})`);
  }
}

interface Segment {
  start: number;
  file: string;
}

export class WriteAheadLog {
  private segments: Segment[];
  private fd: number;
  private segmentSize: number;
  private nextLsn: number;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  /** Bytes of the batch being written. */
  private writingBytes = 0;
  private readonly backlogBytes: number;
  /** Called once the backlog is under backlogBytes again (see onceRelieved). */
  private relief: (() => void)[] = [];
  /** Wait for the next write and its fdatasync. */
  private waiters: (() => void)[] = [];
  /** Wait for the next write only (written()). */
  private writeWaiters: (() => void)[] = [];
  /** Everyone's, waiters' and writeWaiters'. */
  private failures: ((err: Error) => void)[] = [];
  private writing: Promise<void> | undefined;
  /** The scheduled fdatasync while it runs (syncInBackground). */
  private syncing: Promise<void> | undefined;
  private scheduled = false;
  /** Written since the last fdatasync. */
  private unsynced = false;
  private syncTimer: NodeJS.Timeout | undefined;
  private broken: Error | undefined;
  private closed = false;
  /** The current segment's bytes from segmentSize up to here are zeros already on disk. */
  private zeroedTo: number;
  /** A zero fill running in the background (its write, then its fdatasync), from `zeroingFrom` on. */
  private zeroing: Promise<void> | undefined;
  /** The running fill's write while it is in flight: no record may be written where it lands. */
  private zeroWrite: Promise<void> | undefined;
  private zeroingFrom = 0;
  private readonly segmentBytes: number;
  private readonly noSync: boolean;

  private constructor(
    readonly dir: string,
    segments: Segment[],
    fd: number,
    segmentSize: number,
    fileSize: number,
    opts: WalOptions,
    private readonly replayed: WalRecord[],
  ) {
    this.segments = segments;
    this.fd = fd;
    this.segmentSize = segmentSize;
    this.zeroedTo = Math.max(fileSize, segmentSize);
    this.nextLsn = segments[segments.length - 1].start + segmentSize;
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    this.noSync = opts.noSync ?? false;
    this.backlogBytes = opts.backlogBytes ?? 8 << 20;
    this.fillFirstChunk();
    this.zeroAhead();
  }

  /** Opens (or creates) the log in `dir`, reading every record it holds. */
  static async open(dir: string, opts: WalOptions = {}): Promise<WriteAheadLog> {
    await fsp.mkdir(dir, { recursive: true });
    await takeLock(dir);
    const names = (await fsp.readdir(dir)).filter((n) => /^[0-9a-f]{16}\.wal$/.test(n)).sort();
    const segments: Segment[] = names.map((n) => ({ start: parseInt(n.slice(0, 16), 16), file: path.join(dir, n) }));
    if (segments.length === 0) segments.push({ start: 0, file: path.join(dir, segmentName(0)) });
    const records: WalRecord[] = [];
    let lastSize = 0;
    let lastFileSize = 0;
    let lastExists = false;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const data = await fsp.readFile(seg.file).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : Promise.reject(err)));
      const good = data ? readFrames(data, seg.start, records) : 0;
      // The records end at `good`; what follows must be the zeros written ahead of them.
      const dirty = data ? nonZeroEnd(data, good) : 0;
      const last = i === segments.length - 1;
      if (dirty > good) {
        if (!last) throw new Error(`write-ahead log segment ${seg.file} is corrupt at byte ${good} and is not the last one: move it away to start`);
        // A torn tail: zero it so new records follow the last good one and nothing of it
        // is read after them.
        const fd = fs.openSync(seg.file, 'r+');
        try {
          writeZerosSync(fd, good, dirty, !opts.noSync);
        } finally {
          fs.closeSync(fd);
        }
      }
      if (last) {
        lastSize = good;
        lastFileSize = data?.length ?? 0;
        lastExists = data !== null;
      }
    }
    // Not 'a': with O_APPEND, Linux ignores the position of a positional write.
    const fd = fs.openSync(segments[segments.length - 1].file, lastExists ? 'r+' : 'wx+');
    return new WriteAheadLog(dir, segments, fd, lastSize, lastFileSize, opts, records);
  }

  /** The records found at open, in order (once; later calls get an empty list). */
  takeReplayed(): WalRecord[] {
    return this.replayed.splice(0);
  }

  /** Where the next record will start. */
  get end(): number {
    return this.nextLsn;
  }

  /** The LSN of the oldest byte still kept. */
  get start(): number {
    return this.segments[0].start;
  }

  /** Appends a record to the next write; returns its LSN. Not durable until durable(). */
  append(type: number, payload: Buffer): number {
    if (this.broken) throw this.broken;
    if (this.closed) throw new Error('the write-ahead log is closed');
    const frame = Buffer.allocUnsafe(HEADER + payload.length);
    frame.writeUInt32LE(payload.length, 0);
    frame[8] = type;
    payload.copy(frame, HEADER);
    frame.writeUInt32LE(crc32(frame.subarray(8)), 4);
    const lsn = this.nextLsn;
    this.nextLsn += frame.length;
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    // Nobody may wait for this record (statsd lines): write it after this tick anyway.
    if (!this.writing && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        if (!this.writing && !this.closed && this.queue.length > 0) this.kick();
      });
    }
    return lsn;
  }

  /**
   * More than `backlogBytes` appended and not yet written (the disk, or a fill ahead of the
   * records, is slower than appends). Memory holds them meanwhile: a reader that can wait
   * (a TCP or Unix connection) should stop reading until onceRelieved.
   */
  get backlogged(): boolean {
    return this.queuedBytes + this.writingBytes > this.backlogBytes;
  }

  /** Calls `fn` once the log is no longer backlogged (at once if it is not), or has failed or closed. */
  onceRelieved(fn: () => void): void {
    if (!this.backlogged || this.broken || this.closed) fn();
    else this.relief.push(fn);
  }

  private relieve(): void {
    if (this.relief.length === 0 || (this.backlogged && !this.broken && !this.closed)) return;
    for (const fn of this.relief.splice(0)) fn();
  }

  /** Resolves when everything appended so far is on disk; rejects if the disk failed. */
  durable(): Promise<void> {
    return this.waitIn(this.waiters, this.unsynced || this.syncing !== undefined);
  }

  /**
   * Resolves when everything appended so far is written to the file (so a crash of the
   * process loses none of it), without waiting for its fdatasync, which follows within
   * UNAWAITED_SYNC_MS (or with the next durable()); rejects if the disk failed.
   */
  written(): Promise<void> {
    return this.waitIn(this.writeWaiters, false);
  }

  /** Waits in `list` for the next batch, unless nothing is queued, being written or (`syncDue`) to be synced. */
  private waitIn(list: (() => void)[], syncDue: boolean): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    // A running batch may hold records appended before this call: wait for the next one.
    if (this.queue.length === 0 && !this.writing && !syncDue) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      list.push(resolve);
      this.failures.push(reject);
      if (!this.writing) this.kick();
    });
  }

  /** Deletes the segments that lie wholly below `lsn`. */
  async release(lsn: number): Promise<void> {
    while (this.segments.length > 1 && this.segments[1].start <= lsn) {
      const seg = this.segments.shift()!;
      await fsp.rm(seg.file, { force: true });
    }
  }

  /** Waits for running writes, then closes the file and the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.durable().catch(() => {});
    this.closed = true;
    this.relieve();
    await this.descriptorIdle();
    clearTimeout(this.syncTimer);
    fs.closeSync(this.fd);
    await fsp.rm(path.join(this.dir, LOCK), { force: true });
  }

  private kick(): void {
    this.writing = this.writeBatch().finally(() => {
      this.writing = undefined;
      this.writingBytes = 0;
      if (!this.broken && !this.closed && (this.queue.length > 0 || this.waiters.length > 0 || this.writeWaiters.length > 0)) this.kick();
      this.relieve();
    });
  }

  private async writeBatch(): Promise<void> {
    const frames = this.queue;
    const bytes = this.queuedBytes;
    const waiters = this.waiters;
    const writeWaiters = this.writeWaiters;
    const failures = this.failures;
    this.queue = [];
    this.queuedBytes = 0;
    this.writingBytes = bytes;
    this.waiters = [];
    this.writeWaiters = [];
    this.failures = [];
    try {
      if (bytes > 0 && this.segmentSize >= this.segmentBytes) await this.rotate(this.nextLsn - bytes);
      if (bytes > 0) {
        // Never write where a fill's zeros are still on their way to the page cache: they
        // would overwrite the records. Once written, records may overwrite them while the
        // fill's fdatasync runs (which can take a second when MySQL keeps the disk busy):
        // that sync then carries the records too. (A loop: a fill that ends starts the next,
        // which a batch larger than a chunk may reach too.)
        while (this.zeroWrite && this.segmentSize + bytes > this.zeroingFrom) await this.zeroWrite;
        writevAll(this.fd, frames, this.segmentSize);
        this.segmentSize += bytes;
        if (!this.noSync) this.unsynced = true;
        this.zeroAhead();
      }
      for (const w of writeWaiters) w();
      if (waiters.length > 0 && this.unsynced) {
        this.unsynced = false;
        await new Promise<void>((resolve, reject) => fs.fdatasync(this.fd, (err) => (err ? reject(err) : resolve())));
      } else if (waiters.length > 0 && this.syncing) {
        // Everything written is carried by the scheduled sync that is running: its end
        // answers them, and the writes behind them need not wait for it.
        void this.syncing.then(() => {
          if (this.broken) for (const f of failures) f(this.broken);
          else for (const w of waiters) w();
        });
        return;
      } else if (this.unsynced) this.scheduleSync();
      for (const w of waiters) w();
    } catch (err) {
      for (const f of failures) f(this.fail(err as Error));
    }
  }

  /** A failed write or sync leaves the file in an unknown state: nothing more is accepted. */
  private fail(err: Error): Error {
    this.broken ??= new Error(`write-ahead log write failed: ${err.message}`);
    for (const f of this.failures.splice(0)) f(this.broken);
    this.waiters = [];
    this.writeWaiters = [];
    return this.broken;
  }

  /** Records are written but nobody awaits their fdatasync: it comes within UNAWAITED_SYNC_MS. */
  private scheduleSync(): void {
    if (this.syncTimer !== undefined) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.syncInBackground();
    }, UNAWAITED_SYNC_MS);
    this.syncTimer.unref();
  }

  /**
   * The scheduled fdatasync, beside the write loop: records written meanwhile (an awaited
   * written(), a statsd read) do not wait for it. It may or may not carry them, so they
   * leave the log unsynced and schedule the next one.
   */
  private syncInBackground(): void {
    if (this.syncing || !this.unsynced || this.closed || this.broken) return;
    this.unsynced = false;
    this.syncing = new Promise<void>((resolve) =>
      fs.fdatasync(this.fd, (err) => {
        this.syncing = undefined;
        if (err) this.fail(err);
        else if (this.unsynced) this.scheduleSync();
        resolve();
      }),
    );
  }

  /** Zero-fills the chunk at the write position now (at open and rotation), where the background fill does not reach. */
  private fillFirstChunk(): void {
    const to = Math.min(this.segmentSize + ZERO_CHUNK, this.segmentBytes);
    if (this.zeroedTo >= to) return;
    writeZerosSync(this.fd, Math.max(this.zeroedTo, this.segmentSize), to, !this.noSync);
    this.zeroedTo = to;
  }

  /**
   * Keeps the segment zero-filled up to ZERO_AHEAD bytes ahead of the write position (not
   * past segmentBytes), one chunk at a time on the thread pool. A fill starts at least a
   * chunk ahead, so records wait for one only when they outran it by a chunk (the chunk at
   * the write position of a new segment is filled at once). A failure only means records
   * go to blocks not yet allocated, as an append would; it is tried again at the next write.
   */
  private zeroAhead(): void {
    if (this.zeroing || this.closed) return;
    const from = Math.max(this.zeroedTo, this.segmentSize + ZERO_CHUNK);
    const to = Math.min(this.segmentSize + ZERO_AHEAD, this.segmentBytes);
    if (to - from < ZERO_CHUNK / 2 && to < this.segmentBytes) return;
    if (from >= to) return;
    const fd = this.fd;
    const len = Math.min(ZERO_CHUNK, to - from);
    this.zeroingFrom = from;
    let written!: () => void;
    this.zeroWrite = new Promise<void>((resolve) => (written = resolve));
    this.zeroing = new Promise<void>((resolve) => {
      const done = (err: Error | null) => {
        if (!err) this.zeroedTo = from + len;
        resolve();
      };
      fs.write(fd, ZEROS, 0, len, from, (err) => {
        this.zeroWrite = undefined;
        written();
        if (err || this.noSync) done(err);
        else fs.fdatasync(fd, done);
      });
    }).then(() => {
      this.zeroing = undefined;
      if (this.zeroedTo === from + len) this.zeroAhead();
    });
  }

  /**
   * Waits until no zero fill and no scheduled sync runs on the current descriptor, before
   * it is closed (one fill may start another as it ends).
   */
  private async descriptorIdle(): Promise<void> {
    while (this.zeroing || this.syncing) await (this.zeroing ?? this.syncing);
  }

  private async rotate(start: number): Promise<void> {
    if (!this.noSync) await new Promise<void>((resolve, reject) => fs.fsync(this.fd, (err) => (err ? reject(err) : resolve())));
    await this.descriptorIdle();
    fs.closeSync(this.fd);
    const file = path.join(this.dir, segmentName(start));
    this.fd = fs.openSync(file, 'wx+');
    this.segments.push({ start, file });
    this.segmentSize = 0;
    this.zeroedTo = 0;
    this.fillFirstChunk();
    if (!this.noSync) {
      // Make the new file's name durable too.
      const dirFd = fs.openSync(this.dir, 'r');
      try {
        fs.fsyncSync(dirFd);
      } finally {
        fs.closeSync(dirFd);
      }
    }
  }
}

function segmentName(start: number): string {
  return start.toString(16).padStart(16, '0') + SUFFIX;
}

/** Writes zeros over [from, to) of `fd`, then (if `sync`) fdatasyncs. */
function writeZerosSync(fd: number, from: number, to: number, sync: boolean): void {
  for (let at = from; at < to; at += ZERO_CHUNK) fs.writeSync(fd, ZEROS, 0, Math.min(ZERO_CHUNK, to - at), at);
  if (sync) fs.fdatasyncSync(fd);
}

/** The end of the last byte of `data` at or after `from` that is not zero (`from` when there is none). */
function nonZeroEnd(data: Buffer, from: number): number {
  let end = data.length;
  // A block at a time from the end (a memcmp): a segment is mostly zeros after its records.
  const block = 64 << 10;
  while (end - block >= from && data.subarray(end - block, end).equals(ZEROS.subarray(0, block))) end -= block;
  while (end > from && data[end - 1] === 0) end--;
  return end;
}

/** Appends the good frames of `data` to `out`; returns the length of the good prefix. */
function readFrames(data: Buffer, base: number, out: WalRecord[]): number {
  let off = 0;
  while (off + HEADER <= data.length) {
    const len = data.readUInt32LE(off);
    if (off + HEADER + len > data.length) break;
    const sum = data.readUInt32LE(off + 4);
    if (crc32(data.subarray(off + 8, off + HEADER + len)) !== sum) break;
    out.push({ lsn: base + off, type: data[off + 8], payload: Buffer.from(data.subarray(off + HEADER, off + HEADER + len)) });
    off += HEADER + len;
  }
  return off;
}

/**
 * Writes the frames on this thread: a write into the page cache takes microseconds, less
 * than handing it to libuv's thread pool and back (on a busy core each hand-over is a
 * wake-up and a turn of the event loop; a Record call paid two, this and the fdatasync's).
 * Only the fdatasync, which waits for the disk, goes to the pool.
 */
function writevAll(fd: number, frames: Buffer[], position: number): void {
  let bufs = frames;
  let at = position;
  while (bufs.length > 0) {
    const written = fs.writevSync(fd, bufs.slice(0, 1024), at);
    at += written;
    let left = written;
    let i = 0;
    while (i < bufs.length && left >= bufs[i].length) left -= bufs[i++].length;
    bufs = bufs.slice(i);
    if (left > 0) bufs[0] = bufs[0].subarray(left);
  }
}

async function takeLock(dir: string): Promise<void> {
  const file = path.join(dir, LOCK);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fsp.writeFile(file, String(process.pid), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((await fsp.readFile(file, 'utf8').catch(() => '')).trim());
      if (owner && owner !== process.pid && isRunning(owner)) {
        throw new Error(`write-ahead log ${dir} is in use by process ${owner}: give each ingest replica its own WAL_DIR`);
      }
      await fsp.rm(file, { force: true });
    }
  }
  throw new Error(`could not lock the write-ahead log in ${dir}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
