import { z } from 'zod';

const ms = (def: number) => z.coerce.number().int().min(0).default(def);

/** The agent's environment (the systemd unit sets these; see deploy/systemd/osprey-agent.service). */
export const agentConfigSchema = z.object({
  /** Holds releases/, current, state/, logs/ and osprey.env. */
  OSPREY_HOME: z.string().default('/opt/osprey'),
  /** Tags from this JSON file instead of EC2 instance metadata. */
  OSPREY_TAGS_FILE: z.string().optional(),
  OSPREY_IMDS_ENDPOINT: z.string().url().default('http://169.254.169.254'),
  OSPREY_BACKEND: z.enum(['auto', 'systemd', 'process']).default('auto'),
  /** The control endpoint (status, converge, activate): loopback by default, never public. */
  OSPREY_CONTROL_HOST: z.string().default('127.0.0.1'),
  OSPREY_CONTROL_PORT: z.coerce.number().int().min(0).max(65535).default(7070),
  /** Where replicas' internal servers bind (RPC_HOST). */
  OSPREY_BIND_HOST: z.string().default('0.0.0.0'),
  /** How other hosts reach this one (RPC_ADVERTISE_HOST); default: IMDS local-ipv4. */
  OSPREY_ADVERTISE_HOST: z.string().optional(),
  /** Where public http services (api, web) listen (HOST). */
  OSPREY_PUBLIC_HOST: z.string().default('0.0.0.0'),
  /** KEY=VALUE lines every service gets: DATABASE_URL, SERVICE_TOKEN, LOG_LEVEL ... */
  OSPREY_ENV_FILE: z.string().optional(),
  /** Added to every port of the plan (deploy/services.ts); 0 in production. */
  OSPREY_PORT_OFFSET: z.coerce.number().int().min(0).max(50_000).default(0),
  OSPREY_CONVERGE_INTERVAL_MS: ms(30_000),
  /** How long a started replica has to pass its health check. */
  OSPREY_HEALTH_TIMEOUT_MS: ms(60_000),
  /**
   * After a replica passes its check, wait this long before touching the next one, so
   * callers' replica lists (refreshed from service_instances every second) include it.
   */
  OSPREY_SETTLE_MS: ms(3000),
  /**
   * Before stopping a public http replica, report it out of service (GET /lb/<service>
   * answers 503) for this long, so load balancers stop sending it new connections.
   */
  OSPREY_DRAIN_MS: ms(5000),
  OSPREY_STOP_TIMEOUT_MS: ms(30_000),
  OSPREY_SYSTEMD_UNIT_DIR: z.string().default('/etc/systemd/system'),
  OSPREY_SERVICE_USER: z.string().default('osprey'),
  /** The node binary services run with (default: the agent's own). */
  OSPREY_NODE: z.string().optional(),
  /** Verify every file of a release against its manifest before switching to it. */
  OSPREY_VERIFY: z
    .enum(['0', '1', 'true', 'false'])
    .default('1')
    .transform((v) => v === '1' || v === 'true'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});
export type AgentConfig = z.infer<typeof agentConfigSchema>;
