import path from 'node:path';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { pino } from 'pino';
import type { RowDataPacket } from 'mysql2/promise';
import { IngestService, MetricKind } from '../../../gen/osprey/v1/ingest_pb.js';
import { build, type IngestReplica } from '../../ingest/server.js';
import { createAccount } from '../accounts.js';
import { connectDatabase } from '../db/client.js';
import { createMetrics } from '../metrics.js';
import { createTestDatabase, testBaseConfig, TEST_SERVICE_TOKEN, type TestDatabase } from '../testing/db.js';
import { Code, ConnectError } from '@connectrpc/connect';
import { createBalancedClient, isNotApplied } from './client.js';

let tdb: TestDatabase;
const replicas: IngestReplica[] = [];
const log = pino({ level: 'silent' });

async function startIngest(): Promise<IngestReplica> {
  const r = await build({
    config: { ...testBaseConfig(tdb.url), FLUSH_INTERVAL_MS: 60_000, MAX_POINT_AGE_DAYS: 730, MAX_POINT_FUTURE_SEC: 600 },
    log,
    database: connectDatabase(tdb.url),
    metrics: createMetrics('ingest'),
  });
  replicas.push(r);
  return r;
}

beforeEach(async () => {
  tdb = await createTestDatabase();
});
afterEach(async () => {
  for (const r of replicas.splice(0)) await r.stop();
  await tdb.drop();
});

describe('grpc.health.v1.Health', () => {
  it('answers a stock @grpc/grpc-js client, without the service token', async () => {
    const r = await startIngest();
    const def = protoLoader.loadSync(path.resolve('proto/grpc/health/v1/health.proto'), { keepCase: true, enums: String });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
    const client = new pkg.grpc.health.v1.Health(r.address, grpc.credentials.createInsecure());
    const check = (service: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        client.check({ service }, (err: grpc.ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res))),
      );
    expect(await check('')).toEqual({ status: 'SERVING' });
    expect(await check('osprey.v1.IngestService')).toEqual({ status: 'SERVING' });
    await expect(check('nope.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    r.health.setServing(false);
    expect(await check('')).toEqual({ status: 'NOT_SERVING' });
    client.close();
  });

  it('serves /metrics and /healthz on the ops port', async () => {
    const r = await startIngest();
    const metrics = await fetch(`http://${r.opsAddress}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('osprey_flush_seconds');
    expect((await fetch(`http://${r.opsAddress}/healthz`)).status).toBe(200);
  });
});

describe('balanced client', () => {
  it('spreads calls round-robin over live replicas', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const [a, b] = [await startIngest(), await startIngest()];
    const { client, transport } = createBalancedClient(IngestService, { pool: tdb.database.pool, service: 'ingest', serviceToken: TEST_SERVICE_TOKEN, log });
    for (let i = 0; i < 10; i++) await client.record({ points: [{ accountId: account.id, stat: 's', kind: MetricKind.COUNTER, number: 1 }] });
    expect(a.aggregator.pendingSamples).toBe(5);
    expect(b.aggregator.pendingSamples).toBe(5);
    transport.close();
  });

  it('moves a call to the next replica when one refuses connections, and never sends it twice', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const live = await startIngest();
    // A registered replica whose port refuses connections (a process that just died).
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadPort = (dead.address() as net.AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    await tdb.database.pool.query(
      "INSERT INTO service_instances (id, service, address, ops_address, host, pid, started_at, heartbeat_at) VALUES ('dead', 'ingest', ?, ?, 'h', 1, NOW(3), NOW(3))",
      [`127.0.0.1:${deadPort}`, `127.0.0.1:${deadPort}`],
    );
    const { client, transport } = createBalancedClient(IngestService, { pool: tdb.database.pool, service: 'ingest', serviceToken: TEST_SERVICE_TOKEN, log });
    for (let i = 0; i < 6; i++) {
      const res = await client.record({ points: [{ accountId: account.id, stat: 's', kind: MetricKind.COUNTER, number: 1 }] });
      expect(res.accepted).toBe(1);
    }
    expect(live.aggregator.pendingSamples).toBe(6);
    transport.close();
  });

  it('sends calls elsewhere while a replica drains, and the drained replica leaves the registry', async () => {
    const account = await createAccount(tdb.database.pool, 'a@example.com');
    const [a, b] = [await startIngest(), await startIngest()];
    const { client, transport } = createBalancedClient(IngestService, { pool: tdb.database.pool, service: 'ingest', serviceToken: TEST_SERVICE_TOKEN, log });
    await transport.refresh();
    const stopping = a.stop();
    replicas.splice(replicas.indexOf(a), 1);
    for (let i = 0; i < 6; i++) await client.record({ points: [{ accountId: account.id, stat: 's', kind: MetricKind.COUNTER, number: 1 }] });
    await stopping;
    await b.flusher.flush();
    const [rows] = await tdb.database.pool.query<RowDataPacket[]>('SELECT SUM(sum) AS total FROM rollups_1m');
    expect(Number(rows[0].total)).toBe(6);
    const [instances] = await tdb.database.pool.query<RowDataPacket[]>('SELECT address FROM service_instances');
    expect(instances.map((r) => r.address)).toEqual([b.address]);
    transport.close();
  });
});

describe('isNotApplied', () => {
  it('treats refused connections, refused streams and drain refusals as safe to retry, and nothing else', () => {
    const withCause = (code: Code, cause: object) => new ConnectError('x', code, undefined, undefined, cause);
    expect(isNotApplied(withCause(Code.Unavailable, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })))).toBe(true);
    expect(isNotApplied(withCause(Code.Internal, Object.assign(new Error('Stream closed with error code NGHTTP2_REFUSED_STREAM'), { code: 'ERR_HTTP2_STREAM_ERROR' })))).toBe(true);
    expect(isNotApplied(new ConnectError('draining', Code.Unavailable, { 'osprey-not-applied': '1' }))).toBe(true);
    const resetInConnect = Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNRESET', syscall: 'connect' });
    expect(isNotApplied(withCause(Code.Unavailable, Object.assign(new Error('The pending stream has been canceled'), { code: 'ERR_HTTP2_STREAM_CANCEL', cause: resetInConnect })))).toBe(true);
    expect(isNotApplied(withCause(Code.Unavailable, Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })))).toBe(false);
    expect(isNotApplied(withCause(Code.Unavailable, Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' })))).toBe(false);
    expect(isNotApplied(withCause(Code.Internal, Object.assign(new Error('Stream closed with error code NGHTTP2_CANCEL'), { code: 'ERR_HTTP2_STREAM_ERROR' })))).toBe(false);
    expect(isNotApplied(new ConnectError('deadline', Code.DeadlineExceeded))).toBe(false);
  });
});
