import { loadConfig } from '../kit/config.js';
import { runMain } from '../kit/main.js';
import { graphingConfigSchema } from './config.js';
import { build } from './server.js';

runMain('graphing', () => loadConfig(graphingConfigSchema), build);
