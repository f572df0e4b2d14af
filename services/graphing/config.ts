import { z } from 'zod';
import { baseConfigSchema } from '../kit/config.js';

export const graphingConfigSchema = baseConfigSchema.extend({
  /**
   * How long rollups_1m and rollups_1h keep rows (the retention clean-up's settings):
   * auto resolution skips a table that no longer holds the start of a range, so an old
   * range is not drawn as zeros.
   */
  ROLLUP_1M_RETENTION_DAYS: z.coerce.number().int().min(1).default(30),
  ROLLUP_1H_RETENTION_DAYS: z.coerce.number().int().min(1).default(730),
  /** Renders (SVG or PNG) one replica runs at once; more wait. About the number of cores. */
  RENDER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  /** Renders allowed to wait; beyond it a render is refused (the balanced client tries the next replica). */
  RENDER_QUEUE_MAX: z.coerce.number().int().min(0).default(64),
  /** Stats one Query may ask for. */
  QUERY_MAX_STATS: z.coerce.number().int().min(1).max(1000).default(20),
});
export type GraphingConfig = z.infer<typeof graphingConfigSchema>;
