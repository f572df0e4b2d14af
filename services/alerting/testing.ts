// Test-only pieces shared by the alerting tests: a real HTTP server receiving webhooks.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verifyWebhookSignature } from './channels/webhook.js';

export interface ReceivedHook {
  path: string;
  key: string;
  signatureOk: boolean;
  body: Record<string, unknown>;
  answered: number;
}

export interface HookReceiver {
  url: string;
  received: ReceivedHook[];
  /** Answers for the next requests, in order (then 200). */
  failNext(statuses: number[]): void;
  close(): Promise<void>;
}

/** A real webhook receiver that checks each request's signature with `secret`. */
export async function startHookReceiver(secret: string): Promise<HookReceiver> {
  const received: ReceivedHook[] = [];
  const answers: number[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const status = answers.shift() ?? 200;
      received.push({
        path: req.url ?? '',
        key: String(req.headers[IDEMPOTENCY_HEADER] ?? ''),
        signatureOk: verifyWebhookSignature(secret, String(req.headers[SIGNATURE_HEADER] ?? ''), raw),
        body: JSON.parse(raw),
        answered: status,
      });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'try again');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    failNext: (s) => answers.push(...s),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
