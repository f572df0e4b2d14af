import { z } from 'zod';
import { baseConfigSchema } from '../kit/config.js';

export const alertingConfigSchema = baseConfigSchema.extend({
  /** Mail goes over SMTP when set (smtp://user:pass@host:587); otherwise into MAIL_OUTBOX_DIR as .eml files. */
  SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(),
  MAIL_OUTBOX_DIR: z.string().default('.data/outbox'),
  MAIL_FROM: z.string().default('Osprey alerts <alerts@osprey.localhost>'),
  /** The web app's address, for links in notifications. */
  PUBLIC_URL: z.string().url().default('http://localhost:8080'),
  /** How often a replica looks for rules due this minute; a dead replica's rules wait at most this long plus its stalled transaction. */
  EVAL_INTERVAL_MS: z.coerce.number().int().min(10).default(5000),
  EVAL_BATCH: z.coerce.number().int().min(1).max(1000).default(100),
  /** Fault injection for tests only: hold claimed rules this long before evaluating them. */
  EVAL_PAUSE_AFTER_CLAIM_MS: z.coerce.number().int().min(0).default(0),
  DELIVERY_INTERVAL_MS: z.coerce.number().int().min(10).default(1000),
  DELIVERY_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(8),
  /** Wait after the first failed attempt; doubles each time, up to an hour. */
  DELIVERY_BACKOFF_MS: z.coerce.number().int().min(0).default(30_000),
  DELIVERY_LEASE_MS: z.coerce.number().int().min(100).default(60_000),
  DELIVERY_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
});
export type AlertingConfig = z.infer<typeof alertingConfigSchema>;
