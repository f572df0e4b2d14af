import cluster from 'node:cluster';
import type { Logger } from './log.js';

/**
 * Runs `workers` copies of this script as replicas sharing one listening socket. Each
 * worker accepts its own connections from it (node's SCHED_NONE): with the default
 * round-robin the primary accepts every connection and passes it to a worker over IPC,
 * and a burst of new connections waits in that one process (bench:http at 5,000/s: a
 * request on a new connection waited up to 65 ms at the start of a run; 100 connections
 * opened at once were answered in twice the time of one plain server's, the same with
 * SCHED_NONE). A worker that is busy or stopped does not accept, so the others take its
 * share. `NODE_CLUSTER_SCHED_POLICY=rr` gives the round-robin back. A worker that dies is
 * replaced after a backoff; SIGTERM/SIGINT stops every worker gracefully, then the primary.
 */
export function runClustered(workers: number, log: Logger, workerMain: () => void): void {
  if (!cluster.isPrimary) {
    workerMain();
    return;
  }
  if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ silent: false });
  let stopping = false;
  let backoffMs = 250;
  const fork = () => cluster.fork();
  for (let i = 0; i < workers; i++) fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    if (code === 2) {
      // Exit code 2 is a configuration error: another worker would fail the same way.
      log.fatal('worker stopped on a configuration error');
      process.exit(2);
    }
    log.warn({ pid: worker.process.pid, code, signal, backoffMs }, 'worker died; starting another');
    setTimeout(fork, backoffMs);
    backoffMs = Math.min(backoffMs * 2, 10_000);
  });
  cluster.on('listening', () => {
    backoffMs = 250;
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    const live = Object.values(cluster.workers ?? {});
    if (live.length === 0) process.exit(0);
    for (const w of live) w?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
