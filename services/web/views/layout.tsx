import type { Child } from 'hono/jsx';
import type { Viewer } from '../env.js';

// Pages are rendered with hono/jsx, which escapes every interpolated string: stat names
// and emails never reach the page as markup. Nothing here uses raw().

export function CsrfField({ token }: { token: string }) {
  return <input type="hidden" name="_csrf" value={token} />;
}

/** A button that POSTs (with the CSRF token) to `action`. */
export function PostButton(props: { action: string; csrf: string; label: string; name?: string; className?: string; fields?: Record<string, string> }) {
  return (
    <form method="post" action={props.action} class="inline">
      <CsrfField token={props.csrf} />
      {Object.entries(props.fields ?? {}).map(([k, v]) => (
        <input type="hidden" name={k} value={v} />
      ))}
      <button type="submit" name={props.name} class={props.className}>
        {props.label}
      </button>
    </form>
  );
}

export function Layout(props: { title: string; viewer?: Viewer; csrf?: string; children?: Child; scripts?: string[] }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · Osprey</title>
        <link rel="stylesheet" href="/assets/style.css" />
      </head>
      <body>
        <header>
          <a href="/" class="brand">Osprey</a>
          {props.viewer ? (
            <nav>
              <a href="/stats">Stats</a>
              <a href="/dashboard">Dashboard</a>
              <a href="/analyze">Analyze</a>
              <a href="/stats/trash">Trash</a>
              <a href="/settings">Settings</a>
              <a href="/api/v1/docs">API</a>
              <span class="who">{props.viewer.email}</span>
              <PostButton action="/logout" csrf={props.csrf ?? ''} label="Log out" name="logout" />
            </nav>
          ) : (
            <nav>
              <a href="/login">Log in</a>
              <a href="/signup">Sign up</a>
            </nav>
          )}
        </header>
        <main>{props.children}</main>
        {(props.scripts ?? []).map((src) => (
          <script src={src}></script>
        ))}
      </body>
    </html>
  );
}

export function errorPage(status: number, message: string) {
  return (
    <Layout title={`Error ${status}`}>
      <h1>{status === 404 ? 'Not found' : status === 403 ? 'Refused' : status >= 500 ? 'Something went wrong' : 'That did not work'}</h1>
      <p class="error" id="error">{message}</p>
      <p>
        <a href="/">Back to Osprey</a>
      </p>
    </Layout>
  );
}
