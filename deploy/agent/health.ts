import http from 'node:http';
import { createClient } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { Health, HealthCheckResponse_ServingStatus } from '../../gen/grpc/health/v1/health_pb.js';
import { serviceDef, type Ports } from '../services.js';

/**
 * GET url answered 200. A fresh connection each time (no keep-alive): a probe must not
 * hold a replica's server open while it shuts down.
 */
export function httpOk(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, headers: { connection: 'close' }, timeout: timeoutMs }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode === 200));
      res.once('error', () => resolve(false));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve(false));
  });
}

/** grpc.health.v1.Health/Check("") answered SERVING, over gRPC as grpc_health_probe does. */
export async function grpcServing(address: string, timeoutMs: number): Promise<boolean> {
  const baseUrl = `http://${address}`;
  const sessionManager = new Http2SessionManager(baseUrl);
  try {
    const client = createClient(Health, createGrpcTransport({ baseUrl, sessionManager }));
    const res = await client.check({ service: '' }, { timeoutMs });
    return res.status === HealthCheckResponse_ServingStatus.SERVING;
  } catch {
    return false;
  } finally {
    sessionManager.abort();
  }
}

/**
 * One replica's health, by its kind: rpc services answer grpc health on their RPC port;
 * http services answer /healthz on the public port (the path users take) and on the ops
 * port (which turns 503 the moment the replica starts to drain).
 */
export async function replicaHealthy(service: string, host: string, ports: Ports, timeoutMs = 1000): Promise<boolean> {
  const def = serviceDef(service);
  if (!def) return false;
  if (def.kind === 'rpc') return grpcServing(`${host}:${ports.rpc}`, timeoutMs);
  const checks = [httpOk(`http://${host}:${ports.ops}/healthz`, timeoutMs)];
  if (ports.public) checks.push(httpOk(`http://${host}:${ports.public}/healthz`, timeoutMs));
  return (await Promise.all(checks)).every(Boolean);
}
