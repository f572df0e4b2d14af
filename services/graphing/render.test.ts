import { describe, expect, it } from 'vitest';
import {
  type ChartLine,
  type ChartStyle,
  ChartSpecError,
  chartSide,
  chartStyle,
  findChartFonts,
  renderPng,
  renderPngAsync,
  renderSvg,
} from './render.js';

const T0 = 1_700_000_000;
const line = (name: string, n = 50, f: (i: number) => number | null = (i) => Math.sin(i / 5) * 10 + 20): ChartLine => ({
  name,
  times: Array.from({ length: n }, (_, i) => T0 + i * 60),
  values: Array.from({ length: n }, (_, i) => f(i)),
});

/** The paths ECharts draws for series: each series sits in its own clipped group. */
function seriesPaths(svg: string): { lines: string[]; areas: string[] } {
  const tags = [...svg.matchAll(/<g clip-path="url\(#[^"]+\)">\s*<path ([^>]*)>/g)].map((m) => m[1]);
  return {
    lines: tags.filter((a) => / fill="none"/.test(a) && / stroke="#/.test(a)),
    areas: tags.filter((a) => !/ fill="none"/.test(a)),
  };
}

function pngSize(png: Buffer): { width: number; height: number } {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('renderSvg', () => {
  it.each([1, 2, 3])('draws %i series as that many stroked paths', (n) => {
    const svg = renderSvg({ series: Array.from({ length: n }, (_, i) => line(`s${i}`)), width: 300, height: 150 });
    expect(svg.startsWith('<svg')).toBe(true);
    const { lines } = seriesPaths(svg);
    expect(lines).toHaveLength(n);
    expect(lines.some((a) => a.includes('stroke-dasharray'))).toBe(false);
  });

  it('draws the comparison dashed, one path per comparison', () => {
    const svg = renderSvg({ series: [line('a'), line('b')], comparisons: [line('a before'), null], width: 300, height: 150 });
    const { lines } = seriesPaths(svg);
    expect(lines).toHaveLength(3);
    expect(lines.filter((a) => a.includes('stroke-dasharray'))).toHaveLength(1);
  });

  it('fill adds an area under each series', () => {
    const { lines, areas } = seriesPaths(renderSvg({ series: [line('a'), line('b')], style: 'fill' }));
    expect(lines).toHaveLength(2);
    expect(areas).toHaveLength(2);
  });

  it('spark draws only the line: no text at all', () => {
    const svg = renderSvg({ series: [line('a')], title: 'hidden', style: 'spark', width: 120, height: 30 });
    expect(seriesPaths(svg).lines).toHaveLength(1);
    expect(svg).not.toContain('<text');
  });

  it('mini keeps a title and axes but no legend', () => {
    const svg = renderSvg({ series: [line('legend-name')], title: 'tiny', style: 'mini', width: 200, height: 100 });
    expect(svg).toContain('>tiny</text>');
    expect(svg).not.toContain('legend-name');
    expect(svg).toContain('<text');
  });

  it('escapes names and titles: no markup gets through', () => {
    const evil = `<script>alert(1)</script>&"'`;
    const svg = renderSvg({ series: [line(evil)], comparisons: [line(evil)], title: evil });
    expect(svg).not.toMatch(/<script/i);
    expect(svg).toContain('&lt;script&gt;alert(1)&lt;/script&gt;&amp;');
    expect(svg).not.toContain(`&"'`);
  });

  it('breaks the line at gaps and survives non-finite values', () => {
    const svg = renderSvg({ series: [line('gappy', 20, (i) => (i === 10 ? null : i === 11 ? Infinity : i))] });
    const [path] = seriesPaths(svg).lines;
    expect(path.match(/d="([^"]+)"/)![1].match(/M/g)!.length).toBe(2);
  });

  it('refuses 0 or more than 3 series, and ragged lines', () => {
    expect(() => renderSvg({ series: [] })).toThrow(ChartSpecError);
    expect(() => renderSvg({ series: [line('a'), line('b'), line('c'), line('d')] })).toThrow(ChartSpecError);
    expect(() => renderSvg({ series: [{ name: 'x', times: [1, 2], values: [1] }] })).toThrow(ChartSpecError);
  });

  it('thins a long line to about two points per pixel, keeping its peaks', () => {
    const n = 20_000;
    const svg = renderSvg({ series: [line('long', n, (i) => (i === 12_345 ? 1000 : i === 777 ? -1000 : i % 7))], width: 100, height: 100 });
    const d = seriesPaths(svg).lines[0].match(/d="([^"]+)"/)![1];
    expect(d.split('L').length).toBeLessThanOrEqual(200);
    const ys = [...d.matchAll(/[ML][\d.-]+ ([\d.-]+)/g)].map((m) => Number(m[1]));
    const svgFull = renderSvg({ series: [line('long', n, (i) => (i === 12_345 ? 1000 : i === 777 ? -1000 : 0))], width: 100, height: 100 });
    const ysFull = [...seriesPaths(svgFull).lines[0].matchAll(/[ML][\d.-]+ ([\d.-]+)/g)].map((m) => Number(m[1]));
    expect(Math.min(...ys)).toBeCloseTo(Math.min(...ysFull), 0);
    expect(Math.max(...ys)).toBeCloseTo(Math.max(...ysFull), 0);
  });
});

describe('sizes and styles', () => {
  it.each([
    [undefined, 400], [null, 400], ['', 400], ['abc', 400], [Number.NaN, 400], [0, 400], [-5, 400],
    [2001, 400], ['5000', 400], [12.5, 400], ['1e3', 400], [' 300', 400],
    [1, 1], [2000, 2000], ['300', 300], [640, 640],
  ])('chartSide(%j) = %i', (v, want) => {
    expect(chartSide(v)).toBe(want);
  });

  it('unknown style is standard', () => {
    expect(chartStyle('spark')).toBe('spark');
    expect(chartStyle('weird')).toBe('standard');
    expect(chartStyle(undefined)).toBe('standard');
  });

  it('an oversize request draws a 400 px side in the SVG', () => {
    const svg = renderSvg({ series: [line('a')], width: 5000, height: 'x' });
    expect(svg).toMatch(/^<svg width="400" height="400"/);
  });
});

describe('renderPng', () => {
  it.each<[ChartStyle, number, number]>([
    ['standard', 320, 180],
    ['spark', 100, 24],
  ])('%s at %ix%i is a PNG of that size', (style, width, height) => {
    expect(pngSize(renderPng({ series: [line('a'), line('b')], comparisons: [line('c')], style, width, height, title: 't' }))).toEqual({ width, height });
  });

  it('renders off the event loop to the same bytes', async () => {
    const spec = { series: [line('a')], title: 'async', width: 240, height: 120 };
    const png = await renderPngAsync(spec);
    expect(pngSize(png)).toEqual({ width: 240, height: 120 });
    expect(png.equals(renderPng(spec))).toBe(true);
  });

  it('an oversize PNG becomes 400 x 400', () => {
    expect(pngSize(renderPng({ series: [line('a')], style: 'mini', width: 99_999, height: 0 }))).toEqual({ width: 400, height: 400 });
  });

  it('finds a font on this machine, so text is drawn', () => {
    const fonts = findChartFonts();
    expect(fonts.family).not.toBeNull();
    expect(fonts.files.length).toBeGreaterThan(0);
    // resvg drops text it has no font for, silently: the same chart without fonts must differ.
    const spec = { series: [line('a')], title: 'WWWWWW', width: 200, height: 100 };
    const noFonts = renderPng(spec, { fonts: { family: 'None', files: [] } });
    expect(renderPng(spec).equals(noFonts)).toBe(false);
    expect(renderPng({ ...spec, style: 'spark' }).equals(renderPng({ ...spec, style: 'spark' }, { fonts: { family: 'None', files: [] } }))).toBe(true);
  });

  it('says plainly when no font is known', () => {
    expect(findChartFonts(['/nonexistent'])).toEqual({ family: null, files: [] });
  });
});
