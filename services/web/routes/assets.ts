import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import type { WebEnv } from '../env.js';

// Static files the pages need, served by the web app itself (no CDN: Osprey runs on
// machines without internet). Read once when the app is built.

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

interface Asset {
  body: string;
  type: string;
}

export function loadAssets(): Record<string, Asset> {
  const own = (name: string, type: string): Asset => ({ body: readFileSync(path.join(here, '..', 'assets', name), 'utf8'), type });
  return {
    'echarts.min.js': { body: readFileSync(require.resolve('echarts/dist/echarts.min.js'), 'utf8'), type: 'text/javascript; charset=utf-8' },
    'app.js': own('app.js', 'text/javascript; charset=utf-8'),
    'style.css': own('style.css', 'text/css; charset=utf-8'),
    'embed.js': own('embed.js', 'text/javascript; charset=utf-8'),
  };
}

export function assetRoutes(assets = loadAssets()) {
  return new Hono<WebEnv>().get('/:name', (c) => {
    const name = c.req.param('name');
    const a = Object.hasOwn(assets, name) ? assets[name] : undefined;
    if (!a) return c.text('not found', 404);
    return c.body(a.body, 200, { 'content-type': a.type, 'cache-control': 'public, max-age=300' });
  });
}

export function embedScript(assets = loadAssets()) {
  return new Hono<WebEnv>().get('/', (c) => c.body(assets['embed.js'].body, 200, { 'content-type': assets['embed.js'].type, 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' }));
}
