/**
 * Reading a sampling heap profile (.heapprofile: the inspector's HeapProfiler.stopSampling,
 * Chrome DevTools' Memory tab), to tell where the garbage comes from: bytes allocated per
 * site (function file:line, with its caller), most first.
 */
import path from 'node:path';
import type inspector from 'node:inspector';

function allocationSites(profile: inspector.HeapProfiler.SamplingHeapProfile): { total: number; sites: { site: string; bytes: number }[] } {
  const bySite = new Map<string, number>();
  let total = 0;
  const walk = (node: inspector.HeapProfiler.SamplingHeapProfileNode, caller: string): void => {
    const f = node.callFrame;
    const here = `${f.functionName || '(anonymous)'} ${path.basename(f.url)}:${f.lineNumber + 1}`;
    if (node.selfSize > 0) {
      const key = `${here} <- ${caller}`;
      bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const c of node.children) walk(c, here);
  };
  walk(profile.head, '');
  const sites = [...bySite].map(([site, bytes]) => ({ site, bytes })).sort((a, b) => b.bytes - a.bytes);
  return { total, sites };
}

/** Prints the top sites; with `per` (lines fed, say) also bytes per one of them. */
export function printAllocationSites(profile: inspector.HeapProfiler.SamplingHeapProfile, top = 25, per?: { count: number; unit: string }): void {
  const { total, sites } = allocationSites(profile);
  const each = per ? `, ${(total / per.count).toFixed(1)} bytes a ${per.unit}` : '';
  console.log(`allocated ${(total / 1048576).toFixed(0)} MB${each}; by site (function file:line <- caller):`);
  for (const { site, bytes } of sites.slice(0, top)) {
    const perText = per ? `${(bytes / per.count).toFixed(2).padStart(7)} B/${per.unit}  ` : '';
    console.log(`  ${((100 * bytes) / total).toFixed(1).padStart(5)}%  ${(bytes / 1048576).toFixed(1).padStart(8)} MB  ${perText}${site}`);
  }
}
