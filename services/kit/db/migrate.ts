import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { migrate } from 'drizzle-orm/mysql2/migrator';
import { connectDatabase, databaseName, withDatabase } from './client.js';

export const migrationsFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Creates the database if missing, then applies every pending migration. */
export async function migrateDatabase(url: string): Promise<void> {
  await createDatabase(url);
  const database = connectDatabase(url, { connectionLimit: 1 });
  try {
    await migrate(database.db, { migrationsFolder });
  } finally {
    await database.close();
  }
}

export async function createDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  const conn = await mysql.createConnection({ uri: withDatabase(url, ''), timezone: 'Z' });
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${name.replace(/`/g, '``')}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await conn.end();
  }
}

export async function dropDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  const conn = await mysql.createConnection({ uri: withDatabase(url, ''), timezone: 'Z' });
  try {
    await conn.query(`DROP DATABASE IF EXISTS \`${name.replace(/`/g, '``')}\``);
  } finally {
    await conn.end();
  }
}
