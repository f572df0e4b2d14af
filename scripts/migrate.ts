// npm run migrate: applies pending migrations to the database the local tools use.
import { redactUrl } from '../services/kit/db/client.js';
import { migrateDatabase } from '../services/kit/db/migrate.js';
import { resolveDatabase } from './lib/local-db.js';

const db = await resolveDatabase(process.env);
try {
  await migrateDatabase(db.url);
  console.log(`migrated ${redactUrl(db.url)} (${db.where})`);
} finally {
  await db.stop();
}
