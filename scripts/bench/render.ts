// Chart rendering cost: a 1-year chart of 3 series, 1,000 points each, to SVG and to PNG.
// Run: npx tsx scripts/bench/render.ts [iterations] [width] [height]
import { performance } from 'node:perf_hooks';
import { type ChartLine, type ChartSpec, renderPng, renderPngAsync, renderSvg } from '../../services/graphing/render.js';

const iterations = Number(process.argv[2] ?? 200);
const width = Number(process.argv[3] ?? 800);
const height = Number(process.argv[4] ?? 300);

function yearLine(name: string, seed: number): ChartLine {
  const n = 1_000;
  const from = 1_700_000_000;
  const step = Math.floor((365 * 86_400) / n);
  let x = 100 + seed * 50;
  let r = seed * 7919 + 1;
  const rand = () => ((r = (r * 48_271) % 2_147_483_647) / 2_147_483_647);
  const times = Array.from({ length: n }, (_, i) => from + i * step);
  const values = times.map((_, i) => {
    x = Math.max(0, x + (rand() - 0.5) * 20);
    return i % 97 === 0 ? null : x + 30 * Math.sin(i / 40);
  });
  return { name: `stat ${seed}`, times, values };
}

const spec: ChartSpec = {
  title: 'one year, three stats',
  style: 'standard',
  width,
  height,
  series: [yearLine('a', 1), yearLine('b', 2), yearLine('c', 3)],
};

async function measure(label: string, f: () => unknown): Promise<void> {
  for (let i = 0; i < 10; i++) await f(); // warm up: JIT, font files in the page cache
  const ms: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await f();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(1);
  console.log(`${label.padEnd(9)} n=${iterations} ${width}x${height}  p50 ${q(0.5)} ms  p99 ${q(0.99)} ms  max ${q(1)} ms`);
}

await measure('svg', () => renderSvg(spec));
await measure('png', () => renderPng(spec));
await measure('png-async', () => renderPngAsync(spec));
