import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../kit/testing/db.js';
import { DurableRecorder, type SampleTarget } from './durable.js';
import { UNAWAITED_SYNC_MS, WalFullError, WriteAheadLog } from './wal.js';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), 'osprey-wal-'));
  dirs.push(d);
  return d;
}
/** The fdatasync spies of the running test (countSyncs), put back after it even when it failed. */
const spies: { restore(): void }[] = [];
afterEach(async () => {
  for (const s of spies.splice(0)) s.restore();
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

const text = (r: { payload: Buffer }) => r.payload.toString();

/** A segment's bytes up to its last non-zero one: its records (the file goes on with the zeros written ahead of them). */
async function written(file: string): Promise<Buffer> {
  const data = await fs.readFile(file);
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  return data.subarray(0, end);
}

describe('WriteAheadLog', () => {
  it('keeps records across a reopen, in order, at their LSNs', async () => {
    const dir = await tempDir();
    const wal = await WriteAheadLog.open(dir);
    const a = wal.append(1, Buffer.from('alpha'));
    const b = wal.append(2, Buffer.from('beta'));
    await wal.durable();
    expect([a, b]).toEqual([0, 14]);
    expect(wal.end).toBe(27);
    await wal.close();

    const again = await WriteAheadLog.open(dir);
    const recs = again.takeReplayed();
    expect(recs.map((r) => [r.lsn, r.type, text(r)])).toEqual([
      [0, 1, 'alpha'],
      [14, 2, 'beta'],
    ]);
    expect(again.end).toBe(27);
    expect(again.append(1, Buffer.from('gamma'))).toBe(27);
    await again.close();
  });

  it('writes a record nobody awaits into the file within the tick (a crashed process loses none)', async () => {
    const dir = await tempDir();
    const wal = await WriteAheadLog.open(dir);
    wal.append(1, Buffer.from('unawaited'));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.wal'));
    expect((await written(path.join(dir, files[0]))).length).toBe(9 + 'unawaited'.length);
    // After the deferred fdatasync, a waiter with nothing new to write is still answered.
    await new Promise((r) => setTimeout(r, UNAWAITED_SYNC_MS + 50));
    await wal.durable();
    await wal.close();
  });

  it('writes records nobody waits for, and every durable() waiter is answered', async () => {
    const dir = await tempDir();
    const wal = await WriteAheadLog.open(dir);
    for (let i = 0; i < 100; i++) wal.append(1, Buffer.from(`line ${i}`));
    const waits = [];
    for (let i = 0; i < 50; i++) {
      wal.append(1, Buffer.from(`more ${i}`));
      waits.push(wal.durable());
    }
    await Promise.all(waits);
    wal.append(1, Buffer.from('unawaited'));
    // The append schedules its own write: the file grows to the log's end without a durable() call.
    const file = path.join(dir, '0000000000000000.wal');
    for (let i = 0; i < 500 && (await written(file)).length < wal.end; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await written(file)).length).toBe(wal.end);
    await wal.close();
  });

  it('answers written() once records are in the file, before their fdatasync, which follows within UNAWAITED_SYNC_MS', async () => {
    const syncs = countSyncs();
    const dir = await tempDir();
    const wal = await fillsDone(await WriteAheadLog.open(dir));
    const before = syncs.count;
    wal.append(1, Buffer.from('acknowledged'));
    await wal.written();
    const file = path.join(dir, '0000000000000000.wal');
    expect((await written(file)).length).toBe(wal.end);
    expect(syncs.count).toBe(before);
    for (let i = 0; i < 100 && syncs.count === before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(syncs.count).toBe(before + 1);
    // durable() syncs before it answers.
    wal.append(1, Buffer.from('synced'));
    await wal.durable();
    expect(syncs.count).toBe(before + 2);
    await wal.close();
  });

  it('lets written() through while the scheduled fdatasync runs, and holds durable() until that sync is done', async () => {
    const syncs = countSyncs();
    const dir = await tempDir();
    const wal = await fillsDone(await WriteAheadLog.open(dir));
    wal.append(1, Buffer.from('first'));
    await wal.written();
    syncs.hold = true;
    for (let i = 0; i < 100 && syncs.held.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(syncs.held).toHaveLength(1); // the scheduled sync, now stuck on the "disk"
    let durable = false;
    const d = wal.durable().then(() => (durable = true));
    wal.append(1, Buffer.from('second'));
    await wal.written();
    expect((await written(path.join(dir, '0000000000000000.wal'))).length).toBe(wal.end);
    await new Promise((r) => setTimeout(r, 20));
    expect(durable).toBe(false);
    syncs.hold = false;
    syncs.release();
    await d;
    // 'second' was written after the held sync began: durable() synced again for it.
    expect(syncs.count).toBeGreaterThanOrEqual(2);
    await wal.close();
  });

  it('rotates to a new segment only once a scheduled fdatasync on the old one is done', async () => {
    const syncs = countSyncs();
    const dir = await tempDir();
    const wal = await fillsDone(await WriteAheadLog.open(dir, { segmentBytes: 4096 }));
    const payload = Buffer.alloc(1000, 7);
    for (let i = 0; i < 5; i++) wal.append(1, payload); // the first segment is full
    await wal.written(); // its fdatasync is scheduled
    syncs.hold = true;
    wal.append(1, payload); // starts the second segment: rotation fsyncs the first
    let done = false;
    const sixth = wal.written().then(() => (done = true));
    // The rotation's fsync, then the scheduled fdatasync on the same descriptor, both on the "disk".
    for (let i = 0; i < 100 && syncs.held.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(syncs.held.map((h) => h.call)).toEqual(['fsync', 'fdatasync']);
    syncs.hold = false;
    syncs.release('fsync');
    await new Promise((r) => setTimeout(r, 20));
    // The old descriptor stays open while its fdatasync runs (closed under it, the sync would fail with EBADF).
    expect(done).toBe(false);
    syncs.release('fdatasync');
    await sixth;
    await wal.durable();
    await wal.close();
    expect((await fs.readdir(dir)).filter((f) => f.endsWith('.wal')).length).toBe(2);
    const again = await WriteAheadLog.open(dir, { segmentBytes: 4096 });
    expect(again.takeReplayed()).toHaveLength(6);
    await again.close();
  });

  it('refuses everything once a scheduled fdatasync fails', async () => {
    const syncs = countSyncs();
    const dir = await tempDir();
    const wal = await WriteAheadLog.open(dir);
    syncs.fail = true;
    wal.append(1, Buffer.from('doomed'));
    await wal.written();
    let refused: unknown;
    for (let i = 0; i < 100 && !refused; i++) {
      await new Promise((r) => setTimeout(r, 10));
      await wal.written().catch((err) => (refused = err));
    }
    expect(String(refused)).toMatch(/write-ahead log write failed: EIO/);
    expect(() => wal.append(1, Buffer.from('more'))).toThrow(/write-ahead log write failed/);
    await expect(wal.durable()).rejects.toThrow(/EIO/);
    syncs.fail = false;
    await wal.close();
  });

  it('cuts a torn or corrupt tail and goes on after the last good record', async () => {
    const dir = await tempDir();
    const wal = await WriteAheadLog.open(dir);
    wal.append(1, Buffer.from('kept'));
    await wal.durable();
    await wal.close();
    const file = path.join(dir, '0000000000000000.wal');
    const good = (await written(file)).length;
    // Half a frame (a crash mid-write) over the zeros after the records.
    const h = await fs.open(file, 'r+');
    await h.write(Buffer.from([50, 0, 0, 0, 1, 2]), 0, 6, good);
    await h.close();
    const again = await WriteAheadLog.open(dir);
    expect(again.takeReplayed().map(text)).toEqual(['kept']);
    expect(again.end).toBe(good);
    // The torn bytes are zeroed, not left for a shorter record to be followed by.
    expect((await written(file)).length).toBe(good);
    again.append(1, Buffer.from('next'));
    await again.close();
    const records = await written(file);
    const bad = Buffer.from(await fs.readFile(file));
    bad[records.length - 1] ^= 0xff; // flip a byte of 'next': a wrong checksum
    await fs.writeFile(file, bad);
    const third = await WriteAheadLog.open(dir);
    expect(third.takeReplayed().map(text)).toEqual(['kept']);
    await third.close();
  });

  it('writes records over zeros it wrote ahead, and a torn record never shows through a later, shorter one', async () => {
    const dir = await tempDir();
    const file = path.join(dir, '0000000000000000.wal');
    const wal = await WriteAheadLog.open(dir);
    wal.append(1, Buffer.from('kept'));
    await wal.durable();
    await wal.close();
    // The file is zero-filled well past its one record: later records change no file size.
    expect((await fs.stat(file)).size).toBeGreaterThanOrEqual(1 << 20);
    // A crash while a long record was written: its header and half its payload reached the disk.
    const long = Buffer.alloc(9 + 1000, 7);
    long.writeUInt32LE(1000, 0);
    const h = await fs.open(file, 'r+');
    await h.write(long, 0, 9 + 500, 13);
    await h.close();
    const again = await WriteAheadLog.open(dir);
    expect(again.takeReplayed().map(text)).toEqual(['kept']);
    again.append(1, Buffer.from('x'));
    await again.durable();
    await again.close();
    // Nothing of the torn record is left after the shorter one (not only after a reopen cleans it).
    expect((await written(file)).length).toBe(again.end);
    const third = await WriteAheadLog.open(dir);
    expect(third.takeReplayed().map(text)).toEqual(['kept', 'x']);
    expect((await written(file)).length).toBe(third.end);
    await third.close();
  });

  it('keeps a batch larger than the zero-fill chunk intact while fills run ahead of it', async () => {
    const dir = await tempDir();
    const wal = await WriteAheadLog.open(dir);
    // 3 MB in one batch: it reaches past the chunk being filled and the ones that follow.
    const payloads = Array.from({ length: 48 }, (_, i) => Buffer.alloc(64 << 10, i + 1));
    for (const p of payloads) wal.append(1, p);
    await wal.durable();
    for (const p of payloads) wal.append(2, p);
    await wal.durable();
    await wal.close();
    const again = await WriteAheadLog.open(dir);
    const recs = again.takeReplayed();
    expect(recs.length).toBe(96);
    expect(recs.every((r, i) => r.payload.equals(payloads[i % 48]))).toBe(true);
    await again.close();
  });

  it('is backlogged while more than backlogBytes wait to be written, and relieves its waiters once they are', async () => {
    const dir = await tempDir();
    const wal = await WriteAheadLog.open(dir, { backlogBytes: 100_000 });
    let relieved = 0;
    wal.onceRelieved(() => relieved++);
    expect(relieved).toBe(1); // not backlogged: at once
    wal.append(1, Buffer.alloc(60_000, 1));
    expect(wal.backlogged).toBe(false);
    wal.append(1, Buffer.alloc(60_000, 2));
    expect(wal.backlogged).toBe(true);
    wal.onceRelieved(() => relieved++);
    const written = new Promise<void>((r) => wal.onceRelieved(r));
    expect(relieved).toBe(1);
    await written;
    expect(wal.backlogged).toBe(false);
    expect(relieved).toBe(2);
    // Backlogged again, then closed: its waiters are let go (close writes what is queued).
    wal.append(1, Buffer.alloc(120_000, 3));
    expect(wal.backlogged).toBe(true);
    const released = new Promise<void>((r) => wal.onceRelieved(r));
    await wal.close();
    await released;
    const again = await WriteAheadLog.open(dir);
    expect(again.takeReplayed().map((r) => [r.payload.length, r.payload[0]])).toEqual([
      [60_000, 1],
      [60_000, 2],
      [120_000, 3],
    ]);
    await again.close();
  });

  it('refuses to start on a segment that is not the last and has bytes after its records', async () => {
    const dir = await tempDir();
    const wal = await WriteAheadLog.open(dir, { segmentBytes: 100 });
    for (let i = 0; i < 10; i++) {
      wal.append(1, Buffer.alloc(20, i + 1));
      await wal.durable();
    }
    await wal.close();
    const first = path.join(dir, '0000000000000000.wal');
    const records = await written(first);
    const bad = Buffer.from(await fs.readFile(first));
    bad[records.length - 1] ^= 0xff;
    await fs.writeFile(first, bad);
    await expect(WriteAheadLog.open(dir, { segmentBytes: 100 })).rejects.toThrow(/is corrupt at byte \d+ and is not the last one/);
  });

  it('rotates segments and deletes the ones wholly below a released LSN', async () => {
    const dir = await tempDir();
    const wal = await WriteAheadLog.open(dir, { segmentBytes: 100 });
    const lsns: number[] = [];
    for (let i = 0; i < 30; i++) {
      lsns.push(wal.append(1, Buffer.alloc(20, i)));
      await wal.durable();
    }
    const before = (await fs.readdir(dir)).filter((n) => n.endsWith('.wal'));
    expect(before.length).toBeGreaterThan(5);
    await wal.release(lsns[20]);
    const after = (await fs.readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
    expect(after.length).toBeLessThan(before.length);
    expect(parseInt(after[0].slice(0, 16), 16)).toBeLessThanOrEqual(lsns[20]);
    await wal.close();
    const again = await WriteAheadLog.open(dir, { segmentBytes: 100 });
    const recs = again.takeReplayed();
    // Everything from the first kept segment on, including record 20 and all after it.
    expect(recs.map((r) => r.lsn)).toEqual(lsns.filter((l) => l >= again.start));
    expect(recs.some((r) => r.lsn === lsns[20])).toBe(true);
    expect(recs[recs.length - 1].payload[0]).toBe(29);
    await again.close();
  });

  it('refuses a directory another live process holds, and takes over a dead one\'s', async () => {
    const dir = await tempDir();
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await fs.writeFile(path.join(dir, 'LOCK'), String(holder.pid));
      await expect(WriteAheadLog.open(dir)).rejects.toThrow(/in use by process .*give each ingest replica its own WAL_DIR/);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    const wal = await WriteAheadLog.open(dir);
    expect(await fs.readFile(path.join(dir, 'LOCK'), 'utf8')).toBe(String(process.pid));
    await wal.close();
  });
});

/** Collects what is replayed, in order. */
class Collect implements SampleTarget {
  calls: unknown[][] = [];
  add(statId: number, timeMs: number, value: number, weight = 1) {
    this.calls.push(['add', statId, timeMs, value, weight]);
  }
  addGauge(statId: number, timeMs: number, value: number, isDelta: boolean) {
    this.calls.push(['gauge', statId, timeMs, value, isDelta]);
  }
  addSet(statId: number, timeMs: number, member: string) {
    this.calls.push(['set', statId, timeMs, member]);
  }
}

/** The log once its zero fills ahead of the records (each with an fdatasync of its own) are done. */
async function fillsDone(wal: WriteAheadLog): Promise<WriteAheadLog> {
  await (wal as unknown as { descriptorIdle(): Promise<void> }).descriptorIdle();
  return wal;
}

/**
 * Counts the log's fdatasync calls (wal.ts calls them, and fsync, through the `node:fs`
 * default export); `hold` keeps their callbacks (fsync's too) until release(), `fail` answers
 * fdatasync with EIO.
 */
function countSyncs() {
  const real = { fdatasync: fsSync.fdatasync, fsync: fsSync.fsync };
  type Call = 'fdatasync' | 'fsync';
  const state = {
    count: 0,
    hold: false,
    fail: false,
    held: [] as { call: Call; go: () => void }[],
    /** Lets the held calls (of one kind, or all) go on. */
    release(call?: Call) {
      const go = state.held.filter((h) => call === undefined || h.call === call);
      state.held = state.held.filter((h) => !go.includes(h));
      for (const h of go) h.go();
    },
    restore() {
      state.release();
      fsSync.fdatasync = real.fdatasync;
      fsSync.fsync = real.fsync;
    },
  };
  const wrap = (call: Call) =>
    ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
      if (call === 'fdatasync') state.count++;
      if (call === 'fdatasync' && state.fail) {
        const err = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        setImmediate(() => cb(err));
        return;
      }
      if (state.hold) state.held.push({ call, go: () => real[call](fd, cb) });
      else real[call](fd, cb);
    }) as typeof fsSync.fdatasync;
  fsSync.fdatasync = wrap('fdatasync');
  fsSync.fsync = wrap('fsync');
  spies.push(state);
  return state;
}

describe('DurableRecorder', () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterAll(async () => {
    await tdb?.drop();
  });

  async function open(dir: string, budget = 1 << 30) {
    const wal = await WriteAheadLog.open(dir);
    const target = new Collect();
    return { wal, target, rec: new DurableRecorder(wal, target, budget) };
  }

  it('passes samples through and replays exactly those above the last committed cut', async () => {
    const dir = await tempDir();
    const t0 = 1_790_000_000_000;
    let { wal, target, rec } = await open(dir);
    rec.add(1, t0, 2.5, 4);
    rec.addGauge(2, t0 + 1, -3, true);
    rec.addSet(3, t0 + 2, 'user:42 é');
    expect(target.calls).toHaveLength(3);
    await rec.durable();
    // Flush 1 holds those three and commits, with its checkpoint logged.
    const cut1 = rec.cut();
    await rec.intend('flush-1', cut1);
    await tdb.database.pool.query("INSERT INTO flushes (id, instance, points) VALUES ('flush-1', 't', 3)");
    await rec.committed(cut1);
    // Flush 2 commits in MySQL, but the replica dies before logging the checkpoint.
    rec.add(1, t0 + 3, 7);
    const cut2 = rec.cut();
    await rec.intend('flush-2', cut2);
    await tdb.database.pool.query("INSERT INTO flushes (id, instance, points) VALUES ('flush-2', 't', 1)");
    // Flush 3 is logged but never reaches MySQL; then more samples, then a crash.
    rec.addGauge(2, t0 + 4, 10, false);
    const cut3 = rec.cut();
    await rec.intend('flush-3', cut3);
    rec.addSet(3, t0 + 5, 'b');
    await rec.durable();
    rec.add(9, t0 + 6, 1); // not awaited: close() still writes it
    await rec.close();

    ({ wal, target, rec } = await open(dir));
    const report = await rec.recover(tdb.database.pool);
    expect(report.fromLsn).toBe(cut2);
    expect(target.calls.slice(0, 2)).toEqual([
      ['gauge', 2, t0 + 4, 10, false],
      ['set', 3, t0 + 5, 'b'],
    ]);
    // close() wrote the last, unawaited sample too.
    expect(target.calls.slice(2)).toEqual([['add', 9, t0 + 6, 1, 1]]);
    expect(report.samples).toBe(3);
    await wal.close();

    // The recovery logged its starting cut: a second restart replays the same, without MySQL.
    ({ wal, target, rec } = await open(dir));
    await tdb.database.pool.query("DELETE FROM flushes WHERE id = 'flush-2'");
    const again = await rec.recover(tdb.database.pool);
    expect(again.fromLsn).toBe(cut2);
    expect(target.calls).toHaveLength(3);
    await wal.close();
  });

  it('answers accepted() after the write by default, and after the fdatasync with WAL_SYNC=ack', async () => {
    const syncs = countSyncs();
    for (const mode of ['interval', 'ack'] as const) {
      const dir = await tempDir();
      const wal = await fillsDone(await WriteAheadLog.open(dir));
      const rec = new DurableRecorder(wal, new Collect(), 1 << 30, mode);
      syncs.hold = true;
      rec.add(1, 1_790_000_000_000, 1);
      let accepted = false;
      const a = rec.accepted().then(() => (accepted = true));
      await new Promise((r) => setTimeout(r, 20));
      expect(accepted).toBe(mode === 'interval');
      syncs.hold = false;
      syncs.release();
      await a;
      expect((await written(path.join(dir, '0000000000000000.wal'))).length).toBe(wal.end);
      await wal.close();
    }
  });

  it('refuses samples beyond its budget until a flush commits', async () => {
    const dir = await tempDir();
    const { wal, rec } = await open(dir, 200);
    for (let i = 0; i < 14; i++) rec.add(1, 1_790_000_000_000, i); // their time (9 bytes), 14 × 13 bytes: 191, within 200
    rec.checkRoom();
    rec.add(1, 1_790_000_000_000, 7); // 204 bytes wait for MySQL
    expect(() => rec.checkRoom()).toThrow(WalFullError);
    const cut = rec.cut();
    await rec.intend('flush-budget', cut);
    await rec.committed(cut);
    expect(() => rec.checkRoom()).not.toThrow();
    await wal.close();
  });
});
