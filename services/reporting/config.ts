import { z } from 'zod';
import { baseConfigSchema } from '../kit/config.js';

export const reportingConfigSchema = baseConfigSchema.extend({
  /** Mail goes over SMTP when set; otherwise into MAIL_OUTBOX_DIR as .eml files. */
  SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(),
  MAIL_OUTBOX_DIR: z.string().default('.data/outbox'),
  MAIL_FROM: z.string().default('Osprey reports <reports@osprey.localhost>'),
  /** The web app's address: unsubscribe links point there. */
  PUBLIC_URL: z.string().url().default('http://localhost:8080'),
  /** Signs unsubscribe links; defaults to a key derived from SERVICE_TOKEN. */
  UNSUBSCRIBE_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  REPORT_INTERVAL_MS: z.coerce.number().int().min(10).default(60_000),
  REPORT_MAX_STATS: z.coerce.number().int().min(1).max(200).default(20),
  REPORT_LEASE_MS: z.coerce.number().int().min(100).default(10 * 60_000),
  REPORT_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  RETENTION_INTERVAL_MS: z.coerce.number().int().min(10).default(3600_000),
  /** 1-minute rollups older than this are deleted. */
  RETENTION_1M_DAYS: z.coerce.number().int().min(1).default(30),
  /** 1-hour rollups older than this are deleted; days are kept forever. */
  RETENTION_1H_DAYS: z.coerce.number().int().min(1).default(730),
  /** Stats in the trash longer than this are purged with their data. */
  TRASH_HOURS: z.coerce.number().int().min(1).default(48),
});
export type ReportingConfig = z.infer<typeof reportingConfigSchema>;
