import { loadConfig } from '../kit/config.js';
import { runMain } from '../kit/main.js';
import { reportingConfigSchema } from './config.js';
import { build } from './server.js';

runMain('reporting', () => loadConfig(reportingConfigSchema), build);
