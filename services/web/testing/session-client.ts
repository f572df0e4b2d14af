// A tiny cookie-keeping client over app.request (or fetch), for tests that act like a
// browser: it keeps cookies and reads the CSRF token out of the last page.

type Requester = (path: string, init?: RequestInit) => Response | Promise<Response>;

export class SessionClient {
  readonly cookies = new Map<string, string>();
  csrf = '';
  lastSetCookies: string[] = [];

  constructor(private readonly request: Requester) {}

  private remember(res: Response) {
    this.lastSetCookies = res.headers.getSetCookie();
    for (const line of this.lastSetCookies) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /max-age=0/i.test(a.trim())) || value === '';
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  private headers(extra?: ConstructorParameters<typeof Headers>[0]): Headers {
    const h = new Headers(extra);
    if (this.cookies.size) h.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    return h;
  }

  async get(path: string, headers?: ConstructorParameters<typeof Headers>[0]): Promise<Response> {
    const res = await this.request(path, { headers: this.headers(headers), redirect: 'manual' });
    this.remember(res);
    return res;
  }

  /** GET a page and keep its CSRF token; returns the HTML. */
  async page(path: string): Promise<{ status: number; html: string }> {
    const res = await this.get(path);
    const html = await res.text();
    const m = /name="_csrf" value="([^"]+)"/.exec(html);
    if (m) this.csrf = m[1];
    return { status: res.status, html };
  }

  /** POST a form; `_csrf` is added from the last page unless given (null leaves it out). */
  async post(path: string, fields: Record<string, string> = {}, csrf: string | null = this.csrf): Promise<Response> {
    const body = new URLSearchParams(fields);
    if (csrf !== null && !('_csrf' in fields)) body.set('_csrf', csrf);
    const res = await this.request(path, {
      method: 'POST',
      body: body.toString(),
      headers: this.headers({ 'content-type': 'application/x-www-form-urlencoded' }),
      redirect: 'manual',
    });
    this.remember(res);
    return res;
  }

  async json<T = unknown>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
    const res = await this.request(path, { ...init, headers: this.headers(init.headers), redirect: 'manual' });
    this.remember(res);
    return { status: res.status, body: (await res.json()) as T };
  }
}
