// Charts as SVG (ECharts' server-side renderer) and PNG (that SVG rasterised by resvg).
//
// Every call makes its own chart and disposes of it, so nothing is shared between
// requests. ECharts escapes the text it writes (names, title) into the SVG; nothing here
// escapes by hand, and a test holds ECharts to that.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg, type ResvgRenderOptions, renderAsync } from '@resvg/resvg-js';
import { LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TitleComponent } from 'echarts/components';
import * as echarts from 'echarts/core';
import { SVGRenderer } from 'echarts/renderers';
import { type Series, downsample } from './series.js';

// Registering components only changes ECharts' own registry, the same on every call; it
// is the library's required set-up, not state of ours.
echarts.use([LineChart, GridComponent, LegendComponent, TitleComponent, SVGRenderer]);

export const CHART_STYLES = ['standard', 'fill', 'mini', 'spark'] as const;
export type ChartStyle = (typeof CHART_STYLES)[number];

/** Embeds pass `style=` from a URL: anything unknown draws the standard chart. */
export function chartStyle(s: string | undefined | null): ChartStyle {
  return (CHART_STYLES as readonly string[]).includes(s ?? '') ? (s as ChartStyle) : 'standard';
}

export const MAX_CHART_SIDE = 2000;
export const DEFAULT_CHART_SIDE = 400;

/**
 * A width or height from a request. Anything that is not a whole number of pixels in
 * 1..2000 (missing, text, NaN, 0, 5000, 12.5) draws at 400: a bad size is common in
 * hand-written embed URLs, and a picture of a sane size serves them better than an error,
 * while the cap bounds the work one request can ask for.
 */
export function chartSide(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= MAX_CHART_SIDE ? n : DEFAULT_CHART_SIDE;
}

export interface ChartLine {
  name: string;
  /** Unix seconds, ascending. */
  times: readonly number[];
  /** null draws a break in the line. */
  values: readonly (number | null)[];
}

export interface ChartSpec {
  /** 1 to 3 lines, drawn solid. */
  series: readonly ChartLine[];
  /** Up to one per line, drawn dashed in the colour of the line at the same index. */
  comparisons?: readonly (ChartLine | null | undefined)[];
  title?: string;
  style?: ChartStyle;
  /** Pixels; see chartSide. */
  width?: unknown;
  height?: unknown;
}

export class ChartSpecError extends Error {
  override readonly name = 'ChartSpecError';
}

export const MAX_CHART_SERIES = 3;
const COLORS = ['#2563eb', '#dc2626', '#16a34a'] as const;
const FONT_FAMILY = 'sans-serif';

/** The line as [ms, value] pairs, thinned to what the plot's width can show (peaks kept). */
function linePoints(line: ChartLine, maxPoints: number): [number, number | null][] {
  if (line.times.length !== line.values.length) {
    throw new ChartSpecError(`series ${JSON.stringify(line.name)}: ${line.times.length} times but ${line.values.length} values`);
  }
  const asSeries: Series = {
    kind: 'value',
    fromSec: 0,
    toSec: 0,
    stepSec: 1,
    times: line.times as number[],
    values: line.values as (number | null)[],
  };
  const d = downsample(asSeries, maxPoints);
  const out = new Array<[number, number | null]>(d.times.length);
  for (let i = 0; i < d.times.length; i++) {
    const v = d.values[i];
    out[i] = [d.times[i] * 1000, v === null || !Number.isFinite(v) ? null : v];
  }
  return out;
}

export function chartOption(spec: ChartSpec, width: number, height: number): echarts.EChartsCoreOption {
  const style = spec.style ?? 'standard';
  if (spec.series.length < 1 || spec.series.length > MAX_CHART_SERIES) {
    throw new ChartSpecError(`a chart draws 1 to ${MAX_CHART_SERIES} series, not ${spec.series.length}`);
  }
  if ((spec.comparisons?.length ?? 0) > spec.series.length) {
    throw new ChartSpecError('more comparison series than series');
  }
  // Two points per pixel column is all a min/max line can show.
  const maxPoints = Math.max(2, width * 2);
  const small = style === 'mini' || style === 'spark';
  const lineWidth = small ? 1.5 : 2;
  const showTitle = Boolean(spec.title) && style !== 'spark';
  const showLegend = style === 'standard' || style === 'fill';
  const showAxes = style !== 'spark';
  const titleSize = style === 'mini' ? 11 : 15;

  const lines: object[] = [];
  spec.series.forEach((line, i) => {
    lines.push({
      type: 'line',
      name: line.name,
      data: linePoints(line, maxPoints),
      symbol: 'none',
      connectNulls: false,
      color: COLORS[i],
      lineStyle: { width: lineWidth, type: 'solid' },
      ...(style === 'fill' ? { areaStyle: { opacity: 0.2 } } : {}),
      z: 3,
    });
  });
  spec.comparisons?.forEach((line, i) => {
    if (!line) return;
    lines.push({
      type: 'line',
      name: line.name,
      data: linePoints(line, maxPoints),
      symbol: 'none',
      connectNulls: false,
      color: COLORS[i],
      lineStyle: { width: Math.max(1, lineWidth - 0.5), type: 'dashed', opacity: 0.6 },
      z: 2,
    });
  });

  const top = (showTitle ? titleSize + 14 : 0) + (small ? 4 : 10);
  const bottom = showLegend ? 34 : small ? 4 : 10;
  return {
    animation: false,
    useUTC: true,
    backgroundColor: '#ffffff',
    textStyle: { fontFamily: FONT_FAMILY },
    title: showTitle
      ? { text: spec.title, left: 'center', top: 4, textStyle: { fontSize: titleSize, fontWeight: 'bold', fontFamily: FONT_FAMILY } }
      : { show: false },
    legend: showLegend
      ? { show: true, bottom: 4, itemWidth: 18, itemHeight: 8, textStyle: { fontSize: 11, fontFamily: FONT_FAMILY } }
      : { show: false },
    grid: style === 'spark'
      ? { left: 2, right: 2, top: 2, bottom: 2 }
      : { left: small ? 4 : 10, right: small ? 8 : 16, top, bottom },
    xAxis: {
      type: 'time',
      show: showAxes,
      axisLabel: { fontSize: small ? 9 : 11, hideOverlap: true },
      splitLine: { show: false },
    },
    yAxis: {
      type: 'value',
      show: showAxes,
      scale: false,
      splitNumber: style === 'mini' ? 2 : 5,
      axisLabel: { fontSize: small ? 9 : 11 },
      splitLine: { show: style !== 'mini', lineStyle: { color: '#e5e7eb' } },
    },
    series: lines,
  };
}

export function renderSvg(spec: ChartSpec): string {
  const width = chartSide(spec.width);
  const height = chartSide(spec.height);
  const option = chartOption(spec, width, height);
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption(option);
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

// Font files tried in order: the first family found is the one text is drawn with.
// resvg loads and parses the files on every render, so a small face is much cheaper:
// Liberation Sans (140 KB a face, Arial's metrics) rasterised an 800x300 chart in about
// a third less time than DejaVu Sans (760 KB), most of what text costs at all.
const FONT_CANDIDATES: readonly { family: string; files: readonly string[] }[] = [
  { family: 'Liberation Sans', files: ['LiberationSans-Regular.ttf', 'LiberationSans-Bold.ttf'] },
  { family: 'DejaVu Sans', files: ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'] },
  { family: 'Noto Sans', files: ['NotoSans-Regular.ttf', 'NotoSans-Bold.ttf'] },
  { family: 'FreeSans', files: ['FreeSans.ttf', 'FreeSansBold.ttf'] },
];
export const FONT_DIRS: readonly string[] = ['/usr/share/fonts', '/usr/local/share/fonts'];

export interface ChartFonts {
  /** The family that `sans-serif` (all chart text) maps to; null if no known font was found. */
  family: string | null;
  files: string[];
}

function walk(dir: string, depth: number, found: Map<string, string>): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory() && depth < 4) walk(p, depth + 1, found);
    else if (!found.has(e.name)) found.set(e.name, p);
  }
}

/**
 * The font files the PNG renderer loads. Only a known sans family's regular and bold are
 * loaded, not every system font: resvg builds its font database on each render, and
 * scanning all system fonts would cost most of a render's time.
 */
export function findChartFonts(dirs: readonly string[] = FONT_DIRS): ChartFonts {
  const found = new Map<string, string>();
  for (const d of dirs) if (existsSync(d)) walk(d, 0, found);
  for (const c of FONT_CANDIDATES) {
    const files = c.files.map((f) => found.get(f)).filter((p): p is string => p !== undefined);
    if (files.length > 0) return { family: c.family, files };
  }
  return { family: null, files: [] };
}

let defaultFonts: ChartFonts | undefined;

function resvgOptions(fonts: ChartFonts): ResvgRenderOptions {
  const font: ResvgRenderOptions['font'] =
    fonts.family === null
      ? // No known font: let resvg look at whatever the system has. If it has none, the
        // PNG has lines and no text.
        { loadSystemFonts: true }
      : {
          loadSystemFonts: false,
          fontFiles: fonts.files,
          defaultFontFamily: fonts.family,
          sansSerifFamily: fonts.family,
        };
  return { font, fitTo: { mode: 'original' }, background: '#ffffff', logLevel: 'off', shapeRendering: 2, textRendering: 1 };
}

export interface RenderPngOptions {
  /** Fonts to draw text with; by default found once in FONT_DIRS and reused. */
  fonts?: ChartFonts;
}

export function renderPng(spec: ChartSpec, opts: RenderPngOptions = {}): Buffer {
  const svg = renderSvg(spec);
  const fonts = opts.fonts ?? (defaultFonts ??= findChartFonts());
  return new Resvg(svg, resvgOptions(fonts)).render().asPng();
}

/**
 * The same PNG, with the rasterising (about two thirds of the time) done on libuv's
 * thread pool instead of the event loop, so a server keeps answering while it draws.
 * The SVG step still runs on the caller's thread.
 */
export async function renderPngAsync(spec: ChartSpec, opts: RenderPngOptions & { signal?: AbortSignal } = {}): Promise<Buffer> {
  const svg = renderSvg(spec);
  const fonts = opts.fonts ?? (defaultFonts ??= findChartFonts());
  const image = await renderAsync(svg, resvgOptions(fonts), opts.signal ?? null);
  return image.asPng();
}
