import { defineConfig } from 'drizzle-kit';

// Only `drizzle-kit generate` reads this: it diffs schema.ts against the committed
// snapshots, so it needs no database.
export default defineConfig({
  dialect: 'mysql',
  schema: './services/kit/db/schema.ts',
  out: './services/kit/db/migrations',
});
