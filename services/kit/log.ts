import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(service: string, level: string): Logger {
  return pino({
    level,
    base: { service, pid: process.pid },
    // Secrets never reach the log, whatever a handler passes in.
    redact: { paths: ['ezkey', '*.ezkey', 'token', '*.token', 'authorization', '*.authorization', 'password', '*.password'], censor: '***' },
  });
}
