import { ConfigError, type BaseConfig } from './config.js';
import { connectDatabase } from './db/client.js';
import { createLogger, type Logger } from './log.js';
import { createMetrics } from './metrics.js';
import { exitOnSignal, type BaseDeps } from './replica.js';

/**
 * The body of every service's main.ts: parse config (fail fast naming the variable),
 * make the deps, build the replica, and stop it gracefully on SIGTERM/SIGINT.
 */
export function runMain<C extends BaseConfig>(
  service: string,
  config: () => C,
  build: (deps: BaseDeps & { config: C }) => Promise<{ stop(): Promise<void> }>,
): void {
  let cfg: C;
  try {
    cfg = config();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`osprey ${service}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log: Logger = createLogger(service, cfg.LOG_LEVEL);
  const database = connectDatabase(cfg.DATABASE_URL);
  build({ config: cfg, log, database, metrics: createMetrics(service) }).then(
    (replica) => exitOnSignal(() => replica.stop(), log, cfg.SHUTDOWN_TIMEOUT_MS),
    (err) => {
      log.fatal({ err }, 'start failed');
      process.exit(1);
    },
  );
}
