import { collectDefaultMetrics, Registry } from 'prom-client';

/** One registry per replica, passed in deps; never the prom-client global. */
export function createMetrics(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}
