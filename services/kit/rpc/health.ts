import type { ServiceImpl } from '@connectrpc/connect';
import { Code, ConnectError } from '@connectrpc/connect';
import { Health, HealthCheckResponse_ServingStatus as Status } from '../../../gen/grpc/health/v1/health_pb.js';

/**
 * grpc.health.v1.Health for one replica. "" is the replica as a whole; each served
 * service is also listed by its full name (e.g. "osprey.v1.IngestService").
 */
export class HealthState {
  private serving = true;
  private readonly watchers = new Set<() => void>();

  constructor(readonly serviceNames: string[]) {}

  get isServing(): boolean {
    return this.serving;
  }

  setServing(serving: boolean): void {
    if (this.serving === serving) return;
    this.serving = serving;
    for (const w of this.watchers) w();
  }

  statusOf(service: string): Status | undefined {
    if (service !== '' && !this.serviceNames.includes(service)) return undefined;
    return this.serving ? Status.SERVING : Status.NOT_SERVING;
  }

  impl(): ServiceImpl<typeof Health> {
    const state = this;
    return {
      check: (req) => {
        const status = this.statusOf(req.service);
        if (status === undefined) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
        return { status };
      },
      list: () => {
        const statuses: Record<string, { status: Status }> = {};
        for (const name of ['', ...this.serviceNames]) statuses[name] = { status: this.statusOf(name)! };
        return { statuses };
      },
      watch: async function* (req, ctx) {
        let last: Status | undefined;
        while (!ctx.signal.aborted) {
          const status = state.statusOf(req.service) ?? Status.SERVICE_UNKNOWN;
          if (status !== last) {
            last = status;
            yield { status };
          }
          await new Promise<void>((resolve) => {
            const done = () => {
              state.watchers.delete(done);
              ctx.signal.removeEventListener('abort', done);
              resolve();
            };
            state.watchers.add(done);
            ctx.signal.addEventListener('abort', done);
          });
        }
      },
    };
  }
}
