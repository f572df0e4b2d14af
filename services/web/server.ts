import { GraphService } from '../../gen/osprey/v1/graphing_pb.js';
import { startHttpReplica, type HttpReplica } from '../kit/http.js';
import type { BaseDeps } from '../kit/replica.js';
import { createBalancedClient } from '../kit/rpc/client.js';
import { buildApp } from './app.js';
import { hmac } from './auth/secrets.js';
import type { WebConfig } from './config.js';

export interface WebDeps extends BaseDeps {
  config: WebConfig;
  now?: () => number;
}

/** The embed-signing secret: WEB_SECRET, else one derived from the shared SERVICE_TOKEN. */
export function webSecret(config: Pick<WebConfig, 'WEB_SECRET' | 'SERVICE_TOKEN'>): string {
  return config.WEB_SECRET ?? hmac(config.SERVICE_TOKEN, 'osprey web embed signing');
}

/** Builds and starts one web replica; main.ts runs it (under cluster), tests on port 0. */
export async function build(deps: WebDeps): Promise<HttpReplica> {
  const { config, log, database } = deps;
  const { client, transport } = createBalancedClient(GraphService, {
    pool: database.pool,
    service: 'graphing',
    serviceToken: config.SERVICE_TOKEN,
    log,
    staleMs: config.HEARTBEAT_MS * 3,
  });
  transport.start();
  const app = buildApp({
    pool: database.pool,
    graph: client,
    log,
    secret: webSecret(config),
    sessionTtlHours: config.SESSION_TTL_HOURS,
    secureCookies: config.COOKIE_SECURE,
    apiPublicUrl: config.API_PUBLIC_URL,
    now: deps.now ?? Date.now,
  });
  return startHttpReplica('web', deps, {
    fetch: app.fetch,
    host: config.HOST,
    port: config.PORT,
    close: async () => {
      transport.close();
      await database.close();
    },
  });
}
