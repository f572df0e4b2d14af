import { loadConfig } from '../kit/config.js';
import { runMain } from '../kit/main.js';
import { ingestConfigSchema } from './config.js';
import { build } from './server.js';

runMain('ingest', () => loadConfig(ingestConfigSchema), build);
