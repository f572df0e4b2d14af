/**
 * Micro-benchmark of the statsd path after the socket: parser -> intake -> write-ahead log
 * record -> aggregator, in one process, for the 100,000-stat mix of bench:ingest (a quarter
 * each timers, counters, gauges and sets, 20 lines a datagram unless --per-packet). No flush: every
 * --window lines the aggregator's buckets are taken (as a flush takes them) and dropped, so
 * each stat's first sample in a window makes a new bucket, as under load. Prints ns per line
 * (wall and CPU) per round; the stats are created in a database of its own first.
 *
 *   npx tsx scripts/bench/pipeline.ts [--stats 100000] [--rounds 5] [--seconds 3] [--window 1000000] [--wal true] [--per-packet 20] [--heap-snapshot DIR] [--alloc-profile FILE]
 *
 * --alloc-profile samples every allocation of the timed rounds, the ones the collector has
 * taken back too (what the garbage is made of, not only what stays live), writes the
 * .heapprofile (Chrome DevTools' Memory tab opens it) and prints the sites that allocated most.
 * The sampling slows the rounds: their ns/line are not comparable with a run without it.
 */
import fs from 'node:fs';
import inspector from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { pino } from 'pino';
import { Aggregator } from '../../services/ingest/aggregator.js';
import { DurableRecorder } from '../../services/ingest/durable.js';
import { StatResolver } from '../../services/ingest/stat-resolver.js';
import { ListenerSink, ListenerStats, StatsdIntake } from '../../services/ingest/statsd/intake.js';
import { StatsdParser } from '../../services/ingest/statsd/parse.js';
import { WriteAheadLog } from '../../services/ingest/wal.js';
import { createAccount } from '../../services/kit/accounts.js';
import { createTestDatabase } from '../../services/kit/testing/db.js';
import { printAllocationSites } from './heap-profile.js';
import { statsdLine } from './statsd-load.js';

const { values: args } = parseArgs({
  options: {
    stats: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
    window: { type: 'string', default: '1000000' },
    wal: { type: 'string', default: 'true' },
    'per-packet': { type: 'string', default: '20' },
    'heap-snapshot': { type: 'string' },
    'alloc-profile': { type: 'string' },
  },
});
const STATS = Number(args.stats);
const PER_PACKET = Number(args['per-packet']);

const tdb = await createTestDatabase();
const walDir = fs.mkdtempSync(path.join(os.tmpdir(), 'osprey-pipeline-'));
try {
  const account = await createAccount(tdb.database.pool, 'pipeline@example.com');
  const aggregator = new Aggregator();
  const wal = args.wal === 'true' ? await WriteAheadLog.open(walDir) : undefined;
  const recorder = wal ? new DurableRecorder(wal, aggregator, 1 << 30) : undefined;
  const intake = new StatsdIntake({
    target: recorder ?? aggregator,
    stats: new StatResolver(tdb.database.pool),
    pool: tdb.database.pool,
    log: pino({ level: 'silent' }),
    tokenAuth: false,
    defaultAccount: account.id,
    maxPending: 10_000_000,
    tokenRecheckMs: 60_000,
    now: Date.now,
    onResolved: (id, kind) => aggregator.noteKind(id, kind),
  });
  const sink = new ListenerSink(intake, new ListenerStats('bench'));
  const parser = new StatsdParser({ maxLineLength: 8192, tokenMode: false });
  const packets: Buffer[] = [];
  for (let i = 0; i < STATS; i += PER_PACKET) {
    const lines: string[] = [];
    for (let j = i; j < Math.min(i + PER_PACKET, STATS); j++) lines.push(statsdLine(j));
    packets.push(Buffer.from(lines.join('\n')));
  }
  const feed = (n: number): number => {
    let lines = 0;
    const now = Date.now();
    for (let k = 0; k < n; k++) {
      const p = packets[k % packets.length];
      sink.begin(now, null, null);
      lines += parser.parse(p, 0, p.length, sink);
    }
    return lines;
  };
  // Every stat once, then wait for intake to create and learn them all.
  feed(packets.length);
  const started = Date.now();
  while (intake.pendingSamples > 0) {
    if (Date.now() - started > 300_000) throw new Error('the stats were not created in 5 minutes');
    await new Promise((r) => setTimeout(r, 50));
  }
  aggregator.take();
  console.log(`pipeline: ${STATS.toLocaleString('en-US')} stats known; ${PER_PACKET} lines a datagram, a window of ${args.window} lines, WAL ${args.wal}`);
  const perWindow = Math.ceil(Number(args.window) / PER_PACKET);
  const session = args['alloc-profile'] ? new inspector.Session() : null;
  if (session) {
    session.connect();
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  }
  let timedLines = 0;
  for (let round = 0; round < Number(args.rounds); round++) {
    const until = performance.now() + Number(args.seconds) * 1000;
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    let lines = 0;
    let inWindow = 0;
    while (performance.now() < until) {
      const n = Math.min(2000, perWindow - inWindow);
      lines += feed(n);
      inWindow += n;
      if (inWindow >= perWindow) {
        aggregator.take();
        inWindow = 0;
      }
      // A turn of the event loop, as between two reads of a socket: the recorder seals the
      // turn's samples into the log, which writes them and fdatasyncs within 100 ms.
      await new Promise((r) => setImmediate(r));
    }
    const wall = performance.now() - t0;
    const used = process.cpuUsage(cpu);
    timedLines += lines;
    console.log(`round ${round}: ${lines.toLocaleString('en-US')} lines, ${((wall * 1e6) / lines).toFixed(0)} ns/line wall, ${(((used.user + used.system) * 1e3) / lines).toFixed(0)} ns/line CPU`);
  }
  if (session) {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    fs.writeFileSync(args['alloc-profile']!, JSON.stringify(profile));
    printAllocationSites(profile, 25, { count: timedLines, unit: 'line' });
    session.disconnect();
  }
  if (args['heap-snapshot']) {
    // What stays live with every stat's state filled in (the window before the next take()).
    feed(packets.length);
    const file = v8.writeHeapSnapshot(path.join(args['heap-snapshot'], `pipeline-${Date.now()}.heapsnapshot`));
    const m = process.memoryUsage();
    console.log(`heap snapshot ${file}: heap used ${(m.heapUsed / 1048576).toFixed(0)} of ${(m.heapTotal / 1048576).toFixed(0)} MB, rss ${(m.rss / 1048576).toFixed(0)} MB`);
  }
  intake.close();
  await recorder?.close();
} finally {
  fs.rmSync(walDir, { recursive: true, force: true });
  await tdb.drop();
}
