import { Counter } from 'prom-client';
import { IngestService } from '../../gen/osprey/v1/ingest_pb.js';
import { startHttpReplica, type HttpReplica } from '../kit/http.js';
import type { BaseDeps } from '../kit/replica.js';
import { createBalancedClient } from '../kit/rpc/client.js';
import { codecMap } from '../kit/rpc/codecs.js';
import { recordRequestCodec } from '../kit/rpc/record-codec.js';
import { buildApi } from './app.js';
import type { ApiConfig } from './config.js';
import { EzkeyCache } from './ezkeys.js';
import { IngestBatcher } from './ingest-batcher.js';

export interface ApiDeps extends BaseDeps {
  config: ApiConfig;
}

/** Builds and starts one api replica; main.ts runs it (under cluster), tests on port 0. */
export async function build(deps: ApiDeps): Promise<HttpReplica & { batcher: IngestBatcher }> {
  const { config, log, database } = deps;
  const { client, transport } = createBalancedClient(IngestService, {
    pool: database.pool,
    service: 'ingest',
    serviceToken: config.SERVICE_TOKEN,
    log,
    staleMs: config.HEARTBEAT_MS * 3,
    codecs: codecMap(recordRequestCodec),
  });
  transport.start();
  const batcher = new IngestBatcher(client, { maxInFlight: config.INGEST_MAX_IN_FLIGHT, maxBatch: config.INGEST_MAX_BATCH, eagerBatch: config.INGEST_EAGER_BATCH });
  new Counter({ name: 'osprey_api_record_calls_total', help: 'Record calls made to ingest', registers: [deps.metrics], collect() { this.reset(); this.inc(batcher.calls); } });
  new Counter({ name: 'osprey_api_record_points_total', help: 'Points sent to ingest in Record calls', registers: [deps.metrics], collect() { this.reset(); this.inc(batcher.points); } });
  const replica = await startHttpReplica('api', deps, {
    listener: buildApi({ log, ezkeys: new EzkeyCache(database.pool, config.EZKEY_CACHE_MS), batcher }),
    host: config.HOST,
    port: config.PORT,
    drain: () => batcher.drained(),
    close: async () => {
      transport.close();
      await database.close();
    },
  });
  return Object.assign(replica, { batcher });
}
