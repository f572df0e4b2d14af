import http from 'node:http';

/**
 * A request to an agent's control endpoint with no timeout: a converge answers when every
 * replica it touched passed its health check, which can take minutes. (fetch gives up on
 * headers after 5 minutes.)
 */
export function controlRequest(base: string, method: 'GET' | 'POST', pathAndQuery: string): Promise<{ status: number; body: string }> {
  const url = new URL(pathAndQuery, base);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}
