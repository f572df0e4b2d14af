import { AlertService } from '../../gen/osprey/v1/alerting_pb.js';
import { createMailer, type Mailer } from '../kit/mailer.js';
import { startReplica, type BaseDeps, type Replica } from '../kit/replica.js';
import type { AlertingConfig } from './config.js';
import { AlertDeliverer } from './deliverer.js';
import { AlertEvaluator } from './evaluator.js';
import { alertingRoutes } from './router.js';

export interface AlertingDeps extends BaseDeps {
  config: AlertingConfig;
  /** Unix milliseconds; tests move it by hand. */
  now?: () => number;
  mailer?: Mailer;
}

export interface AlertingReplica extends Replica {
  evaluator: AlertEvaluator;
  deliverer: AlertDeliverer;
}

/** Builds and starts one alerting replica; main.ts runs it, tests build it on port 0. */
export async function build(deps: AlertingDeps): Promise<AlertingReplica> {
  const { config, log, metrics } = deps;
  const pool = deps.database.pool;
  const now = deps.now ?? Date.now;
  const mailer = deps.mailer ?? createMailer({ smtpUrl: config.SMTP_URL, outboxDir: config.MAIL_OUTBOX_DIR, from: config.MAIL_FROM, log });
  const evaluator = new AlertEvaluator({ pool, now, log, metrics, batchSize: config.EVAL_BATCH, pauseAfterClaimMs: config.EVAL_PAUSE_AFTER_CLAIM_MS });
  const deliverer = new AlertDeliverer({
    pool,
    mailer,
    now,
    log,
    metrics,
    instance: `alerting:${process.pid}:${Math.random().toString(36).slice(2, 8)}`,
    maxAttempts: config.DELIVERY_MAX_ATTEMPTS,
    backoffMs: config.DELIVERY_BACKOFF_MS,
    leaseMs: config.DELIVERY_LEASE_MS,
    timeoutMs: config.DELIVERY_TIMEOUT_MS,
    batchSize: 50,
    publicUrl: config.PUBLIC_URL,
  });
  const replica = await startReplica('alerting', deps, {
    serviceNames: [AlertService.typeName],
    routes: alertingRoutes({ pool, now }),
    start: async () => {
      log.info({ mail: mailer.destination }, `alert mail goes to ${mailer.destination}`);
      evaluator.start(config.EVAL_INTERVAL_MS);
      deliverer.start(config.DELIVERY_INTERVAL_MS);
    },
    drain: async () => {
      evaluator.stop();
      deliverer.stop();
      await Promise.all([evaluator.idle(), deliverer.idle()]);
    },
    close: async () => {
      if (!deps.mailer) mailer.close();
      await deps.database.close();
    },
  });
  return Object.assign(replica, { evaluator, deliverer });
}
