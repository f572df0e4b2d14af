// npm run soak: the full statsd soak (issue 3), SOAK_LINES lines (default 1,000,000) through two
// ingest replicas over UDP, TCP and Unix with tokens; prints the ledger comparison with MySQL.
import { formatSoak, runSoak } from '../services/ingest/statsd/soak.js';

const lines = Number(process.env.SOAK_LINES ?? 1_000_000);
const result = await runSoak({ lines, seed: process.env.SOAK_SEED ? Number(process.env.SOAK_SEED) : undefined, log: (s) => console.log(s), stdio: process.env.SOAK_VERBOSE ? 'inherit' : 'pipe' });
console.log(formatSoak(result));
process.exit(result.mismatches.length === 0 && result.exitCodes.every((c) => c === 0) ? 0 : 1);
