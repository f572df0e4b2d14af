import { loadConfig } from '../kit/config.js';
import { runClustered } from '../kit/cluster.js';
import { createLogger } from '../kit/log.js';
import { runMain } from '../kit/main.js';
import { webConfigSchema, type WebConfig } from './config.js';
import { build } from './server.js';

const config = () => loadConfig(webConfigSchema);
let parsed: WebConfig | undefined;
try {
  parsed = config();
} catch {
  // runMain reports the bad variables and exits.
}
if (parsed) runClustered(parsed.WEB_WORKERS, createLogger('web', parsed.LOG_LEVEL), () => runMain('web', config, build));
else runMain('web', config, build);
