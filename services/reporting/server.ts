import { ReportService } from '../../gen/osprey/v1/reporting_pb.js';
import { createMailer, type Mailer } from '../kit/mailer.js';
import { startReplica, type BaseDeps, type Replica } from '../kit/replica.js';
import type { ReportingConfig } from './config.js';
import { ReportSender } from './reporter.js';
import { cleanUp } from './retention.js';
import { reportingRoutes } from './router.js';
import { RollupSparklineRenderer, type SparklineRenderer } from './sparkline.js';
import { defaultUnsubscribeSecret } from './unsubscribe.js';

export interface ReportingDeps extends BaseDeps {
  config: ReportingConfig;
  /** Unix milliseconds; tests move it by hand. */
  now?: () => number;
  mailer?: Mailer;
  /** Defaults to the rollup-based stand-in until GraphService.Render is callable. */
  renderer?: SparklineRenderer;
}

export interface ReportingReplica extends Replica {
  reports: ReportSender;
  /** One retention pass now (the loop runs it every RETENTION_INTERVAL_MS). */
  cleanUp(): ReturnType<typeof cleanUp>;
}

/** Builds and starts one reporting replica; main.ts runs it, tests build it on port 0. */
export async function build(deps: ReportingDeps): Promise<ReportingReplica> {
  const { config, log, metrics } = deps;
  const pool = deps.database.pool;
  const now = deps.now ?? Date.now;
  const mailer = deps.mailer ?? createMailer({ smtpUrl: config.SMTP_URL, outboxDir: config.MAIL_OUTBOX_DIR, from: config.MAIL_FROM, log });
  const unsubscribeSecret = config.UNSUBSCRIBE_SECRET ?? defaultUnsubscribeSecret(config.SERVICE_TOKEN);
  const reports = new ReportSender({
    pool,
    mailer,
    renderer: deps.renderer ?? new RollupSparklineRenderer(pool),
    now,
    log,
    metrics,
    instance: `reporting:${process.pid}:${Math.random().toString(36).slice(2, 8)}`,
    unsubscribeSecret,
    publicUrl: config.PUBLIC_URL,
    maxStats: config.REPORT_MAX_STATS,
    leaseMs: config.REPORT_LEASE_MS,
    maxAttempts: config.REPORT_MAX_ATTEMPTS,
  });
  const policy = { minuteDays: config.RETENTION_1M_DAYS, hourDays: config.RETENTION_1H_DAYS, trashHours: config.TRASH_HOURS };
  const runCleanUp = () => cleanUp(pool, now(), policy);
  let retentionTimer: NodeJS.Timeout | undefined;
  let retentionRun: Promise<unknown> | undefined;
  const replica = await startReplica('reporting', deps, {
    serviceNames: [ReportService.typeName],
    routes: reportingRoutes({ pool, now, unsubscribeSecret }),
    start: async () => {
      log.info({ mail: mailer.destination }, `report mail goes to ${mailer.destination}`);
      reports.start(config.REPORT_INTERVAL_MS);
      retentionTimer = setInterval(() => {
        retentionRun ??= runCleanUp()
          .then((r) => log.info(r, 'retention clean-up done'), (err) => log.error({ err }, 'retention clean-up failed'))
          .finally(() => (retentionRun = undefined));
      }, config.RETENTION_INTERVAL_MS);
      retentionTimer.unref();
    },
    drain: async () => {
      reports.stop();
      clearInterval(retentionTimer);
      await Promise.all([reports.idle(), retentionRun]);
    },
    close: async () => {
      if (!deps.mailer) mailer.close();
      await deps.database.close();
    },
  });
  return Object.assign(replica, { reports, cleanUp: runCleanUp });
}
