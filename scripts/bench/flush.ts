/**
 * Times one ingest flush of many live stats into MariaDB: the write pattern of
 * services/ingest/flusher.ts (numeric upserts, sketch read-merge-write, gauge deltas).
 *
 *   npx tsx scripts/bench/flush.ts [--stats 100000] [--rounds 12] [--every 1] [--no-prefill]
 *
 * The stats are a quarter timers (value stats, quantile sketches), half counters, 15% gauges
 * (half of them sent as deltas), 10% sets. Unless --no-prefill, a first flush writes an
 * earlier minute of the same hour with big sketches (~300 bins per timer, ~1,000 members per
 * set, so HyperLogLogs), so the timed rounds merge into 1h/1d rows the size they reach after
 * hours of traffic (the prefill is folded into them). Each timed round then adds a few
 * samples to every stat in the current minute and flushes, one second later on the
 * flusher's clock each time: round 0 creates the minute's rows and pending sketch rows,
 * the next ones merge into them, and the round that finds them DEFAULT_FOLD_AFTER_SEC old
 * folds every pending sketch into the 1m, 1h and 1d rows (here all at once; in real
 * traffic stats start at different times, so folds spread over the interval). The mean
 * over the rounds is the cost of a flush every second. With --every 10 (seconds between
 * rounds: with many live stats flushes are paced about that far apart) a pending row is
 * folded by the flush after the one that staged it, so every other round folds. Uses its own database on the local
 * server (DATABASE_URL's server, else 127.0.0.1:3306), dropped at the end.
 *
 * On a shared machine wall times swing with the load; CPU times do not. With MYSQLD_PID
 * set (the server's pid, same host) each round also prints the server's CPU time, e.g.
 * against a private server: MYSQLD_PID=$(cat .../mariadb.pid) DATABASE_URL=mysql://root@127.0.0.1:3417/
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Aggregator } from '../../services/ingest/aggregator.js';
import { DEFAULT_FOLD_AFTER_SEC, RollupFlusher } from '../../services/ingest/flusher.js';
import { KIND } from '../../services/kit/db/schema.js';
import { connectDatabase, withDatabase } from '../../services/kit/db/client.js';
import { dropDatabase, migrateDatabase } from '../../services/kit/db/migrate.js';

const { values: args } = parseArgs({
  options: {
    stats: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: String(DEFAULT_FOLD_AFTER_SEC + 2) },
    'no-prefill': { type: 'boolean', default: false },
    every: { type: 'string', default: '1' },
  },
});
const N = Number(args.stats);
const ROUNDS = Number(args.rounds);
/** Seconds between rounds on the flusher's clock. */
const EVERY_SEC = Number(args.every);

const server = process.env.DATABASE_URL ? withDatabase(process.env.DATABASE_URL, '') : 'mysql://root@127.0.0.1:3306/';
const url = withDatabase(server, 'osprey_bench_flush');
await dropDatabase(url);
await migrateDatabase(url);
const db = connectDatabase(url);

type Kind = 'counter' | 'value' | 'gauge' | 'set';
const kindOf = (i: number): Kind => {
  const m = i % 20;
  return m < 5 ? 'value' : m < 15 ? 'counter' : m < 18 ? 'gauge' : 'set';
};
// The stats rows, so the flusher finds each id's kind as in production.
for (let i = 1; i <= N; i += 10_000) {
  const rows = [];
  for (let j = i; j < Math.min(N + 1, i + 10_000); j++) rows.push([1, `s${j}`, KIND[kindOf(j)]]);
  await db.pool.query('INSERT INTO stats (account_id, name, kind) VALUES ?', [rows]);
}

const agg = new Aggregator();
let seed = 7;
const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const minute = Math.floor(Date.now() / 3_600_000) * 3_600_000 + 30 * 60_000; // mid-hour
let clock = minute;
const flusher = new RollupFlusher(db.pool, agg, 'bench', pino({ level: 'silent' }), new Registry(), () => clock);

function feed(timeMs: number, perStat: number, big: boolean): void {
  for (let i = 1; i <= N; i++) {
    switch (kindOf(i)) {
      case 'counter':
        for (let k = 0; k < perStat; k++) agg.add(i, timeMs + k, 1 + (k % 3));
        break;
      case 'value':
        for (let k = 0; k < (big ? 300 : perStat); k++) agg.add(i, timeMs + k, Math.exp(rnd() * 9)); // 1 .. 8,000 ms
        break;
      case 'gauge':
        for (let k = 0; k < perStat; k++) agg.addGauge(i, timeMs + k, i % 2 ? 1 : rnd() * 100, i % 2 === 1 && !big);
        break;
      case 'set':
        for (let k = 0; k < (big ? 1000 : perStat); k++) agg.addSet(i, timeMs + k, `user${Math.floor(rnd() * 100_000)}`);
        break;
    }
  }
}

const mb = (n: number) => (n / 1e6).toFixed(0);
/** The server's user+system CPU in ms, from /proc (clock ticks of 10 ms). */
function mysqldCpuMs(): number | undefined {
  const pid = process.env.MYSQLD_PID;
  if (!pid) return undefined;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
if (!args['no-prefill']) {
  feed(minute - 20 * 60_000, 1, true);
  const s = performance.now();
  await flusher.flush();
  const folded = await flusher.foldAll();
  console.log(`prefill: ${N} stats with big sketches in ${(performance.now() - s).toFixed(0)} ms (${folded} pending sketches folded)`);
}
/** With node --expose-gc: the heap still in use after a full collection. */
function heap(): string {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return '';
  gc();
  return `, heap after GC ${mb(process.memoryUsage().heapUsed)} MB`;
}
const totals = { ms: 0, node: 0, server: 0 };
for (let round = 0; round < ROUNDS; round++) {
  clock = minute + round * EVERY_SEC * 1000;
  feed(clock, 3, false);
  const cpu = process.cpuUsage();
  const dbCpu = mysqldCpuMs();
  const s = performance.now();
  await flusher.flush();
  const ms = performance.now() - s;
  const used = process.cpuUsage(cpu);
  const serverMs = dbCpu === undefined ? 0 : mysqldCpuMs()! - dbCpu;
  const db = dbCpu === undefined ? '' : `, server CPU ${serverMs} ms`;
  totals.ms += ms;
  totals.node += (used.user + used.system) / 1000;
  totals.server += serverMs;
  console.log(
    `round ${round}: flush of ${N} stats in ${ms.toFixed(0)} ms (node CPU ${((used.user + used.system) / 1000).toFixed(0)} ms${db}), rss ${mb(process.memoryUsage().rss)} MB${heap()}`,
  );
}
console.log(
  `mean of ${ROUNDS} rounds: ${(totals.ms / ROUNDS).toFixed(0)} ms, node CPU ${(totals.node / ROUNDS).toFixed(0)} ms` +
    (process.env.MYSQLD_PID ? `, server CPU ${(totals.server / ROUNDS).toFixed(0)} ms` : ''),
);
const [[sizes]] = (await db.pool.query(
  "SELECT SUM(LENGTH(sketch)) AS bytes, COUNT(sketch) AS n FROM rollups_1d",
)) as unknown as [[{ bytes: number; n: number }]];
console.log(`1d sketches: ${sizes.n} rows, ${mb(Number(sizes.bytes))} MB`);
await db.close();
await dropDatabase(url);
