import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createClient, ConnectError } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { describe, expect, it } from 'vitest';
import { Health } from '../../../gen/grpc/health/v1/health_pb.js';
import { isNotApplied } from './client.js';

describe('isNotApplied', () => {
  it('counts a stream the server refused (RST_STREAM REFUSED_STREAM) as not applied', async () => {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = createClient(Health, createConnectTransport({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, httpVersion: '2' }));
      const err = await client.check({ service: '' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect(isNotApplied(err)).toBe(true);
    } finally {
      server.close();
    }
  });

  it('does not count a stream reset for other reasons', async () => {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = createClient(Health, createConnectTransport({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, httpVersion: '2' }));
      const err = await client.check({ service: '' }).catch((e: unknown) => e);
      expect(isNotApplied(err)).toBe(false);
    } finally {
      server.close();
    }
  });
});
