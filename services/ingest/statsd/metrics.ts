import { Counter, Gauge, type Registry } from 'prom-client';
import { AUTH_FAILURE_REASONS, COUNTED_BAD_LINE_REASONS, DROP_REASONS, type ListenerStats, type StatsdIntake } from './intake.js';

/**
 * The statsd counters in /metrics. Listeners count in plain numbers (a prom-client inc per
 * line would cost more than parsing it); each scrape copies them in.
 */
export function registerStatsdMetrics(registry: Registry, listeners: () => ListenerStats[], intake: StatsdIntake): void {
  const copy = (name: string, help: string, read: (s: ListenerStats) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['listener'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of listeners()) this.inc({ listener: s.listener }, read(s));
      },
    });
  copy('osprey_statsd_packets_total', 'statsd datagrams (UDP) or reads (TCP, Unix) received', (s) => s.packets);
  copy('osprey_statsd_bytes_total', 'statsd bytes received', (s) => s.bytes);
  copy('osprey_statsd_lines_total', 'statsd lines received, good and bad', (s) => s.lines);
  copy('osprey_statsd_dropped_packets_total', 'UDP datagrams dropped because too many were waiting to be parsed', (s) => s.packetsDropped);
  copy('osprey_statsd_read_pauses_total', 'Times a TCP or Unix connection stopped reading until the write-ahead log had written its backlog', (s) => s.pauses);
  copy('osprey_statsd_udp_queue_releases_total', "Times the UDP reader thread's queue, touched far by a burst, was replaced by a fresh one once quiet (STATSD_UDP_QUEUE_RELEASE_MS): its memory went back to the system", (s) => s.queueReleases);
  copy('osprey_statsd_udp_kernel_drops_total', "UDP datagrams the kernel dropped for this listener's socket (its receive buffer was full; /proc/net/udp)", (s) => s.kernelDrops());

  const byReason = <R extends string>(name: string, help: string, reasons: readonly R[], read: (s: ListenerStats) => Record<R, number>) =>
    new Counter({
      name,
      help,
      labelNames: ['listener', 'reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of listeners()) {
          const counts = read(s);
          for (const reason of reasons) if (counts[reason] > 0) this.inc({ listener: s.listener, reason }, counts[reason]);
        }
      },
    });
  byReason('osprey_statsd_bad_lines_total', 'statsd lines refused, by reason', COUNTED_BAD_LINE_REASONS, (s) => s.bad);
  byReason('osprey_statsd_auth_failures_total', 'statsd lines refused for their token (missing, unknown, revoked)', AUTH_FAILURE_REASONS, (s) => s.auth);
  byReason('osprey_statsd_dropped_samples_total', 'statsd samples of good lines not aggregated, by reason', DROP_REASONS, (s) => s.dropped);

  new Gauge({
    name: 'osprey_statsd_connections',
    help: 'Open statsd TCP and Unix connections',
    labelNames: ['listener'],
    registers: [registry],
    collect() {
      for (const s of listeners()) if (s.listener !== 'udp') this.set({ listener: s.listener }, s.connections);
    },
  });
  new Gauge({
    name: 'osprey_statsd_listener_bound',
    help: '1 when this replica holds the listener address, 0 while it stands by for another replica',
    labelNames: ['listener'],
    registers: [registry],
    collect() {
      for (const s of listeners()) this.set({ listener: s.listener }, s.bound ? 1 : 0);
    },
  });
  new Gauge({
    name: 'osprey_statsd_udp_reader_priority',
    help: "1 for the UDP reader thread's scheduling priority (realtime, high or normal; STATSD_UDP_READER_PRIORITY asks for one)",
    labelNames: ['priority'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of listeners()) if (s.listener === 'udp' && s.readerPriority) this.set({ priority: s.readerPriority }, 1);
    },
  });
  new Gauge({
    name: 'osprey_statsd_udp_queued_bytes',
    help: 'UDP datagrams read by the reader thread and waiting to be parsed, in bytes (at most STATSD_UDP_QUEUE_BYTES)',
    registers: [registry],
    collect() {
      for (const s of listeners()) if (s.listener === 'udp') this.set(s.queuedBytes());
    },
  });
  new Gauge({
    name: 'osprey_statsd_udp_queue_touched_bytes',
    help: 'How far into its queue (STATSD_UDP_QUEUE_BYTES) the UDP reader thread has ever written: the part of the queue in memory',
    registers: [registry],
    collect() {
      for (const s of listeners()) if (s.listener === 'udp') this.set(s.queueTouchedBytes());
    },
  });
  new Gauge({
    name: 'osprey_statsd_pending_samples',
    help: 'statsd samples waiting for a new stat or token to be looked up',
    registers: [registry],
    collect() {
      this.set(intake.pendingSamples);
    },
  });
  new Gauge({
    name: 'osprey_statsd_live_stats',
    help: 'statsd stats held in memory',
    registers: [registry],
    collect() {
      this.set(intake.liveStats);
    },
  });
}
