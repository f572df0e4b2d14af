import path from 'node:path';
import { ConfigError, loadConfig } from '../../services/kit/config.js';
import { createLogger } from '../../services/kit/log.js';
import { Agent } from './agent.js';
import type { Backend } from './backend.js';
import { agentConfigSchema, type AgentConfig } from './config.js';
import { startControlServer } from './control.js';
import { ProcessBackend } from './process-backend.js';
import { SystemdBackend, systemdRuns } from './systemd-backend.js';
import { FileTagSource, ImdsTagSource } from './tags.js';

// The host agent: `node <release>/dist/deploy/agent/main.js` (deploy/systemd/osprey-agent.service).
let config: AgentConfig;
try {
  config = loadConfig(agentConfigSchema);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`osprey agent: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
const log = createLogger('agent', config.LOG_LEVEL);
const home = path.resolve(config.OSPREY_HOME);
const node = config.OSPREY_NODE ?? process.execPath;
const imds = new ImdsTagSource(config.OSPREY_IMDS_ENDPOINT);
const tags = config.OSPREY_TAGS_FILE ? new FileTagSource(config.OSPREY_TAGS_FILE) : imds;

const useSystemd = config.OSPREY_BACKEND === 'systemd' || (config.OSPREY_BACKEND === 'auto' && systemdRuns());
const backend: Backend = useSystemd
  ? new SystemdBackend({ node, unitDir: config.OSPREY_SYSTEMD_UNIT_DIR, envDir: path.join(home, 'state', 'env'), user: config.OSPREY_SERVICE_USER, stopTimeoutMs: config.OSPREY_STOP_TIMEOUT_MS })
  : new ProcessBackend({ node, logDir: path.join(home, 'logs'), stopTimeoutMs: config.OSPREY_STOP_TIMEOUT_MS, log });

const advertise =
  config.OSPREY_ADVERTISE_HOST ??
  (config.OSPREY_TAGS_FILE ? undefined : await imds.localIpv4().catch(() => undefined)) ??
  (config.OSPREY_BIND_HOST === '0.0.0.0' ? '127.0.0.1' : config.OSPREY_BIND_HOST);

const agent = new Agent({
  home,
  tags,
  backend,
  log,
  node,
  hosts: { bind: config.OSPREY_BIND_HOST, advertise, public: config.OSPREY_PUBLIC_HOST },
  envFile: config.OSPREY_ENV_FILE ?? path.join(home, 'osprey.env'),
  portOffset: config.OSPREY_PORT_OFFSET,
  healthTimeoutMs: config.OSPREY_HEALTH_TIMEOUT_MS,
  settleMs: config.OSPREY_SETTLE_MS,
  drainMs: config.OSPREY_DRAIN_MS,
  verify: config.OSPREY_VERIFY,
});

const server = await startControlServer(agent, config.OSPREY_CONTROL_HOST, config.OSPREY_CONTROL_PORT, log);
log.info({ home, backend: backend.kind, tags: tags.description, control: `${config.OSPREY_CONTROL_HOST}:${config.OSPREY_CONTROL_PORT}`, advertise }, 'agent ready');

const tick = () =>
  !agent.pending &&
  agent.converge().then(
    (r) => {
      if (!r.ok) log.error({ result: r }, 'converge failed');
    },
    (err: Error) => log.error({ err }, 'converge failed'),
  );
void tick();
const timer = config.OSPREY_CONVERGE_INTERVAL_MS > 0 ? setInterval(() => void tick(), config.OSPREY_CONVERGE_INTERVAL_MS) : undefined;

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal, backend: backend.kind }, 'agent stopping');
  if (timer) clearInterval(timer);
  server.close();
  server.closeAllConnections();
  backend.close().then(
    () => process.exit(0),
    (err: Error) => {
      log.error({ err }, 'stopping services failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
