import { loadConfig } from '../kit/config.js';
import { runMain } from '../kit/main.js';
import { alertingConfigSchema } from './config.js';
import { build } from './server.js';

runMain('alerting', () => loadConfig(alertingConfigSchema), build);
