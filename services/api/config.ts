import { z } from 'zod';
import { baseConfigSchema } from '../kit/config.js';

export const apiConfigSchema = baseConfigSchema.extend({
  /** The public StatHat-compatible port, shared by every api worker on a host. */
  PORT: z.coerce.number().int().min(0).max(65535).default(8088),
  HOST: z.string().default('0.0.0.0'),
  /** Worker processes (replicas) behind PORT on this host. */
  API_WORKERS: z.coerce.number().int().min(1).max(64).default(2),
  /** How long an ezkey → account answer is reused (rotation takes effect within this). */
  EZKEY_CACHE_MS: z.coerce.number().int().min(0).default(30_000),
  /** Record calls in flight to ingest at once, at most (see INGEST_EAGER_BATCH). */
  INGEST_MAX_IN_FLIGHT: z.coerce.number().int().min(1).default(8),
  /**
   * While a Record call runs, new points queue behind it and leave together when it
   * returns; a further call starts alongside only once this many points are queued.
   */
  INGEST_EAGER_BATCH: z.coerce.number().int().min(1).default(500),
  /** Most points in one Record call. */
  INGEST_MAX_BATCH: z.coerce.number().int().min(1).default(5000),
});
export type ApiConfig = z.infer<typeof apiConfigSchema>;
