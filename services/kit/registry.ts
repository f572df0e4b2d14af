import os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Logger } from './log.js';

export interface Instance {
  id: string;
  service: string;
  address: string;
}

/**
 * This replica's row in service_instances. Time comes from MySQL (NOW(3)) on both the
 * writing and the reading side, so hosts with skewed clocks still agree on liveness.
 */
export class Registration {
  readonly id: string;
  private timer: NodeJS.Timeout | undefined;
  /** The heartbeat being written, if any: stop() waits for it so it cannot re-insert the row. */
  private beating: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly pool: Pool,
    readonly service: string,
    readonly address: string,
    readonly opsAddress: string,
    private readonly heartbeatMs: number,
    private readonly log: Logger,
  ) {
    this.id = `${service}@${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  }

  async start(): Promise<void> {
    await this.pool.query(
      `INSERT INTO service_instances (id, service, address, ops_address, host, pid, started_at, heartbeat_at)
       VALUES (?, ?, ?, ?, ?, ?, NOW(3), NOW(3))`,
      [this.id, this.service, this.address, this.opsAddress, os.hostname(), process.pid],
    );
    this.timer = setInterval(() => {
      if (this.beating || this.stopped) return;
      this.beating = this.beat().finally(() => (this.beating = undefined));
    }, this.heartbeatMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    try {
      // A row removed by someone else's clean-up comes back: the replica is alive.
      await this.pool.query(
        `INSERT INTO service_instances (id, service, address, ops_address, host, pid, started_at, heartbeat_at)
         VALUES (?, ?, ?, ?, ?, ?, NOW(3), NOW(3))
         ON DUPLICATE KEY UPDATE heartbeat_at = NOW(3)`,
        [this.id, this.service, this.address, this.opsAddress, os.hostname(), process.pid],
      );
    } catch (err) {
      this.log.warn({ err }, 'registry heartbeat failed');
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // A heartbeat in flight is an upsert: deleting before it lands would leave the row behind.
    await this.beating;
    await this.pool.query('DELETE FROM service_instances WHERE id = ?', [this.id]);
  }
}

/** Replicas of `service` whose heartbeat is younger than `staleMs`. */
export async function liveInstances(pool: Pool, service: string, staleMs: number): Promise<Instance[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT id, service, address FROM service_instances
     WHERE service = ? AND heartbeat_at > NOW(3) - INTERVAL ? MICROSECOND
     ORDER BY id`,
    [service, staleMs * 1000],
  );
  return rows.map((r) => ({ id: String(r.id), service: String(r.service), address: String(r.address) }));
}
