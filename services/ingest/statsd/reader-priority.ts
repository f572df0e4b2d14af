/**
 * The scheduling priority of the UDP reader thread (listeners.ts).
 *
 * The reader only moves datagrams from the kernel's receive buffer (208 KB by default: a few
 * hundred small datagrams, a few milliseconds at tens of thousands a second) into the ring
 * the parsing thread reads. At the same priority as the parsing thread, a flush (a second
 * or more of CPU with 100,000 live stats) and MariaDB on the same core made it wait its
 * turn for longer than that, and the kernel dropped datagrams in bursts. As a real-time
 * thread (SCHED_FIFO) it runs the moment a datagram arrives, for the few microseconds a
 * datagram costs (while datagrams come fast it naps STATSD_UDP_COALESCE_US after each turn of
 * its loop, so it does not preempt the parsing thread for every one: listeners.ts).
 * bench:ingest at 1 line a datagram: loss-free rate 12,500 -> 35,000 lines/s
 * (README: "statsd benchmark"). It cannot starve the replica: it naps while the ring is
 * more than half full (listeners.ts), and the kernel's real-time throttling leaves the
 * other threads time in any case.
 *
 * Node has no call for a thread's scheduling policy, so `chrt` (util-linux, in every Debian
 * and most other systems) sets it; the thread's id comes from /proc/thread-self. It needs
 * CAP_SYS_NICE or an RLIMIT_RTPRIO of at least REALTIME_PRIORITY (the deploy agent's units
 * set LimitRTPRIO). `high` is the nice value -20 instead (CAP_SYS_NICE or RLIMIT_NICE);
 * under the EEVDF scheduler it shortened the waits far less (a nice of -10 left the bursts
 * as they were).
 */
import { execFile } from 'node:child_process';
import os from 'node:os';

export const READER_PRIORITIES = ['realtime', 'high', 'normal'] as const;
export type ReaderPriority = (typeof READER_PRIORITIES)[number];

/** SCHED_FIFO priority of the reader: low among real-time threads (1-99), above every normal one. */
export const REALTIME_PRIORITY = 10;

export interface PriorityOutcome {
  /** What the thread runs with now. */
  applied: ReaderPriority;
  /** Why a higher priority than `applied` could not be set. */
  refused?: string;
}

function chrt(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('chrt', args, { timeout: 5000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(String(stderr).trim() || err.message));
      else resolve();
    });
  });
}

/**
 * Gives thread `tid` (of this process) the priority asked for, or the next one down that the
 * system allows. Never throws: what could not be set is in `refused`.
 */
export async function setThreadPriority(tid: number, want: ReaderPriority): Promise<PriorityOutcome> {
  if (want === 'normal' || !(tid > 0)) return { applied: 'normal', ...(tid > 0 ? {} : { refused: 'the thread id is unknown (no /proc/thread-self)' }) };
  const refused: string[] = [];
  if (want === 'realtime') {
    try {
      await chrt(['--fifo', '--pid', String(REALTIME_PRIORITY), String(tid)]);
      return { applied: 'realtime' };
    } catch (err) {
      refused.push(`SCHED_FIFO: ${(err as Error).message}`);
    }
  }
  try {
    // setpriority(2) with a thread id sets that thread's nice value only (Linux).
    os.setPriority(tid, -20);
    return { applied: 'high', ...(refused.length ? { refused: refused.join('; ') } : {}) };
  } catch (err) {
    refused.push(`nice -20: ${(err as Error).message}`);
  }
  return { applied: 'normal', refused: refused.join('; ') };
}
