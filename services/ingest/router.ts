import type { ConnectRouter } from '@connectrpc/connect';
import { IngestService } from '../../gen/osprey/v1/ingest_pb.js';
import { ingestHandler, type IngestHandlerDeps } from './handlers/ingest/index.js';

/** Wiring only: which implementation serves which service. */
export function ingestRoutes(deps: IngestHandlerDeps) {
  return (router: ConnectRouter) => {
    router.service(IngestService, ingestHandler(deps));
  };
}
