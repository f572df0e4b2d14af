import { Resvg } from '@resvg/resvg-js';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { KIND } from '../kit/db/schema.js';

export interface SparklineRange {
  /** Unix seconds, inclusive. */
  startSec: number;
  /** Unix seconds, exclusive. */
  endSec: number;
}

/** Where reports get their small charts from. */
export interface SparklineRenderer {
  png(statId: number, range: SparklineRange): Promise<Buffer>;
}

export const SPARKLINE_WIDTH = 160;
export const SPARKLINE_HEIGHT = 40;

/**
 * A stand-in until GraphService.Render is callable: hourly buckets from rollups_1h drawn
 * as an SVG polyline and rasterised by resvg. Counters plot the sum per hour (no data is
 * 0), values the mean (no data is a gap).
 */
export class RollupSparklineRenderer implements SparklineRenderer {
  constructor(private readonly pool: Pool) {}

  async png(statId: number, range: SparklineRange): Promise<Buffer> {
    const [[stat]] = await this.pool.query<RowDataPacket[]>('SELECT kind FROM stats WHERE id = ?', [statId]);
    const counter = Number(stat?.kind) === KIND.counter;
    const [rows] = await this.pool.query<RowDataPacket[]>(
      'SELECT bucket, count, sum FROM rollups_1h WHERE stat_id = ? AND bucket >= ? AND bucket < ? ORDER BY bucket',
      [statId, range.startSec, range.endSec],
    );
    const byBucket = new Map(rows.map((r) => [Number(r.bucket), { count: Number(r.count), sum: Number(r.sum) }]));
    const points: Array<number | undefined> = [];
    for (let b = Math.floor(range.startSec / 3600) * 3600; b < range.endSec; b += 3600) {
      const r = byBucket.get(b);
      points.push(counter ? (r?.sum ?? 0) : r && r.count > 0 ? r.sum / r.count : undefined);
    }
    return sparklinePng(points);
  }
}

/** The SVG for a series; undefined points break the line. */
export function sparklineSvg(points: Array<number | undefined>, width = SPARKLINE_WIDTH, height = SPARKLINE_HEIGHT): string {
  const pad = 3;
  const known = points.filter((p): p is number => p !== undefined && Number.isFinite(p));
  const lo = known.length ? Math.min(...known) : 0;
  const hi = known.length ? Math.max(...known) : 1;
  const span = hi - lo || 1;
  const x = (i: number) => pad + (points.length > 1 ? (i / (points.length - 1)) * (width - 2 * pad) : (width - 2 * pad) / 2);
  const y = (v: number) => height - pad - ((v - lo) / span) * (height - 2 * pad);
  const runs: string[][] = [[]];
  points.forEach((p, i) => {
    if (p === undefined || !Number.isFinite(p)) {
      if (runs[runs.length - 1].length) runs.push([]);
      return;
    }
    runs[runs.length - 1].push(`${x(i).toFixed(1)},${y(p).toFixed(1)}`);
  });
  const lines = runs
    .filter((r) => r.length > 0)
    .map((r) => (r.length === 1 ? `<circle cx="${r[0].split(',')[0]}" cy="${r[0].split(',')[1]}" r="1.5" fill="#2563eb"/>` : `<polyline points="${r.join(' ')}" fill="none" stroke="#2563eb" stroke-width="1.5" stroke-linejoin="round"/>`))
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}"><rect width="100%" height="100%" fill="#ffffff"/>${lines}</svg>`;
}

export function sparklinePng(points: Array<number | undefined>, width = SPARKLINE_WIDTH, height = SPARKLINE_HEIGHT): Buffer {
  return new Resvg(sparklineSvg(points, width, height), { fitTo: { mode: 'original' } }).render().asPng();
}
