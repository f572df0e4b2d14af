import { Counter } from 'prom-client';
import { IngestService } from '../../gen/osprey/v1/ingest_pb.js';
import { startHttpReplica, type HttpReplica } from '../kit/http.js';
import type { BaseDeps } from '../kit/replica.js';
import { createBalancedClient } from '../kit/rpc/client.js';
import { codecMap } from '../kit/rpc/codecs.js';
import { recordRequestCodec, recordResponseCodec } from '../kit/rpc/record-codec.js';
import { buildApi } from './app.js';
import { ClassicKeyCache } from './classic-keys.js';
import type { ApiConfig } from './config.js';
import { EzkeyCache } from './ezkeys.js';
import { IngestBatcher } from './ingest-batcher.js';
import { AccountRateLimiter } from './rate-limit.js';

export interface ApiDeps extends BaseDeps {
  config: ApiConfig;
  /** Unix milliseconds for the rate limiter; tests pass a clock they move by hand. */
  now?: () => number;
}

/** Builds and starts one api replica; main.ts runs it (under cluster), tests on port 0. */
export async function build(deps: ApiDeps): Promise<HttpReplica & { batcher: IngestBatcher; limiter: AccountRateLimiter }> {
  const { config, log, database } = deps;
  const { client, transport } = createBalancedClient(IngestService, {
    pool: database.pool,
    service: 'ingest',
    serviceToken: config.SERVICE_TOKEN,
    log,
    staleMs: config.HEARTBEAT_MS * 3,
    codecs: codecMap(recordRequestCodec, recordResponseCodec),
    http1: config.INGEST_TRANSPORT === 'http1',
  });
  transport.start();
  const batcher = new IngestBatcher(client, { maxInFlight: config.INGEST_MAX_IN_FLIGHT, maxBatch: config.INGEST_MAX_BATCH, eagerBatch: config.INGEST_EAGER_BATCH });
  new Counter({ name: 'osprey_api_record_calls_total', help: 'Record calls made to ingest', registers: [deps.metrics], collect() { this.reset(); this.inc(batcher.calls); } });
  new Counter({ name: 'osprey_api_record_points_total', help: 'Points sent to ingest in Record calls', registers: [deps.metrics], collect() { this.reset(); this.inc(batcher.points); } });
  const limiter = new AccountRateLimiter({ pointsPerSec: config.RATE_LIMIT_POINTS_PER_SEC, burst: config.RATE_LIMIT_BURST, now: deps.now });
  new Counter({ name: 'osprey_api_rate_limited_total', help: 'Requests refused with 429: the account was over its rate limit', registers: [deps.metrics], collect() { this.reset(); this.inc(limiter.refused); } });
  const replica = await startHttpReplica('api', deps, {
    listener: buildApi({
      log,
      ezkeys: new EzkeyCache(database.pool, config.EZKEY_CACHE_MS, config.EZ_EMAIL_AS_KEY),
      classicKeys: new ClassicKeyCache(database.pool, config.EZKEY_CACHE_MS),
      batcher,
      limiter,
      maxBodyBytes: config.API_MAX_BODY_BYTES,
    }),
    host: config.HOST,
    port: config.PORT,
    timeouts: { headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS, requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS, keepAliveTimeoutMs: config.HTTP_KEEPALIVE_TIMEOUT_MS },
    drain: () => batcher.drained(),
    close: async () => {
      transport.close();
      await database.close();
    },
  });
  return Object.assign(replica, { batcher, limiter });
}
