import { setTimeout as sleep } from 'node:timers/promises';
import { replicaHealthy } from '../agent/health.js';
import { portsOf, processCount, serviceDef, SERVICE_NAMES, MAX_REPLICAS_PER_HOST, type ServiceName } from '../services.js';

export interface HealthSample {
  at: number;
  /** service → healthy replica processes seen in this sample. */
  healthy: Record<string, number>;
}

/**
 * Probes every replica slot of the port plan of every service (SERVICE_NAMES: adding a
 * service to deploy/services.ts adds it here) on every host, every `everyMs`, independently
 * of the agents: grpc health on the RPC port for rpc services, /healthz on the public and
 * ops ports for http ones. It keeps how many replicas of each service were healthy at each
 * sample. `slotsPerHost` is how many processes of one rpc service a host may run (a
 * clustered http service is one process per host whatever it says); probing more slots than
 * a fleet uses only costs CPU. A replica that does not answer within `probeTimeoutMs`
 * counts as down; a stopped one is refused at once and a draining one says so, so the
 * timeout only decides how slow an answer, on a busy machine, still counts as healthy.
 */
export class HealthMonitor {
  readonly samples: HealthSample[] = [];
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly hosts: string[],
    private readonly portOffset: number,
    private readonly slotsPerHost = 2,
    private readonly everyMs = 150,
    private readonly probeTimeoutMs = 5000,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const healthy: Record<string, number> = {};
        await Promise.all(
          SERVICE_NAMES.flatMap((service) => {
            const def = serviceDef(service)!;
            const slots = Math.min(processCount(def, this.slotsPerHost), MAX_REPLICAS_PER_HOST);
            healthy[service] = 0;
            return this.hosts.flatMap((host) =>
              Array.from({ length: slots }, async (_, i) => {
                if (await replicaHealthy(service, host, portsOf(def, i, this.portOffset), this.probeTimeoutMs)) healthy[service]++;
              }),
            );
          }),
        );
        this.samples.push({ at: Date.now(), healthy });
        await sleep(this.everyMs);
      }
    })();
  }

  async stop(): Promise<HealthSample[]> {
    this.running = false;
    await this.loop;
    return this.samples;
  }

  /** The fewest healthy replicas seen per service (every service of SERVICE_NAMES). */
  minimum(): Record<ServiceName, number> {
    const min = Object.fromEntries(SERVICE_NAMES.map((s) => [s, Infinity])) as Record<ServiceName, number>;
    for (const s of this.samples) for (const name of SERVICE_NAMES) min[name] = Math.min(min[name], s.healthy[name] ?? 0);
    return min;
  }

  /** The samples taken between `from` and `to` (unix ms). */
  between(from: number, to: number): HealthSample[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to);
  }

  /** Samples in which some service had fewer than `n` healthy replicas (for a failure message). */
  below(n: number): Array<{ at: string; short: string[] }> {
    return this.samples
      .map((s) => ({ at: new Date(s.at).toISOString(), short: SERVICE_NAMES.filter((name) => (s.healthy[name] ?? 0) < n) }))
      .filter((s) => s.short.length > 0);
  }
}
