/**
 * Micro-benchmark of what a statsd timer sample costs the aggregator: QuantileAccumulator.add
 * with values that vary as latencies do (log-normal, median 20, a long tail), so a sketch
 * reaches the hundred or more bins a real timer has. bench:ingest and pipeline.ts send each
 * timer one constant value, where a sketch never has more than one bin.
 *
 *   npx tsx scripts/bench/timers.ts [--stats 10000] [--per-window 600] [--windows 5] [--rounds 5]
 *
 * With ingest's own node flags (deploy/services.ts), as the figures in docs/statsd-perf.md:
 *   node --min-semi-space-size=4 --max-semi-space-size=4 --single-threaded-gc --import tsx scripts/bench/timers.ts
 *
 * Each window gives every stat a fresh accumulator (a flush window's), feeds it --per-window
 * samples spread over the window (stat after stat, as lines arrive) and serializes it (what a
 * flush does). Prints per round ns per sample (CPU), the garbage collector's pauses and the
 * size of a serialized sketch (about 2-3 bytes a bin).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { QuantileAccumulator } from '../../services/kit/sketch/quantile.js';

const { values: args } = parseArgs({
  options: {
    stats: { type: 'string', default: '10000' },
    'per-window': { type: 'string', default: '600' },
    windows: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '5' },
  },
});
const STATS = Number(args.stats);
const PER_WINDOW = Number(args['per-window']);
const WINDOWS = Number(args.windows);
const ROUNDS = Number(args.rounds);

// A fixed pseudo-random log-normal stream (same values every run and round).
const VALUES = new Float64Array(1 << 20);
let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) + 0.5) / 4294967296;
for (let i = 0; i < VALUES.length; i++) {
  const z = Math.sqrt(-2 * Math.log(rand())) * Math.cos(2 * Math.PI * rand());
  VALUES[i] = Math.round(Math.exp(Math.log(20) + 1.2 * z) * 1000) / 1000;
}

let gcMs = 0;
let gcCount = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    gcCount++;
  }
}).observe({ entryTypes: ['gc'] });

function round(): { nsPerSample: number; bytes: number } {
  let v = 0;
  let bytes = 0;
  const cpu0 = process.cpuUsage();
  for (let w = 0; w < WINDOWS; w++) {
    const accs: QuantileAccumulator[] = Array.from({ length: STATS }, () => new QuantileAccumulator());
    for (let k = 0; k < PER_WINDOW; k++) {
      for (let s = 0; s < STATS; s++) {
        accs[s].add(VALUES[v]);
        v = (v + 1) & (VALUES.length - 1);
      }
    }
    for (const a of accs) bytes += a.serialize().length;
  }
  const cpu = process.cpuUsage(cpu0);
  const samples = WINDOWS * PER_WINDOW * STATS;
  return { nsPerSample: ((cpu.user + cpu.system) * 1000) / samples, bytes: bytes / (WINDOWS * STATS) };
}

console.log(`timers: ${STATS} stats, ${PER_WINDOW} samples each per window, ${WINDOWS} windows a round`);
for (let r = 0; r < ROUNDS; r++) {
  const gc0 = gcMs;
  const n0 = gcCount;
  const res = round();
  // The collector's entries are delivered on a later turn of the event loop.
  await new Promise((r) => setTimeout(r, 10));
  console.log(
    `round ${r}: ${res.nsPerSample.toFixed(1)} ns/sample CPU, gc ${(gcMs - gc0).toFixed(0)} ms in ${gcCount - n0} pauses, ${Math.round(res.bytes)} bytes a serialized sketch`,
  );
}
