import { setTimeout as sleep } from 'node:timers/promises';
import { replicaHealthy } from '../agent/health.js';
import { portsOf, processCount, serviceDef, SERVICE_NAMES, MAX_REPLICAS_PER_HOST } from '../services.js';

export interface HealthSample {
  at: number;
  healthy: Record<string, number>;
}

/**
 * Probes every replica slot of the port plan on every host (grpc health for rpc services,
 * /healthz for http ones) every `everyMs`, independently of the agents, and keeps how many
 * replicas of each service were healthy at each sample.
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
                if (await replicaHealthy(service, host, portsOf(def, i, this.portOffset), 1000)) healthy[service]++;
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

  /** The fewest healthy replicas seen per service. */
  minimum(): Record<string, number> {
    const min: Record<string, number> = {};
    for (const s of this.samples) for (const [k, v] of Object.entries(s.healthy)) min[k] = Math.min(min[k] ?? Infinity, v);
    return min;
  }
}
