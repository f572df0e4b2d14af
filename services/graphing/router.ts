import type { ConnectRouter } from '@connectrpc/connect';
import { GraphService } from '../../gen/osprey/v1/graphing_pb.js';
import { graphHandler, type GraphHandlerDeps } from './handlers/graph/index.js';

/** Wiring only: which implementation serves which service. */
export function graphingRoutes(deps: GraphHandlerDeps) {
  return (router: ConnectRouter) => {
    router.service(GraphService, graphHandler(deps));
  };
}
