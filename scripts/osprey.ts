// npm run osprey -- <command>: the operator's CLI.
import { parseArgs } from 'node:util';
import type { RowDataPacket } from 'mysql2/promise';
import { createAccount, findAccountByEzkey } from '../services/kit/accounts.js';
import { connectDatabase } from '../services/kit/db/client.js';
import { migrateDatabase } from '../services/kit/db/migrate.js';
import { KIND_NAME } from '../services/kit/db/schema.js';
import { OspreyError } from '../services/kit/errors.js';
import { createToken, listTokens, revokeToken } from '../services/kit/tokens.js';
import { resolveDatabase } from './lib/local-db.js';

const USAGE = `usage: npm run osprey -- <command>

  account create --email E     create an account and print its ezkey
  stats list --ezkey K         list an account's stats with their totals
  token create --ezkey K [--name N]
                               create a statsd token for the account and print it (shown once)
  token list --ezkey K         list the account's statsd tokens (prefix, state)
  token revoke --ezkey K --id N
                               revoke a statsd token: ingest refuses it within a minute

The database is DATABASE_URL, else MySQL on 127.0.0.1:3306, else the private MariaDB
that npm start uses under .data/.`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      email: { type: 'string' },
      ezkey: { type: 'string' },
      name: { type: 'string' },
      id: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals.join(' ');
  if (values.help || command === '' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  const need = (name: 'email' | 'ezkey' | 'id') => {
    const v = values[name];
    if (!v) throw new UsageError(`${command} needs --${name}`);
    return v;
  };
  const known = ['account create', 'stats list', 'token create', 'token list', 'token revoke'];
  if (!known.includes(command)) throw new UsageError(`unknown command "${command}"`);

  const local = await resolveDatabase(process.env);
  await migrateDatabase(local.url);
  const database = connectDatabase(local.url, { connectionLimit: 2 });
  const accountOf = async () => {
    const ezkey = need('ezkey');
    const account = await findAccountByEzkey(database.pool, ezkey);
    if (!account) throw new UsageError(`no account has the ezkey "${ezkey}"`);
    return account;
  };
  try {
    switch (command) {
      case 'token create': {
        const account = await accountOf();
        const t = await createToken(database.pool, 'statsd_tokens', account.id, values.name ?? 'statsd');
        console.error(`statsd token ${t.id} "${t.name}" created for ${account.email} (shown only now):`);
        console.log(t.token);
        return 0;
      }
      case 'token list': {
        const account = await accountOf();
        const rows = await listTokens(database.pool, 'statsd_tokens', account.id);
        if (rows.length === 0) {
          console.log(`no statsd tokens yet for ${account.email}`);
          return 0;
        }
        printTable(
          rows.map((r) => ({
            id: String(r.id),
            name: r.name,
            prefix: `${r.prefix}…`,
            created: r.createdAt.toISOString().slice(0, 19).replace('T', ' '),
            state: r.revokedAt ? `revoked ${r.revokedAt.toISOString().slice(0, 19).replace('T', ' ')}` : 'live',
          })),
        );
        return 0;
      }
      case 'token revoke': {
        const account = await accountOf();
        const id = Number(need('id'));
        if (!Number.isInteger(id) || id < 1) throw new UsageError('--id must be a token id (see token list)');
        await revokeToken(database.pool, 'statsd_tokens', account.id, id);
        console.log(`statsd token ${id} revoked`);
        return 0;
      }
      case 'account create': {
        const account = await createAccount(database.pool, need('email'));
        console.log(`account ${account.id} created for ${account.email}\nezkey: ${account.ezkey}`);
        return 0;
      }
      case 'stats list': {
        const ezkey = need('ezkey');
        const account = await findAccountByEzkey(database.pool, ezkey);
        if (!account) throw new UsageError(`no account has the ezkey "${ezkey}"`);
        const [rows] = await database.pool.query<RowDataPacket[]>(
          `SELECT s.id, s.name, s.kind, s.deleted_at, COALESCE(SUM(r.count), 0) AS samples, COALESCE(SUM(r.sum), 0) AS total, MAX(r.bucket) AS last
             FROM stats s LEFT JOIN rollups_1d r ON r.stat_id = s.id
            WHERE s.account_id = ? GROUP BY s.id ORDER BY s.name, s.kind`,
          [account.id],
        );
        if (rows.length === 0) {
          console.log(`no stats yet for ${account.email}`);
          return 0;
        }
        const table = rows.map((r) => ({
          id: String(r.id),
          name: String(r.name) + (r.deleted_at ? ' (in trash)' : ''),
          kind: KIND_NAME[Number(r.kind)],
          samples: String(Number(r.samples)),
          'total/mean': String(Number(r.kind) === 2 ? (Number(r.samples) ? Number(r.total) / Number(r.samples) : 0) : Number(r.total)),
          'last day': r.last ? new Date(Number(r.last) * 1000).toISOString().slice(0, 10) : '-',
        }));
        printTable(table);
        return 0;
      }
    }
    return 1;
  } finally {
    await database.close();
    await local.stop();
  }
}

function printTable(rows: Record<string, string>[]): void {
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i])).join('  ').trimEnd();
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => r[c])));
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError || err instanceof OspreyError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      console.error(`osprey: ${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    console.error(`osprey: ${(err as Error).message}`);
    process.exit(1);
  },
);
