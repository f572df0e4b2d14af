// What a report says: per stat the period's total (counters) or mean (values), the change
// from the period before, a sparkline, and the biggest movers.
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { KIND } from '../kit/db/schema.js';
import type { MailAttachment, MailMessage } from '../kit/mailer.js';
import { periodLabel, type PeriodRange } from './periods.js';
import type { SparklineRenderer } from './sparkline.js';

export interface StatLine {
  statId: number;
  name: string;
  counter: boolean;
  /** Total (counter) or mean (value) over the period; undefined: no data. */
  current: number | undefined;
  previous: number | undefined;
  /** Percent change; undefined when either side is missing or the previous is 0. */
  changePct: number | undefined;
}

export interface Report {
  range: PeriodRange;
  lines: StatLine[];
  movers: StatLine[];
  /** Stats with data left out to keep the mail small. */
  omitted: number;
}

/** The account's live stats with data in the period or the one before, busiest first, then by name. */
export async function composeReport(pool: Pool, accountId: number, range: PeriodRange, maxStats: number): Promise<Report> {
  // Periods are whole UTC days, so the day rollups answer exactly.
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT s.id, s.name, s.kind,
            SUM(IF(r.bucket >= ?, r.count, 0)) AS c1, SUM(IF(r.bucket >= ?, r.sum, 0)) AS s1,
            SUM(IF(r.bucket < ?, r.count, 0)) AS c0, SUM(IF(r.bucket < ?, r.sum, 0)) AS s0
     FROM stats s JOIN rollups_1d r ON r.stat_id = s.id AND r.bucket >= ? AND r.bucket < ?
     WHERE s.account_id = ? AND s.deleted_at IS NULL
     GROUP BY s.id, s.name, s.kind
     ORDER BY c1 DESC, s.name`,
    [range.startSec, range.startSec, range.startSec, range.startSec, range.prevStartSec, range.endSec, accountId],
  );
  const lines = rows.slice(0, maxStats).map((r): StatLine => {
    const counter = Number(r.kind) === KIND.counter;
    const figure = (c: number, s: number) => (counter ? s : c > 0 ? s / c : undefined);
    const current = figure(Number(r.c1), Number(r.s1));
    const previous = figure(Number(r.c0), Number(r.s0));
    const changePct = current !== undefined && previous !== undefined && previous !== 0 ? ((current - previous) / Math.abs(previous)) * 100 : undefined;
    return { statId: Number(r.id), name: String(r.name), counter, current, previous, changePct };
  });
  lines.sort((a, b) => a.name.localeCompare(b.name));
  const movers = lines
    .filter((l) => l.changePct !== undefined && l.changePct !== 0)
    .sort((a, b) => Math.abs(b.changePct!) - Math.abs(a.changePct!))
    .slice(0, 3);
  return { range, lines, movers, omitted: Math.max(0, rows.length - maxStats) };
}

export function formatNumber(v: number | undefined): string {
  if (v === undefined) return '–';
  const abs = Math.abs(v);
  if (abs >= 1e9) return `${(v / 1e9).toFixed(2)}B`;
  if (abs >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (abs >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(abs >= 100 ? 1 : 3).replace(/\.?0+$/, '');
}

export function formatChange(pct: number | undefined): string {
  if (pct === undefined) return 'new';
  return `${pct > 0 ? '+' : ''}${pct.toFixed(1)}%`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The mail: HTML with one inline PNG per stat (cid), and a plain-text twin. */
export async function reportMail(
  report: Report,
  opts: { to: string; renderer: SparklineRenderer; unsubscribeUrl: string; appUrl: string; messageId: string },
): Promise<MailMessage> {
  const { range } = report;
  const label = periodLabel(range);
  const attachments: MailAttachment[] = [];
  const rowsHtml: string[] = [];
  const rowsText: string[] = [];
  for (const l of report.lines) {
    const cid = `spark-${l.statId}@osprey`;
    attachments.push({ filename: `${l.statId}.png`, content: await opts.renderer.png(l.statId, { startSec: range.startSec, endSec: range.endSec }), contentType: 'image/png', cid });
    const what = l.counter ? 'total' : 'mean';
    rowsHtml.push(
      `<tr><td>${escapeHtml(l.name)}</td><td align="right">${formatNumber(l.current)} <small>${what}</small></td>` +
        `<td align="right">${formatChange(l.changePct)}</td><td><img src="cid:${cid}" width="160" height="40" alt="${escapeHtml(l.name)}"></td></tr>`,
    );
    rowsText.push(`${l.name}: ${formatNumber(l.current)} ${what} (${formatChange(l.changePct)}, before ${formatNumber(l.previous)})`);
  }
  const moversText = report.movers.map((m) => `${m.name} ${formatChange(m.changePct)}`);
  const title = `Your ${range.period} Osprey report: ${label}`;
  const html = `<!doctype html><html><body style="font-family:sans-serif">
<h2>${escapeHtml(title)}</h2>
${report.movers.length ? `<p><b>Biggest movers:</b> ${report.movers.map((m) => `${escapeHtml(m.name)} ${formatChange(m.changePct)}`).join(', ')}</p>` : ''}
${report.lines.length ? `<table cellpadding="4"><tr><th align="left">Stat</th><th>${range.period === 'daily' ? 'Day' : 'Week'}</th><th>Change</th><th></th></tr>${rowsHtml.join('\n')}</table>` : '<p>No data arrived in this period.</p>'}
${report.omitted ? `<p>${report.omitted} more stats are on <a href="${escapeHtml(opts.appUrl)}">your dashboard</a>.</p>` : ''}
<p style="color:#666;font-size:small">You get this because you opted in to ${range.period} reports. <a href="${escapeHtml(opts.unsubscribeUrl)}">Unsubscribe</a></p>
</body></html>`;
  const text = [
    title,
    '',
    report.movers.length ? `Biggest movers: ${moversText.join(', ')}` : '',
    ...(report.lines.length ? rowsText : ['No data arrived in this period.']),
    report.omitted ? `${report.omitted} more stats: ${opts.appUrl}` : '',
    '',
    `Unsubscribe: ${opts.unsubscribeUrl}`,
  ].filter((s, i, a) => s !== '' || a[i - 1] !== '').join('\n');
  return {
    to: opts.to,
    subject: `[osprey] ${range.period === 'daily' ? 'Daily' : 'Weekly'} report: ${label}`,
    text,
    html,
    attachments,
    messageId: opts.messageId,
    headers: {
      // RFC 8058 one-click unsubscribe: mail clients show an Unsubscribe button.
      'List-Unsubscribe': `<${opts.unsubscribeUrl}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    },
  };
}
