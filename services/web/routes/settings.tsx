import { Hono, type Context } from 'hono';
import { viewerOf } from '../auth/sessions.js';
import type { WebAppDeps } from '../deps.js';
import type { WebEnv } from '../env.js';
import { accountKeys, createMissingStatKeys, listStatKeys, rotateEzkey, rotateUkey } from '../store/keys.js';
import { statId } from '../store/stats.js';
import { createToken, listTokens, revokeToken, type TokenTable } from '../store/tokens.js';
import { SettingsPage, type SettingsProps } from '../views/settings.js';

export function settingsPages(deps: WebAppDeps) {
  const { pool } = deps;

  async function render(c: Context<WebEnv>, created?: SettingsProps['created']) {
    const viewer = viewerOf(c);
    const [keys, accessTokens, statsdTokens, statKeys] = await Promise.all([
      accountKeys(pool, viewer.accountId),
      listTokens(pool, 'access_tokens', viewer.accountId),
      listTokens(pool, 'statsd_tokens', viewer.accountId),
      listStatKeys(pool, viewer.accountId),
    ]);
    // A page showing a new token must not be cached anywhere.
    c.header('cache-control', 'no-store');
    return c.html(
      <SettingsPage viewer={viewer} csrf={c.get('csrf')} keys={keys} accessTokens={accessTokens} statsdTokens={statsdTokens} statKeys={statKeys} created={created} baseUrl={new URL(c.req.url).origin} />,
      created ? 201 : 200,
    );
  }

  const tokenRoutes = (table: TokenTable, kind: 'access' | 'statsd') =>
    new Hono<WebEnv>()
      // The new token is shown in the answer to this POST, never stored to show again.
      .post('/', async (c) => {
        const body = await c.req.parseBody();
        const t = await createToken(pool, table, viewerOf(c).accountId, typeof body.name === 'string' ? body.name : '');
        return render(c, { kind, token: t.token, name: t.name });
      })
      .post('/:id/revoke', async (c) => {
        await revokeToken(pool, table, viewerOf(c).accountId, statId(c.req.param('id')));
        return c.redirect('/settings', 303);
      });

  return new Hono<WebEnv>()
    .get('/', (c) => render(c))
    .post('/ezkey/rotate', async (c) => {
      await rotateEzkey(pool, viewerOf(c).accountId);
      return c.redirect('/settings', 303);
    })
    .post('/classic/ukey', async (c) => {
      await rotateUkey(pool, viewerOf(c).accountId);
      return c.redirect('/settings', 303);
    })
    .post('/classic/stat-keys', async (c) => {
      await createMissingStatKeys(pool, viewerOf(c).accountId);
      return c.redirect('/settings', 303);
    })
    .route('/tokens', tokenRoutes('access_tokens', 'access'))
    .route('/statsd-tokens', tokenRoutes('statsd_tokens', 'statsd'));
}
