import type { Viewer } from '../env.js';
import type { AccountKeys, StatKeyRow } from '../store/keys.js';
import type { TokenRow } from '../store/tokens.js';
import { CsrfField, Layout, PostButton } from './layout.js';

export interface SettingsProps {
  viewer: Viewer;
  csrf: string;
  keys: AccountKeys;
  accessTokens: TokenRow[];
  statsdTokens: TokenRow[];
  statKeys: StatKeyRow[];
  /** A token just created: the only time it is shown. */
  created?: { kind: 'access' | 'statsd'; token: string; name: string };
  baseUrl: string;
}

function TokenTable(props: { id: string; tokens: TokenRow[]; csrf: string; revokePath: string }) {
  return (
    <table id={props.id}>
      <thead>
        <tr>
          <th>name</th>
          <th>starts with</th>
          <th>created</th>
          <th>state</th>
          <th></th>
        </tr>
      </thead>
      <tbody>
        {props.tokens.map((t) => (
          <tr data-token-id={String(t.id)} class={t.revokedAt ? 'revoked' : 'live'}>
            <td>{t.name}</td>
            <td>
              <code>{t.prefix}…</code>
            </td>
            <td>{t.createdAt.toISOString().slice(0, 16).replace('T', ' ')}</td>
            <td class="state">{t.revokedAt ? 'revoked' : 'live'}</td>
            <td>{t.revokedAt ? null : <PostButton action={`${props.revokePath}/${t.id}/revoke`} csrf={props.csrf} label="Revoke" name="revoke" />}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function NewTokenForm(props: { action: string; csrf: string; id: string }) {
  return (
    <form method="post" action={props.action} class="row" id={props.id}>
      <CsrfField token={props.csrf} />
      <input type="text" name="name" placeholder="what it is for" maxlength={100} required />
      <button type="submit">Create</button>
    </form>
  );
}

export function SettingsPage(p: SettingsProps) {
  return (
    <Layout title="Settings" viewer={p.viewer} csrf={p.csrf}>
      <h1>Settings</h1>
      {p.created ? (
        <section class="card created" id="created-token">
          <h2>New {p.created.kind} token “{p.created.name}”</h2>
          <p>Copy it now: it is shown only this once.</p>
          <pre>
            <code id="new-token">{p.created.token}</code>
          </pre>
          {p.created.kind === 'access' ? <pre>{`curl ${p.baseUrl}/x/${p.created.token}/statlist`}</pre> : null}
        </section>
      ) : null}

      <section class="card" id="ezkey-section">
        <h2>ezkey</h2>
        <p>
          Current: <code id="ezkey">{p.keys.ezkey}</code>
        </p>
        {p.keys.ezkeyBackup ? (
          <p>
            Previous (still accepted): <code id="ezkey-backup">{p.keys.ezkeyBackup}</code>
          </p>
        ) : null}
        <PostButton action="/settings/ezkey/rotate" csrf={p.csrf} label="Rotate ezkey" name="rotate-ezkey" />
        <p class="muted">Rotating makes a new key; the current one keeps working as the backup key until the next rotation.</p>
      </section>

      <section class="card">
        <h2>Access tokens</h2>
        <p class="muted">For the REST API (Authorization: Bearer …) and the StatHat export (/x/&lt;token&gt;/…).</p>
        <NewTokenForm action="/settings/tokens" csrf={p.csrf} id="new-access-token" />
        <TokenTable id="access-tokens" tokens={p.accessTokens} csrf={p.csrf} revokePath="/settings/tokens" />
      </section>

      <section class="card">
        <h2>statsd tokens</h2>
        <p class="muted">Prefix statsd lines with “token.”, or send “AUTH token” first on a TCP or Unix socket connection.</p>
        <NewTokenForm action="/settings/statsd-tokens" csrf={p.csrf} id="new-statsd-token" />
        <TokenTable id="statsd-tokens" tokens={p.statsdTokens} csrf={p.csrf} revokePath="/settings/statsd-tokens" />
      </section>

      <section class="card">
        <h2>Classic API keys</h2>
        <p>
          User key (ukey): <code id="ukey">{p.keys.ukey ?? 'none yet'}</code>
        </p>
        <PostButton action="/settings/classic/ukey" csrf={p.csrf} label={p.keys.ukey ? 'Rotate user key' : 'Create user key'} />{' '}
        <PostButton action="/settings/classic/stat-keys" csrf={p.csrf} label="Create keys for stats without one" />
        <table id="stat-keys">
          <thead>
            <tr>
              <th>stat</th>
              <th>key</th>
            </tr>
          </thead>
          <tbody>
            {p.statKeys.map((s) => (
              <tr>
                <td>{s.name}</td>
                <td>
                  <code>{s.key ?? '—'}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </Layout>
  );
}
