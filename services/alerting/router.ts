import type { ConnectRouter } from '@connectrpc/connect';
import { AlertService } from '../../gen/osprey/v1/alerting_pb.js';
import { alertHandler, type AlertHandlerDeps } from './handlers/alerts/index.js';

/** Wiring only: which implementation serves which service. */
export function alertingRoutes(deps: AlertHandlerDeps) {
  return (router: ConnectRouter) => {
    router.service(AlertService, alertHandler(deps));
  };
}
