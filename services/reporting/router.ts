import type { ConnectRouter } from '@connectrpc/connect';
import { ReportService } from '../../gen/osprey/v1/reporting_pb.js';
import { reportHandler, type ReportHandlerDeps } from './handlers/reports/index.js';

/** Wiring only: which implementation serves which service. */
export function reportingRoutes(deps: ReportHandlerDeps) {
  return (router: ConnectRouter) => {
    router.service(ReportService, reportHandler(deps));
  };
}
