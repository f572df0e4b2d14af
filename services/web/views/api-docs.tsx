import { Layout } from './layout.js';

interface Operation {
  summary?: string;
  parameters?: { name: string; in: string; description?: string; required?: boolean; schema?: { type?: string; enum?: unknown[] } }[];
  requestBody?: unknown;
  responses?: Record<string, { description?: string }>;
}

/** A plain page listing the operations of the generated OpenAPI document (no CDN, no script). */
export function ApiDocsPage(props: { doc: { info: { title: string; description?: string }; paths?: Record<string, Record<string, Operation>> } }) {
  const ops = Object.entries(props.doc.paths ?? {}).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));
  return (
    <Layout title="API">
      <h1>{props.doc.info.title}</h1>
      <p>{props.doc.info.description}</p>
      <p>
        The machine-readable document: <a href="/api/v1/openapi.json">/api/v1/openapi.json</a> (OpenAPI 3.1). Base path <code>/api/v1</code>. The StatHat export
        (<code>/x/&lt;token&gt;/statlist</code>, <code>/stat?name=</code>, <code>/data/&lt;id&gt;?t=1w3h</code>, <code>DELETE /stats/&lt;id&gt;</code>) takes the same access tokens.
      </p>
      {ops.map(({ path, method, op }) => (
        <section class="card op" id={`op-${method}-${path}`}>
          <h2>
            <code>
              {method.toUpperCase()} /api/v1{path}
            </code>
          </h2>
          <p>{op.summary}</p>
          {op.parameters?.length ? (
            <table>
              <tbody>
                {op.parameters.map((p) => (
                  <tr>
                    <td>
                      <code>{p.name}</code>
                    </td>
                    <td>{p.in}</td>
                    <td>{p.schema?.enum ? p.schema.enum.join(' | ') : p.schema?.type}</td>
                    <td>{p.description ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          <p class="muted">
            answers: {Object.entries(op.responses ?? {}).map(([code, r]) => `${code} ${r.description ?? ''}`).join(' · ')}
          </p>
        </section>
      ))}
    </Layout>
  );
}
