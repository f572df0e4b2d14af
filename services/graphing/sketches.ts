// How the graphing service reads the rollup sketches. The sketch formats belong to ingest
// (services/kit/sketch/); this service only needs to merge a point's sketches and ask
// them one question, so it takes that as a small interface in its deps. Without one (or
// while the rollup tables have no sketch column) percentiles are left out and a set's
// multi-bucket point shows its largest bucket's count (series.ts's documented fallback).
import type { Quantiles, RollupRow, SeriesOptions } from './series.js';

export interface SketchReader {
  /** p50/p90/p99 of the merged quantile sketches; null when there are none. */
  quantiles(sketches: readonly Uint8Array[]): Quantiles | null;
  /** Distinct count of the merged distinct sketches. */
  distinct(sketches: readonly Uint8Array[]): number;
}

function sketchesOf(rows: readonly RollupRow[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const r of rows) if (r.sketch && r.sketch.length > 0) out.push(r.sketch);
  return out;
}

/** series.ts's per-point hooks, over the rows' sketch column. */
export function sketchHooks(reader: SketchReader): Required<Pick<SeriesOptions, 'quantiles' | 'distinct'>> {
  return {
    quantiles: (rows) => {
      const s = sketchesOf(rows);
      return s.length > 0 ? reader.quantiles(s) : null;
    },
    distinct: (rows) => {
      const s = sketchesOf(rows);
      return s.length > 0 ? reader.distinct(s) : 0;
    },
  };
}
