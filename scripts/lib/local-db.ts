import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';

/**
 * Where the local tools (npm start, the CLI, migrate) find MySQL, in order:
 *  1. DATABASE_URL;
 *  2. a server on 127.0.0.1:3306 that lets root in without a password;
 *  3. a private MariaDB under .data/mariadb, started on demand (port 3307).
 * The same order everywhere, so `npm run osprey` sees what `npm start` wrote.
 */
export interface LocalDatabase {
  url: string;
  /** Human words for where it is. */
  where: string;
  /** Stops the private MariaDB when this process started it. */
  stop(): Promise<void>;
}

const DATA = path.resolve('.data');
const PRIVATE_PORT = 3307;

export async function resolveDatabase(env: Record<string, string | undefined>): Promise<LocalDatabase> {
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, where: 'DATABASE_URL', stop: async () => {} };
  if (await answers('mysql://root@127.0.0.1:3306/')) {
    return { url: 'mysql://root@127.0.0.1:3306/osprey', where: 'MySQL on 127.0.0.1:3306', stop: async () => {} };
  }
  return startPrivateMariadb();
}

async function answers(url: string): Promise<boolean> {
  try {
    const conn = await mysql.createConnection({ uri: url, connectTimeout: 1500 });
    await conn.end();
    return true;
  } catch {
    return false;
  }
}

function findBinary(names: string[]): string | undefined {
  for (const name of names) {
    for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
      const p = path.join(dir, name);
      if (fs.existsSync(p)) return p;
    }
  }
  return undefined;
}

async function startPrivateMariadb(): Promise<LocalDatabase> {
  const url = `mysql://root@127.0.0.1:${PRIVATE_PORT}/osprey`;
  const where = `private MariaDB in .data/mariadb (127.0.0.1:${PRIVATE_PORT})`;
  if (await answers(url.replace(/osprey$/, ''))) return { url, where, stop: async () => {} };
  const server = await spawnMariadb({ datadir: path.join(DATA, 'mariadb'), rundir: path.join(DATA, 'run'), port: PRIVATE_PORT, logFile: path.join(DATA, 'mariadb.log') });
  return { url: `${server.url}osprey`, where, stop: () => server.stop() };
}

export interface MariadbServer {
  /** mysql://root@127.0.0.1:PORT/ (add a database name). */
  url: string;
  /** SIGTERM (a clean shutdown) and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL: the server dies as in a crash. */
  kill(): Promise<void>;
}

/**
 * Starts a MariaDB of our own: `datadir` is created with mariadb-install-db on first use,
 * the server listens on 127.0.0.1:`port` only. Used by `npm start` (when no MySQL answers)
 * and by tests that stop and start their database.
 */
export async function spawnMariadb(opts: { datadir: string; rundir: string; port: number; logFile: string }): Promise<MariadbServer> {
  const server = findBinary(['mariadbd', 'mysqld']);
  const installDb = findBinary(['mariadb-install-db', 'mysql_install_db']);
  if (!server || !installDb) {
    throw new Error(
      'No MySQL answers on 127.0.0.1:3306 and no MariaDB is installed to start a private one.\n' +
        'Install it with:\n\n    sudo apt-get update && sudo apt-get install -y mariadb-server\n\n' +
        'or point Osprey at a server with DATABASE_URL=mysql://user:pass@host:3306/osprey',
    );
  }
  const { datadir, rundir, port, logFile } = opts;
  const url = `mysql://root@127.0.0.1:${port}/`;
  fs.mkdirSync(rundir, { recursive: true });
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  if (!fs.existsSync(path.join(datadir, 'mysql'))) {
    fs.mkdirSync(datadir, { recursive: true });
    const r = spawnSync(installDb, ['--no-defaults', `--datadir=${datadir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...asRoot], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mariadb-install-db failed:\n${r.stdout}\n${r.stderr}`);
  }
  const child = spawn(
    server,
    ['--no-defaults', `--datadir=${datadir}`, `--socket=${path.join(rundir, 'mariadb.sock')}`, `--port=${port}`, '--bind-address=127.0.0.1', `--pid-file=${path.join(rundir, 'mariadb.pid')}`, `--log-error=${logFile}`, ...asRoot],
    { stdio: 'ignore', detached: true },
  );
  child.unref();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const end = async (signal: NodeJS.Signals) => {
    // Unreferenced so npm start can exit without it; waiting for its exit must keep us alive.
    child.ref();
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  for (let i = 0; i < 150; i++) {
    if (await answers(url)) return { url, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await end('SIGKILL');
  throw new Error(`MariaDB did not start on port ${port}; see ${logFile}`);
}
