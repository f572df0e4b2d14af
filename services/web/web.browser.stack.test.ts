import { afterAll, beforeAll, describe, expect, it, onTestFinished as onCleanup } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createTestDatabase, type TestDatabase } from '../kit/testing/db.js';
import { startStack, type Stack } from '../../scripts/lib/stack.js';

// The whole product in Debian's Chromium: ingest, graphing, api and web as real
// processes on a test database, and a person signing up, sending points with /ez and
// looking at them. Needs `apt-get install chromium` (CI's .ci/run installs it).

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'];
const RESULTS = path.resolve('test-results');

let tdb: TestDatabase;
let stack: Stack;
let context: BrowserContext;
let page: Page;
let profile: string;
let web = '';
let api = '';
let ezkey = '';
/** The browser console, shown with a failure. */
const consoleLines: string[] = [];
const email = `browser-${Date.now()}@example.com`;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}; the browser test drives Debian's Chromium. Install it with:\n\n    sudo apt-get update && sudo apt-get install -y chromium\n\n(.ci/run installs it when it is missing.)`);
  }
  tdb = await createTestDatabase();
  stack = await startStack({
    databaseUrl: tdb.url,
    services: [
      { name: 'ingest', kind: 'rpc', replicas: 2, env: { FLUSH_INTERVAL_MS: '200' } },
      { name: 'graphing', kind: 'rpc', replicas: 2 },
      { name: 'api', kind: 'http', replicas: 2 },
      { name: 'web', kind: 'http', replicas: 2 },
    ],
    env: { HEARTBEAT_MS: '300', HOST: '127.0.0.1' },
  });
  await stack.ready(150_000);
  web = `http://127.0.0.1:${stack.ports.web}`;
  api = `http://127.0.0.1:${stack.ports.api}`;
  profile = mkdtempSync(path.join(os.tmpdir(), 'osprey-chromium-'));
  context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1200, height: 900 } });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (err) => consoleLines.push(`pageerror: ${err.message}`));
}, 180_000);

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await stack?.stop();
  await tdb?.drop();
}, 60_000);

/** Runs a step; on failure saves a screenshot of the page to test-results/ first. */
async function step(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    mkdirSync(RESULTS, { recursive: true });
    const file = path.join(RESULTS, `web-browser-${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
    await page?.screenshot({ path: file, fullPage: true }).catch(() => {});
    throw Object.assign(err as Error, { message: `${(err as Error).message}\n(screenshot: ${file})\nbrowser console:\n${consoleLines.slice(-20).join('\n')}` });
  }
}

async function ez(stat: string, field: 'count' | 'value', n: number, t?: number): Promise<void> {
  const body = new URLSearchParams({ ezkey, stat, [field]: String(n), ...(t ? { t: String(t) } : {}) });
  const res = await fetch(`${api}/ez`, { method: 'POST', body });
  expect(res.status).toBe(204);
}

/** The ECharts instance of #chart as the page sees it: series and the x range. */
function chartState(p: Page, selector = '#chart') {
  return p.evaluate((sel) => {
    // Runs in the page; this project compiles without the DOM types, hence `any`.
    const g = globalThis as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const el = g.document.querySelector(sel);
    const option = g.echarts.getInstanceByDom(el)?.getOption() as { series: { name: string; data: [number, number | null][] }[]; xAxis: { min: number; max: number }[] } | undefined;
    return {
      draws: Number(el.dataset.draws ?? 0),
      tf: el.dataset.drawnTf as string | undefined,
      names: option?.series.map((s) => s.name) ?? [],
      /** Points above zero, per series. */
      nonEmpty: option?.series.map((s) => s.data.filter((d) => d[1] !== null && d[1] > 0).length) ?? [],
      span: option ? option.xAxis[0].max - option.xAxis[0].min : 0,
      // Drawn line paths in the SVG renderer's output (axes are paths too, so lines are the
      // ones with no fill and a stroke).
      linePaths: el.querySelectorAll('svg path[fill="none"][stroke]').length,
      error: el.dataset.error as string | undefined,
    };
  }, selector);
}

async function waitForDraws(n: number, selector = '#chart') {
  await page.waitForFunction(([sel, want]) => Number((globalThis as any).document.querySelector(sel)?.dataset.draws ?? 0) >= (want as number), [selector, n] as const); // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe('the web app in Chromium', () => {
  it('signs up, shows points sent with /ez, redraws on a new time frame, compares, manages tokens and the trash', async () => {
    await step('sign-up', async () => {
      await page.goto(`${web}/signup`);
      await page.fill('input[name=email]', email);
      await page.fill('input[name=password]', 'a browser password');
      await page.click('button[type=submit]');
      await page.waitForURL(`${web}/stats?welcome=1`);
      ezkey = (await page.textContent('#ezkey'))!.trim();
      expect(ezkey.length).toBeGreaterThan(10);
    });

    await step('send-points', async () => {
      const now = Math.floor(Date.now() / 1000);
      for (let i = 0; i < 20; i++) {
        await ez('browser hits', 'count', (i % 5) + 1, now - i * 120);
        await ez('browser hits', 'count', 2, now - 86_400 - i * 120);
        await ez('browser misses', 'count', 1, now - i * 180);
      }
      await ez('<script>window.pwned=1</script>', 'count', 1);
      // Flushed within a fraction of a second; the list reads MySQL, so poll it.
      await expect.poll(async () => {
        await page.goto(`${web}/stats`);
        return page.locator('a.stat-link').allTextContents();
      }, { timeout: 20_000 }).toEqual(expect.arrayContaining(['browser hits', 'browser misses', '<script>window.pwned=1</script>']));
      expect(await page.evaluate(() => (globalThis as { pwned?: number }).pwned)).toBeUndefined();
    });

    await step('stat-page-and-time-frames', async () => {
      await page.click('a.stat-link:text-is("browser hits")');
      await page.waitForURL(/\/stats\/\d+$/);
      await waitForDraws(1);
      // Ingest flushes every 200 ms; until it has, the page may draw zeros: reload until not.
      await expect.poll(async () => {
        const s = await chartState(page);
        if (s.nonEmpty[0] > 0) return s.nonEmpty[0];
        await page.reload();
        await waitForDraws(1);
        return (await chartState(page)).nonEmpty[0];
      }, { timeout: 20_000 }).toBeGreaterThan(0);
      const day = await chartState(page);
      expect(day.error).toBeUndefined();
      expect(day.names).toEqual(['browser hits', 'browser hits (previous)']);
      expect(day.linePaths).toBeGreaterThanOrEqual(2);
      expect(await page.locator('#summary tbody tr td').first().textContent()).toBe('browser hits');

      await page.click('button[data-tf="1w"]');
      await waitForDraws(day.draws + 1);
      const week = await chartState(page);
      expect(week.tf).toBe('1w');
      expect(week.span).toBe(7 * 86_400 * 1000);
      expect(week.linePaths).toBeGreaterThanOrEqual(1);
      expect(week.nonEmpty[0]).toBeGreaterThan(0);
      expect(page.url()).toContain('tf=1w');

      await page.click('button[data-tf="1h"]');
      await waitForDraws(week.draws + 1);
      const hour = await chartState(page);
      expect(hour.span).toBe(3600 * 1000);
      expect(hour.linePaths).toBeGreaterThanOrEqual(1);

      // Turning the comparison off leaves one line.
      await page.uncheck('.compare-toggle');
      await waitForDraws(hour.draws + 1);
      expect((await chartState(page)).names).toEqual(['browser hits']);
    });

    await step('compare-two-stats', async () => {
      await page.goto(`${web}/stats`);
      await page.check('input[aria-label="compare browser hits"]');
      await page.check('input[aria-label="compare browser misses"]');
      await page.click('#compare-form button[type=submit]');
      await page.waitForURL(/\/analyze\?/);
      await waitForDraws(1);
      const s = await chartState(page);
      expect(s.names).toEqual(['browser hits', 'browser misses']);
      expect(s.nonEmpty.every((n) => n > 0)).toBe(true);
      expect(s.linePaths).toBeGreaterThanOrEqual(2);
      expect(await page.locator('#summary tbody tr').count()).toBe(2);
    });

    await step('embed-js', async () => {
      await page.goto(`${web}/stats`);
      await page.click('a.stat-link:text-is("browser hits")');
      await page.waitForURL(/\/stats\/\d+$/);
      const id = page.url().split('/').pop();
      await page.click('button:text-is("Make public")');
      await page.waitForURL(/\/stats\/\d+$/);
      // Someone else's page, on another origin, using embed.js as StatHat's snippets did.
      const host = http.createServer((_req, res) => {
        res.setHeader('content-type', 'text/html');
        res.end(`<div id="host"></div><script src="${web}/embed.js"></script><script>OspreyEmbed.render({s1: ${id}, w: 300, h: 120, tf: 'day', el: '#host'})</script>`);
      });
      await new Promise<void>((r) => host.listen(0, '127.0.0.1', r));
      onCleanup(() => new Promise<void>((r) => host.close(() => r())));
      await page.goto(`http://127.0.0.1:${(host.address() as AddressInfo).port}/`);
      await expect
        .poll(() =>
          page.evaluate(() => {
            const img = (globalThis as any).document.querySelector('#host img'); // eslint-disable-line @typescript-eslint/no-explicit-any
            return img ? { src: String(img.src), complete: Boolean(img.complete), naturalWidth: Number(img.naturalWidth) } : null;
          }),
        )
        .toMatchObject({ complete: true, naturalWidth: 300 });
    });

    await step('create-and-revoke-token', async () => {
      await page.goto(`${web}/settings`);
      await page.fill('#new-access-token input[name=name]', 'browser export');
      await page.click('#new-access-token button[type=submit]');
      const token = (await page.textContent('#new-token'))!.trim();
      const list = await fetch(`${web}/x/${token}/statlist`);
      expect(list.status).toBe(200);
      expect(((await list.json()) as { name: string }[]).map((s) => s.name)).toContain('browser hits');
      await page.goto(`${web}/settings`);
      expect(await page.content()).not.toContain(token);
      const row = page.locator('#access-tokens tr', { hasText: 'browser export' });
      await row.locator('button[name=revoke]').click();
      await page.waitForURL(`${web}/settings`);
      expect(await page.locator('#access-tokens tr', { hasText: 'browser export' }).locator('.state').textContent()).toBe('revoked');
      expect((await fetch(`${web}/x/${token}/statlist`)).status).toBe(401);
    });

    await step('delete-and-restore', async () => {
      await page.goto(`${web}/stats`);
      await page.click('a.stat-link:text-is("browser misses")');
      await page.waitForURL(/\/stats\/\d+$/);
      const statUrl = page.url();
      await page.click('button[name=delete]');
      await page.waitForURL(`${web}/stats/trash`);
      expect(await page.locator('#trash tbody tr').allTextContents()).toEqual([expect.stringContaining('browser misses')]);
      await page.goto(`${web}/stats`);
      expect(await page.locator('a.stat-link').allTextContents()).not.toContain('browser misses');
      await page.goto(`${web}/stats/trash`);
      await page.click('#trash button[name=restore]');
      await page.waitForURL(statUrl);
      await waitForDraws(1);
      await page.goto(`${web}/stats`);
      expect(await page.locator('a.stat-link').allTextContents()).toContain('browser misses');
    });

    await step('log-out', async () => {
      await page.click('button[name=logout]');
      await page.waitForURL(`${web}/login`);
      await page.goto(`${web}/stats`);
      expect(page.url()).toContain('/login?next=');
    });
  }, 300_000);
});
