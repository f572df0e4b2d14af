/**
 * Etsy statsd's management interface (TCP 8126), with its commands and output shapes, so
 * scripts written for it (`echo stats | nc host 8126`) keep working:
 *
 *   help                 the command list
 *   stats                uptime, messages.last_msg_seen (seconds ago), messages.bad_lines_seen,
 *                        then Osprey's own lines, then END
 *   counters | timers | gauges
 *                        util.inspect of { name: value } as Etsy prints it, then END. Counters are
 *                        the sum (value/rate) of the current minute, with Etsy's own
 *                        statsd.bad_lines_seen, statsd.packets_received and
 *                        statsd.metrics_received first; timers are the first 32 values of the
 *                        current minute; gauges the last value this replica holds.
 *   delcounters | deltimers | delgauges <name|prefix.*> ...
 *                        forgets those stats from this replica's memory ("deleted: name" or
 *                        "metric name not found" for each, then END). Samples already received
 *                        are kept and flushed: Osprey does not throw received data away.
 *   health [up|down]     "health: up"; `down` makes it answer "health: down" (for load balancers)
 *   quit                 closes the connection
 *
 * Anything else answers "ERROR". Commands are read a line at a time (Etsy reads one per
 * packet). With STATSD_AUTH=token a stat is shown as `<account id>:<name>` (a statsd name
 * cannot contain `:`), otherwise by its name. What is shown is this replica's memory: with
 * several replicas on a host the port is served by one of them (see claim.ts).
 */
import net from 'node:net';
import util from 'node:util';
import type { Logger } from '../../kit/log.js';
import { Claim, listenOrInUse } from './claim.js';
import { K_COUNTER, K_GAUGE, K_VALUE, type StatEntry, type StatsdIntake } from './intake.js';

const HELP = 'Commands: stats, counters, timers, gauges, delcounters, deltimers, delgauges, health, quit\n\n';
const MAX_COMMAND = 4096;

export class ManagementServer {
  health: 'up' | 'down' = 'up';
  bound = false;
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  private readonly claim: Claim;
  private readonly what: string;

  constructor(
    private readonly o: { host: string; port: number; intake: StatsdIntake; log: Logger; retryMs: number; now: () => number },
  ) {
    this.what = `statsd management tcp ${o.host}:${o.port}`;
    this.claim = new Claim({ what: this.what, log: o.log, retryMs: o.retryMs, tryBind: () => this.bind(), onChange: (b) => (this.bound = b) });
  }

  start(): Promise<void> {
    return this.claim.start();
  }

  address(): net.AddressInfo | null {
    return this.server ? (this.server.address() as net.AddressInfo) : null;
  }

  async stop(): Promise<void> {
    this.claim.stop();
    const s = this.server;
    this.server = null;
    this.bound = false;
    for (const c of this.conns) c.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  private async bind(): Promise<boolean> {
    const server = net.createServer((socket) => this.connection(socket));
    if (!(await listenOrInUse(server, { host: this.o.host, port: this.o.port }))) return false;
    this.server = server;
    this.o.log.info({ address: server.address() }, `${this.what}: listening`);
    return true;
  }

  private connection(socket: net.Socket): void {
    this.conns.add(socket);
    socket.once('close', () => this.conns.delete(socket));
    socket.on('error', (err) => this.o.log.debug({ err }, 'statsd management connection error'));
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      buffered += text;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!this.command(line, socket)) return;
      }
      if (buffered.length > MAX_COMMAND) {
        socket.write('ERROR\n');
        buffered = '';
      }
    });
    // `printf stats | nc` sends no newline: the last command ends with the stream.
    socket.on('end', () => {
      if (buffered.trim()) this.command(buffered, socket);
      socket.end();
    });
  }

  /** Runs one command line; false once the connection is closed. */
  command(line: string, out: { write(s: string): unknown; end(): unknown }): boolean {
    const words = line.trim().split(' ').filter((w) => w.length > 0);
    if (words.length === 0) return true;
    const [cmd, ...params] = words;
    switch (cmd) {
      case 'help':
        out.write(HELP);
        break;
      case 'health':
        if (params.length > 0) {
          const action = params[0].toLowerCase();
          if (action === 'up' || action === 'down') this.health = action;
        }
        out.write(`health: ${this.health}\n`);
        break;
      case 'stats':
        out.write(this.statsText());
        break;
      case 'counters':
        out.write(util.inspect(this.view(K_COUNTER)) + '\nEND\n\n');
        break;
      case 'timers':
        out.write(util.inspect(this.view(K_VALUE)) + '\nEND\n\n');
        break;
      case 'gauges':
        out.write(util.inspect(this.view(K_GAUGE)) + '\nEND\n\n');
        break;
      case 'delcounters':
        out.write(this.delete(K_COUNTER, params));
        break;
      case 'deltimers':
        out.write(this.delete(K_VALUE, params));
        break;
      case 'delgauges':
        out.write(this.delete(K_GAUGE, params));
        break;
      case 'quit':
        out.end();
        return false;
      default:
        out.write('ERROR\n');
    }
    return true;
  }

  private statsText(): string {
    const intake = this.o.intake;
    const now = Math.round(this.o.now() / 1000);
    const lines = [
      `uptime: ${now - Math.round(intake.startedMs / 1000)}`,
      `messages.last_msg_seen: ${now - Math.round(intake.lastMessageMs / 1000)}`,
      `messages.bad_lines_seen: ${intake.badLinesSeen}`,
      `osprey.live_stats: ${intake.liveStats}`,
      `osprey.pending_samples: ${intake.pendingSamples}`,
    ];
    return lines.join('\n') + '\nEND\n\n';
  }

  private key(e: StatEntry): string {
    return this.o.intake.tokenAuth ? `${e.account.id}:${e.name}` : e.name;
  }

  private *entries(kind: number): Generator<StatEntry> {
    for (const a of this.o.intake.allAccounts()) for (const e of a.byKind[kind].values()) yield e;
  }

  /** What Etsy keeps in its `counters`, `timers` or `gauges` object. */
  private view(kind: number): Record<string, number | number[]> {
    const intake = this.o.intake;
    const minute = Math.floor(this.o.now() / 60_000);
    const out: Record<string, number | number[]> = {};
    if (kind === K_COUNTER) {
      const current = intake.etsyMinute === minute;
      out['statsd.bad_lines_seen'] = current ? intake.etsyBad : 0;
      out['statsd.packets_received'] = current ? intake.etsyPackets : 0;
      out['statsd.metrics_received'] = current ? intake.etsyLines : 0;
    }
    for (const e of this.entries(kind)) {
      const current = e.minute === minute;
      if (kind === K_COUNTER) out[this.key(e)] = current ? e.count : 0;
      else if (kind === K_VALUE) out[this.key(e)] = current && e.recent ? [...e.recent] : [];
      else out[this.key(e)] = e.gauge;
    }
    return out;
  }

  /** Etsy's delete_stats: each argument is a full name or `folder.*`. */
  private delete(kind: number, params: string[]): string {
    let text = '';
    for (const wanted of params) {
      const matches: StatEntry[] = [];
      const folder = wanted.endsWith('.*') ? wanted.slice(0, -1) : null;
      for (const e of this.entries(kind)) {
        if (e.id === 0) continue; // still being looked up
        const k = this.key(e);
        if (k === wanted || (folder !== null && k.startsWith(folder))) matches.push(e);
      }
      if (matches.length === 0) text += `metric ${wanted} not found\n`;
      for (const e of matches) {
        e.account.forget(e);
        text += `deleted: ${this.key(e)}\n`;
      }
    }
    return text + 'END\n\n';
  }
}
