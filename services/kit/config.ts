import { z } from 'zod';

/** A bad or missing environment variable: the message names each one and what it must be. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Variables every service reads. Each service extends this with its own. */
export const baseConfigSchema = z.object({
  DATABASE_URL: z.string().regex(/^mysql:\/\//, 'must be a mysql:// URL, e.g. mysql://root@127.0.0.1:3306/osprey'),
  /** Shared secret carried by every internal call. */
  SERVICE_TOKEN: z.string().min(16, 'must be at least 16 characters (a shared secret for internal calls)'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Where this replica's internal Connect server binds: private by default. */
  RPC_HOST: z.string().default('127.0.0.1'),
  RPC_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** HTTP/1.1 port for /metrics and /healthz. */
  OPS_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /** The address other replicas use to reach this one; defaults to RPC_HOST:port. */
  RPC_ADVERTISE_HOST: z.string().optional(),
  HEARTBEAT_MS: z.coerce.number().int().min(100).default(2000),
  /** How long SIGTERM may take before the process exits anyway. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
});
export type BaseConfig = z.infer<typeof baseConfigSchema>;

/**
 * Parses the environment once, at start. Nothing else in a service reads process.env.
 * Throws a ConfigError naming every bad variable.
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: Record<string, string | undefined> = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    const given = env[name];
    return given === undefined ? `  ${name}: missing (${issue.message})` : `  ${name}=${JSON.stringify(redact(name, given))}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

function redact(name: string, value: string): string {
  return /TOKEN|SECRET|PASSWORD/.test(name) ? '***' : value;
}

/** Comma list of booleans in env: "1", "true", "yes", "on". */
export const envBool = z
  .union([z.boolean(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === 'boolean') return v;
    const s = v.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(s)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(s)) return false;
    ctx.addIssue({ code: 'custom', message: 'must be true or false' });
    return z.NEVER;
  });
