import { z } from 'zod';
import { ConfigError, loadConfig } from '../services/kit/config.js';
import { migrateDatabase } from '../services/kit/db/migrate.js';
import { redactUrl } from '../services/kit/db/client.js';

/**
 * Applies a release's migrations (dist/services/kit/db/migrations) to DATABASE_URL. The
 * agent runs it from the new release before any replica restarts, so migrations must be
 * additive: the old release keeps running against the new schema until it is replaced.
 */
const schema = z.object({ DATABASE_URL: z.string().regex(/^mysql:\/\//, 'must be a mysql:// URL') });
try {
  const { DATABASE_URL } = loadConfig(schema);
  await migrateDatabase(DATABASE_URL);
  process.stdout.write(`migrated ${redactUrl(DATABASE_URL)}\n`);
} catch (err) {
  process.stderr.write(`osprey migrate: ${err instanceof ConfigError ? err.message : String((err as Error).stack ?? err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
}
