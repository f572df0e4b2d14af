import { z } from 'zod';
import { baseConfigSchema } from '../kit/config.js';

export const ingestConfigSchema = baseConfigSchema.extend({
  /** How often aggregated buckets are written to MySQL. */
  FLUSH_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  /** Points older than this many days are refused (they would land past retention). */
  MAX_POINT_AGE_DAYS: z.coerce.number().int().min(1).default(365 * 2),
  /** Points this far in the future are refused (a client clock gone wrong). */
  MAX_POINT_FUTURE_SEC: z.coerce.number().int().min(0).default(600),
});
export type IngestConfig = z.infer<typeof ingestConfigSchema>;
