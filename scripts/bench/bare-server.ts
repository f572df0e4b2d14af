/**
 * The ceiling for `npm run bench:http`: node:http reading the same form body, parsing it
 * with URLSearchParams, checking the fields /ez needs, and answering 204. No ingest, no
 * database. Prints its port on stdout.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const p = new URLSearchParams(Buffer.concat(chunks).toString());
    const ok = p.get('ezkey') && p.get('stat') && (p.get('count') ?? p.get('value')) !== null;
    res.writeHead(ok ? 204 : 400).end();
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
