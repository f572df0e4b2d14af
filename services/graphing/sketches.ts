// How the graphing service reads the rollup sketches. The sketch formats belong to ingest
// (services/kit/sketch/); this service only needs to merge a point's sketches and ask
// them one question, so it takes that as a small interface in its deps: kitSketchReader
// by default, a stand-in in tests. While the rollup tables have no sketch column (a
// database not yet migrated) percentiles are left out and a set's multi-bucket point
// shows its largest bucket's count (series.ts's documented fallback).
import { DistinctSketch, mergeSerializedDistinct } from '../kit/sketch/distinct.js';
import { mergeSerializedQuantiles, QuantileSketch } from '../kit/sketch/quantile.js';
import type { Quantiles, RollupRow, SeriesOptions } from './series.js';

export interface SketchReader {
  /** p50/p90/p99 of the merged quantile sketches; null when there are none. */
  quantiles(sketches: readonly Uint8Array[]): Quantiles | null;
  /** Distinct count of the merged distinct sketches. */
  distinct(sketches: readonly Uint8Array[]): number;
}

/** Merges serialized sketches pairwise, byte level (no sketch objects until the end). */
function mergeAll(blobs: readonly Uint8Array[], merge: (a: Uint8Array, b: Uint8Array) => Uint8Array): Uint8Array {
  let acc = blobs[0];
  for (let i = 1; i < blobs.length; i++) acc = merge(acc, blobs[i]);
  return acc;
}

/**
 * The sketches ingest writes: value stats' quantile sketches (DDSketch, 1% relative
 * accuracy) and set stats' distinct sketches (exact up to 256 members, then HyperLogLog).
 * A point's sketches merge exactly as ingest merges them, so a point of several buckets
 * answers as one bucket holding all their samples would.
 */
export const kitSketchReader: SketchReader = {
  quantiles(blobs) {
    const s = QuantileSketch.deserialize(mergeAll(blobs, mergeSerializedQuantiles));
    return s.count > 0 ? { p50: s.quantile(0.5), p90: s.quantile(0.9), p99: s.quantile(0.99) } : null;
  },
  distinct(blobs) {
    return DistinctSketch.deserialize(mergeAll(blobs, mergeSerializedDistinct)).count;
  },
};

function sketchesOf(rows: readonly RollupRow[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const r of rows) {
    if (r.sketch && r.sketch.length > 0) out.push(r.sketch);
    if (r.pending) out.push(...r.pending);
  }
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
