import { loadConfig } from '../kit/config.js';
import { runClustered } from '../kit/cluster.js';
import { createLogger } from '../kit/log.js';
import { runMain } from '../kit/main.js';
import { apiConfigSchema, type ApiConfig } from './config.js';
import { build } from './server.js';

const config = () => loadConfig(apiConfigSchema);
let parsed: ApiConfig | undefined;
try {
  parsed = config();
} catch {
  // runMain reports the bad variables and exits.
}
if (parsed) runClustered(parsed.API_WORKERS, createLogger('api', parsed.LOG_LEVEL), () => runMain('api', config, build));
else runMain('api', config, build);
