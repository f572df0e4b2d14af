import { z } from 'zod';
import { baseConfigSchema, envBool } from '../kit/config.js';

export const webConfigSchema = baseConfigSchema.extend({
  /** The public port for pages, /api/v1, /x and embeds, shared by every web worker on a host. */
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().default('0.0.0.0'),
  /** Worker processes (replicas) behind PORT on this host. */
  WEB_WORKERS: z.coerce.number().int().min(1).max(64).default(2),
  /**
   * Signs embed URLs of private stats. Every web replica must share it. When unset it is
   * derived from SERVICE_TOKEN (which they share already), so a rotation of either
   * invalidates the signed embed links handed out before.
   */
  WEB_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Where people send points (the api service), shown in curl examples. */
  API_PUBLIC_URL: z.string().url().default("http://localhost:8088"),
  /** How long a login lasts. */
  SESSION_TTL_HOURS: z.coerce.number().int().min(1).default(24 * 30),
  /** Mark cookies Secure: set it when the web app is served over HTTPS. */
  COOKIE_SECURE: envBool.default(false),
});
export type WebConfig = z.infer<typeof webConfigSchema>;
