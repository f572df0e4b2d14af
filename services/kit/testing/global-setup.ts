import mysql from 'mysql2/promise';
import { TEST_SERVER_URL } from './db.js';

/**
 * vitest globalSetup: before any test, make sure the MySQL server the tests use answers,
 * and if it does not, stop with what to run instead of hundreds of ECONNREFUSED failures.
 */
export default async function setup(): Promise<void> {
  try {
    const conn = await mysql.createConnection({ uri: TEST_SERVER_URL, connectTimeout: 3000 });
    await conn.end();
  } catch (err) {
    throw new Error(
      `npm test needs a MariaDB 10.11 or MySQL 8 at ${TEST_SERVER_URL.replace(/\/\/[^@]*@/, '//root@')} (${(err as Error).message}).\n` +
        'Start the one installed with:   sudo start-stop-daemon --start --background --exec /usr/sbin/mariadbd -- --user=mysql\n' +
        'or install it first with:       sudo apt-get update && sudo apt-get install -y mariadb-server\n' +
        'or point the tests elsewhere:   TEST_DATABASE_URL=mysql://user:pass@host:3306/ npm test\n' +
        '(.ci/run does all of this by itself.)',
    );
  }
}
