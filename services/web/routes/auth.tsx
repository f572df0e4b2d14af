import { Hono } from 'hono';
import { OspreyError } from '../../kit/errors.js';
import { createSession, endSession } from '../auth/sessions.js';
import type { WebAppDeps } from '../deps.js';
import type { WebEnv } from '../env.js';
import { logIn, signUp } from '../store/users.js';
import { AuthPage } from '../views/auth.js';

/** Only local paths: `next` must not send a person to another site after logging in. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/stats';
}

const field = (body: Record<string, unknown>, name: string) => (typeof body[name] === 'string' ? (body[name] as string) : '');

export function authPages(deps: WebAppDeps) {
  const session = { ttlHours: deps.sessionTtlHours, secureCookies: deps.secureCookies };
  return new Hono<WebEnv>()
    .get('/', (c) => c.redirect(c.get('viewer') ? '/stats' : '/login'))
    .get('/signup', (c) => c.html(<AuthPage mode="signup" csrf={c.get('csrf')} />))
    .post('/signup', async (c) => {
      const body = await c.req.parseBody();
      const email = field(body, 'email');
      try {
        const user = await signUp(deps.pool, email, field(body, 'password'));
        await createSession(deps.pool, c, user.userId, session);
        return c.redirect('/stats?welcome=1', 303);
      } catch (err) {
        if (!(err instanceof OspreyError)) throw err;
        return c.html(<AuthPage mode="signup" csrf={c.get('csrf')} email={email} error={err.message} />, err.kind === 'conflict' ? 409 : 400);
      }
    })
    .get('/login', (c) => c.html(<AuthPage mode="login" csrf={c.get('csrf')} next={c.req.query('next')} />))
    .post('/login', async (c) => {
      const body = await c.req.parseBody();
      const email = field(body, 'email');
      try {
        const userId = await logIn(deps.pool, email, field(body, 'password'));
        await createSession(deps.pool, c, userId, session);
        return c.redirect(safeNext(body.next), 303);
      } catch (err) {
        if (!(err instanceof OspreyError)) throw err;
        return c.html(<AuthPage mode="login" csrf={c.get('csrf')} email={email} error={err.message} next={field(body, 'next')} />, 401);
      }
    })
    .post('/logout', async (c) => {
      await endSession(deps.pool, c);
      return c.redirect('/login', 303);
    });
}
