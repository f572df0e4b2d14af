import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeSamples, DurableRecorder, type SampleTarget } from './durable.js';
import { WriteAheadLog } from './wal.js';

type Sample = ['add', number, number, number, number] | ['gauge', number, number, number, boolean] | ['set', number, number, string];

/** A target that only remembers what it was given, in order. */
class Tape implements SampleTarget {
  readonly samples: Sample[] = [];
  add(statId: number, timeMs: number, value: number, weight = 1): void {
    this.samples.push(['add', statId, timeMs, value, weight]);
  }
  addGauge(statId: number, timeMs: number, value: number, isDelta: boolean): void {
    this.samples.push(['gauge', statId, timeMs, value, isDelta]);
  }
  addSet(statId: number, timeMs: number, member: string): void {
    this.samples.push(['set', statId, timeMs, member]);
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

// No FLUSH record is logged here, so recovery never asks MySQL.
const noMysql = undefined as unknown as Pool;

describe('DurableRecorder log entries', () => {
  it('replays every sample as recorded: kinds, weights, times shared or not, across records and segments', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'osprey-durable-'));
    dirs.push(dir);
    const wal = await WriteAheadLog.open(dir, { noSync: true, segmentBytes: 1 << 16 });
    const live = new Tape();
    const rec = new DurableRecorder(wal, live, 1 << 30);
    const t0 = 1_764_000_000_123;
    let seed = 7;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 30_000; i++) {
      // Runs of samples with one time (a statsd read), then a new time; now and then a turn ends.
      const t = t0 + Math.floor(i / 37) * 1000 + (i % 500 === 0 ? 0.5 : 0);
      const id = 1 + Math.floor(rnd() * 2 ** 32 - 2);
      const r = rnd();
      if (r < 0.3) rec.add(id, t, rnd() * 1e6 - 5e5);
      else if (r < 0.4) rec.add(id, t, -0.25, 1 / 0.1);
      else if (r < 0.6) rec.addGauge(id, t, Math.floor(rnd() * 100) - 50, r < 0.5);
      else if (r < 0.99) rec.addSet(id, t, `user:${i} ü`);
      else rec.addSet(id, t, 'x'.repeat(i % 2 ? 40_000 + (i % 1000) : 65_535)); // longer than what is left of a record buffer, or than a whole one
      if (i % 1000 === 999) await new Promise((done) => setImmediate(done));
    }
    await rec.close();
    const reopened = await WriteAheadLog.open(dir, { noSync: true, segmentBytes: 1 << 16 });
    const replayed = new Tape();
    const report = await new DurableRecorder(reopened, replayed, 1 << 30).recover(noMysql);
    await reopened.close();
    expect(report.samples).toBe(30_000);
    expect(replayed.samples).toEqual(live.samples);
  });

  it('reads the entries earlier versions wrote, each with its own time', () => {
    // u8 op, u32 stat id, f64 time, then the op's fields.
    const entry = (op: number, statId: number, time: number, fields: Buffer) => {
      const head = Buffer.alloc(13);
      head[0] = op;
      head.writeUInt32LE(statId, 1);
      head.writeDoubleLE(time, 5);
      return Buffer.concat([head, fields]);
    };
    const doubles = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer);
    const member = Buffer.from([3, 0, ...Buffer.from('abc')]);
    const p = Buffer.concat([entry(1, 5, 1000, doubles(2.5, 4)), entry(2, 6, 2000, doubles(-1)), entry(3, 6, 3000, doubles(2)), entry(4, 7, 4000, member)]);
    const tape = new Tape();
    expect(decodeSamples(p, tape)).toBe(4);
    expect(tape.samples).toEqual([
      ['add', 5, 1000, 2.5, 4],
      ['gauge', 6, 2000, -1, false],
      ['gauge', 6, 3000, 2, true],
      ['set', 7, 4000, 'abc'],
    ]);
  });

  it('refuses a timed entry with no time before it, and an unknown op', () => {
    const untimed = Buffer.alloc(13);
    untimed[0] = 7;
    expect(() => decodeSamples(untimed, new Tape())).toThrow(/before any time/);
    const unknown = Buffer.alloc(13);
    unknown[0] = 99;
    expect(() => decodeSamples(unknown, new Tape())).toThrow(/unknown sample op 99/);
  });
});
