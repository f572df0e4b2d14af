import { randomBytes } from 'node:crypto';
import { connectDatabase, withDatabase, type Database } from '../db/client.js';
import { dropDatabase, migrateDatabase } from '../db/migrate.js';

/** The server tests create their databases on; CI and `npm test` use the local MariaDB. */
export const TEST_SERVER_URL = process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306/';

export interface TestDatabase {
  url: string;
  database: Database;
  drop(): Promise<void>;
}

/** A fresh, migrated database of the test's own, dropped by drop(). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const url = withDatabase(TEST_SERVER_URL, `osprey_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`);
  await migrateDatabase(url);
  const database = connectDatabase(url);
  return {
    url,
    database,
    async drop() {
      await database.close().catch(() => {});
      await dropDatabase(url);
    },
  };
}

export const TEST_SERVICE_TOKEN = 'test-service-token-0123456789';

/** The base config a test replica runs with. */
export function testBaseConfig(url: string) {
  return {
    DATABASE_URL: url,
    SERVICE_TOKEN: TEST_SERVICE_TOKEN,
    LOG_LEVEL: 'silent' as const,
    RPC_HOST: '127.0.0.1',
    RPC_PORT: 0,
    OPS_PORT: 0,
    RPC_ADVERTISE_HOST: undefined,
    HEARTBEAT_MS: 200,
    SHUTDOWN_TIMEOUT_MS: 10_000,
  };
}
