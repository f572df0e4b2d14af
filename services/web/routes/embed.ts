import { Hono } from 'hono';
import { OspreyError } from '../../kit/errors.js';
import { chartSide, chartStyle } from '../../graphing/render.js';
import { embedTimeframe } from '../../graphing/timeframe.js';
import type { WebAppDeps } from '../deps.js';
import { checkEmbedSignature } from '../embed-sign.js';
import type { WebEnv } from '../env.js';
import { renderChart } from '../graph.js';
import { statsForEmbed } from '../store/stats.js';

const FORMATS = ['svg', 'png', 'html'] as const;
type EmbedFormat = (typeof FORMATS)[number];

/** `/embed/graph/12/13.png` → ids [12, 13], png; the suffix or `format=` picks the format. */
export function parseEmbedPath(rest: string, format: string | undefined): { ids: number[]; format: EmbedFormat } {
  const parts = rest.split('/').filter(Boolean);
  let fmt: EmbedFormat = (FORMATS as readonly string[]).includes(format ?? '') ? (format as EmbedFormat) : 'svg';
  const last = parts.length - 1;
  const m = last >= 0 ? /^(.*)\.(svg|png|html)$/.exec(parts[last]) : null;
  if (m) {
    parts[last] = m[1];
    fmt = m[2] as EmbedFormat;
  }
  if (parts.length < 1 || parts.length > 3 || !parts.every((p) => /^[1-9]\d{0,9}$/.test(p))) throw new OspreyError('not_found', 'no such graph');
  return { ids: parts.map(Number), format: fmt };
}

const escapeAttr = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

export function embedRoutes(deps: WebAppDeps) {
  return new Hono<WebEnv>().get('/graph/*', async (c) => {
    const { ids, format } = parseEmbedPath(c.req.path.slice('/embed/graph/'.length), c.req.query('format'));
    const stats = await statsForEmbed(deps.pool, ids);
    // Missing, deleted, mixed accounts, or private without a valid signature: all the same
    // 404, so an embed URL tells a stranger nothing about which stats exist.
    const signed = checkEmbedSignature(deps.secret, ids, c.req.query('sig'));
    if (stats.length !== ids.length || new Set(stats.map((s) => s.accountId)).size !== 1 || (!signed && !stats.every((s) => s.public))) {
      throw new OspreyError('not_found', 'no such graph');
    }
    const w = chartSide(c.req.query('w'));
    const h = chartSide(c.req.query('h') ?? '150');
    const tf = embedTimeframe(c.req.query('tf'));
    if (format === 'html') {
      const img = new URL(c.req.url);
      img.pathname = `/embed/graph/${ids.join('/')}.svg`;
      img.searchParams.delete('format');
      const title = c.req.query('title') ?? stats.map((s) => s.name).join(', ');
      return c.html(`<img src="${escapeAttr(img.toString())}" width="${w}" height="${h}" alt="${escapeAttr(title)}">\n`, 200, { 'cache-control': 'public, max-age=60' });
    }
    const now = Math.floor(deps.now() / 1000);
    const chart = await renderChart(deps.graph, stats[0].accountId, ids, {
      from: now - tf.durationSec,
      to: now,
      compareOffsetSec: tf.compareOffsetSec ?? 0,
      style: chartStyle(c.req.query('style')),
      width: w,
      height: h,
      title: (c.req.query('title') ?? '').slice(0, 200),
      format,
    });
    return c.body(chart.data as Uint8Array<ArrayBuffer>, 200, {
      'content-type': chart.contentType,
      'cache-control': 'public, max-age=60',
      // An SVG opened directly must not run anything, whatever ends up inside it.
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      'x-content-type-options': 'nosniff',
    });
  });
}
