import type { KindName } from '../../kit/db/schema.js';
import { PAGE_TIMEFRAMES } from '../../graphing/timeframe.js';
import type { Viewer } from '../env.js';
import type { StatRow } from '../store/stats.js';
import { TRASH_HOURS } from '../store/stats.js';
import { Layout, PostButton } from './layout.js';

const KINDS: KindName[] = ['counter', 'value', 'gauge', 'set'];

export function GettingStarted(props: { ezkey: string; apiUrl: string }) {
  const curl = `curl -d "ezkey=${props.ezkey}&stat=page+views&count=1" ${props.apiUrl}/ez`;
  return (
    <section class="card" id="getting-started">
      <h2>Send your first point</h2>
      <p>
        Your ezkey: <code id="ezkey">{props.ezkey}</code>
      </p>
      <pre id="curl">{curl}</pre>
      <p>Any StatHat client library works too: point it at {props.apiUrl}.</p>
    </section>
  );
}

export function StatsListPage(props: { viewer: Viewer; csrf: string; stats: StatRow[]; total: number; q: string; kind?: KindName; ezkey: string; apiUrl: string; welcome: boolean }) {
  return (
    <Layout title="Stats" viewer={props.viewer} csrf={props.csrf}>
      <h1>Stats</h1>
      {props.welcome || props.total === 0 ? <GettingStarted ezkey={props.ezkey} apiUrl={props.apiUrl} /> : null}
      <form method="get" action="/stats" class="row" id="stat-search">
        <input type="search" name="q" value={props.q} placeholder="search stats" />
        <select name="kind">
          <option value="">all kinds</option>
          {KINDS.map((k) => (
            <option value={k} selected={props.kind === k}>
              {k}
            </option>
          ))}
        </select>
        <button type="submit">Search</button>
      </form>
      <form method="get" action="/analyze" id="compare-form">
        <table class="stats" id="stats">
          <thead>
            <tr>
              <th></th>
              <th>name</th>
              <th>kind</th>
              <th>public</th>
            </tr>
          </thead>
          <tbody>
            {props.stats.map((s) => (
              <tr data-stat-id={String(s.id)}>
                <td>
                  <input type="checkbox" name="s" value={String(s.id)} aria-label={`compare ${s.name}`} />
                </td>
                <td>
                  <a href={`/stats/${s.id}`} class="stat-link">
                    {s.name}
                  </a>
                </td>
                <td>{s.kind}</td>
                <td>{s.public ? 'yes' : ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {props.stats.length === 0 ? <p class="muted">No stats{props.q || props.kind ? ' match' : ' yet'}.</p> : <button type="submit">Compare selected (up to 3)</button>}
      </form>
      <p class="muted">{props.total} stats</p>
    </Layout>
  );
}

export function TimeframeButtons(props: { current: string }) {
  return (
    <div class="timeframes" role="group" aria-label="time frame">
      {Object.entries(PAGE_TIMEFRAMES).map(([name, f]) => (
        <button type="button" data-tf={name} class={name === props.current ? 'active' : ''} title={f.label}>
          {name}
        </button>
      ))}
    </div>
  );
}

/** The chart container app.js fills from /api/v1/series. */
export function Chart(props: { ids: number[]; tf: string; compare: boolean; percentiles: boolean; summary: boolean; height?: number }) {
  return (
    <div class="chart-block">
      <div class="row">
        <TimeframeButtons current={props.tf} />
        <label>
          <input type="checkbox" class="compare-toggle" checked={props.compare} /> compare with the previous period
        </label>
      </div>
      <div
        class="chart"
        id="chart"
        data-ids={props.ids.join(',')}
        data-tf={props.tf}
        data-compare={props.compare ? '1' : '0'}
        data-percentiles={props.percentiles ? '1' : '0'}
        style={`height:${props.height ?? 360}px`}
      ></div>
      <p class="chart-status muted" id="chart-status"></p>
      {props.summary ? (
        <table class="summary" id="summary">
          <thead>
            <tr>
              <th>stat</th>
              <th>min</th>
              <th>max</th>
              <th>mean</th>
              <th>total</th>
              <th>std dev</th>
              <th>points</th>
            </tr>
          </thead>
          <tbody></tbody>
        </table>
      ) : null}
    </div>
  );
}

export function StatPage(props: { viewer: Viewer; csrf: string; stat: StatRow; tf: string; onDashboard: boolean; embedUrl: string; embedSnippet: string }) {
  const s = props.stat;
  return (
    <Layout title={s.name} viewer={props.viewer} csrf={props.csrf} scripts={['/assets/echarts.min.js', '/assets/app.js']}>
      <h1 id="stat-name">{s.name}</h1>
      <p class="muted">
        {s.kind} · id {s.id} · {s.public ? 'public' : 'private'}
      </p>
      <Chart ids={[s.id]} tf={props.tf} compare={true} percentiles={s.kind === 'value'} summary={true} />
      <section class="row actions">
        <PostButton action={`/stats/${s.id}/public`} csrf={props.csrf} label={s.public ? 'Make private' : 'Make public'} fields={{ public: s.public ? '0' : '1' }} />
        <PostButton action={props.onDashboard ? `/dashboard/${s.id}/remove` : `/dashboard/${s.id}/add`} csrf={props.csrf} label={props.onDashboard ? 'Remove from dashboard' : 'Add to dashboard'} />
        <a href={`/analyze?s=${s.id}`}>Compare with…</a>
        <PostButton action={`/stats/${s.id}/delete`} csrf={props.csrf} label="Delete" name="delete" className="danger" />
      </section>
      <section class="card">
        <h2>Embed</h2>
        <p>
          <img src={props.embedUrl} alt={s.name} width="400" height="150" id="embed-preview" />
        </p>
        <pre>{props.embedSnippet}</pre>
      </section>
    </Layout>
  );
}

export function TrashPage(props: { viewer: Viewer; csrf: string; stats: StatRow[] }) {
  return (
    <Layout title="Trash" viewer={props.viewer} csrf={props.csrf}>
      <h1>Trash</h1>
      <p class="muted">Deleted stats stay here for {TRASH_HOURS} hours, then they and their data are gone.</p>
      <table class="stats" id="trash">
        <thead>
          <tr>
            <th>name</th>
            <th>kind</th>
            <th>deleted</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {props.stats.map((s) => (
            <tr data-stat-id={String(s.id)}>
              <td>{s.name}</td>
              <td>{s.kind}</td>
              <td>{s.deletedAt?.toISOString()}</td>
              <td>
                <PostButton action={`/stats/${s.id}/restore`} csrf={props.csrf} label="Restore" name="restore" />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {props.stats.length === 0 ? <p class="muted">The trash is empty.</p> : null}
    </Layout>
  );
}

export function AnalyzePage(props: { viewer: Viewer; csrf: string; all: StatRow[]; chosen: StatRow[]; tf: string }) {
  const chosen = new Set(props.chosen.map((s) => s.id));
  return (
    <Layout title="Analyze" viewer={props.viewer} csrf={props.csrf} scripts={props.chosen.length ? ['/assets/echarts.min.js', '/assets/app.js'] : []}>
      <h1>Analyze</h1>
      <form method="get" action="/analyze" class="row" id="analyze-form">
        {[0, 1, 2].map((i) => (
          <select name="s" aria-label={`stat ${i + 1}`}>
            <option value="">—</option>
            {props.all.map((s) => (
              <option value={String(s.id)} selected={props.chosen[i]?.id === s.id}>
                {s.name} ({s.kind})
              </option>
            ))}
          </select>
        ))}
        <input type="hidden" name="tf" value={props.tf} />
        <button type="submit">Compare</button>
      </form>
      {props.chosen.length > 0 ? (
        <>
          <h2 id="analyze-title">{props.chosen.map((s) => s.name).join(' vs ')}</h2>
          <Chart ids={[...chosen]} tf={props.tf} compare={false} percentiles={false} summary={true} />
        </>
      ) : (
        <p class="muted">Choose up to three stats to draw them on one chart.</p>
      )}
    </Layout>
  );
}

export function DashboardPage(props: { viewer: Viewer; csrf: string; stats: StatRow[]; tf: string }) {
  return (
    <Layout title="Dashboard" viewer={props.viewer} csrf={props.csrf} scripts={props.stats.length ? ['/assets/echarts.min.js', '/assets/app.js'] : []}>
      <h1>Dashboard</h1>
      {props.stats.length === 0 ? <p class="muted">Nothing here yet: open a stat and choose “Add to dashboard”.</p> : null}
      <div class="grid">
        {props.stats.map((s) => (
          <section class="card">
            <h2>
              <a href={`/stats/${s.id}`}>{s.name}</a>
            </h2>
            <div class="chart mini-chart" data-ids={String(s.id)} data-tf={props.tf} data-compare="0" data-percentiles="0" style="height:180px"></div>
            <PostButton action={`/dashboard/${s.id}/remove`} csrf={props.csrf} label="Remove" />
          </section>
        ))}
      </div>
    </Layout>
  );
}
