/**
 * Prints where a .cpuprofile (node --cpu-prof) spent its time: self time per function
 * and per package, the top N; or, for a .heapprofile (bench:ingest --alloc-profile,
 * pipeline.ts --alloc-profile), the N sites that allocated most bytes.
 * Usage: tsx scripts/bench/profile-summary.ts FILE [N] [--skip=S] [--last=S]
 *   --skip=S  leave out the first S seconds (start-up, warm-up)
 *   --last=S  only the last S seconds before the profile ended (the phase run last)
 */
import { readFileSync } from 'node:fs';
import { printAllocationSites } from './heap-profile.js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flag = (name: string) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? NaN);
const file = positional[0];
const top = Number(positional[1] ?? 30);
if (file.endsWith('.heapprofile')) {
  printAllocationSites(JSON.parse(readFileSync(file, 'utf8')), top);
  process.exit(0);
}
const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
const from = Math.max(Number.isNaN(flag('skip')) ? -Infinity : prof.startTime + flag('skip') * 1e6, Number.isNaN(flag('last')) ? -Infinity : prof.endTime - flag('last') * 1e6);
// A sample whose interval is far beyond the sampling interval spans a time the process did
// not run (SIGSTOP, as bench:ingest does to the servers it is not measuring): it is left out,
// or the function on the stack when the process stopped would be charged the whole pause.
const STOPPED_US = 100_000;
let at = prof.startTime;
let stoppedUs = 0;
prof.samples.forEach((id, i) => {
  const dt = prof.timeDeltas[i] ?? 0;
  at += dt;
  if (dt > STOPPED_US) stoppedUs += dt;
  else if (at >= from) self.set(id, (self.get(id) ?? 0) + dt);
});
// Idle time is left out: percentages are of the time the process was busy.
for (const [id] of self) if (byId.get(id)!.callFrame.functionName === '(idle)') self.delete(id);
const total = [...self.values()].reduce((a, b) => a + b, 0);
const where = (url: string) => {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return url;
  if (url === '') return '(native)';
  return url.replace(/^.*\/(services|scripts|gen)\//, '$1/');
};
const fn = new Map<string, number>();
const pkg = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  const key = `${n.callFrame.functionName || '(anonymous)'}  ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + us);
  const p = where(n.callFrame.url).split(':')[0];
  pkg.set(p, (pkg.get(p) ?? 0) + us);
}
const pct = (us: number) => ((100 * us) / total).toFixed(1).padStart(5) + '%';
console.log(`${file}: ${(total / 1e6).toFixed(1)} s busy${stoppedUs > 0 ? ` (${(stoppedUs / 1e6).toFixed(1)} s stopped, left out)` : ''}`);
console.log('-- by package/file');
for (const [k, v] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(pct(v), k);
console.log('-- by function (self)');
for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(pct(v), k);
