/**
 * What else the machine did while a benchmark step ran, and how the load generator is started.
 *
 * This machine's own services start work now and then: RabbitMQ boots an Erlang VM every
 * minute or so to check on epmd (~1 s of CPU over both cores, seen with perf sched), and
 * MariaDB, which is not pinned, works on the generator's core while a flush lands. One such
 * burst in a 3 s step or a 10 s latency run decides the result. So a step measures the CPU
 * that processes other than the ones it accounts for took meanwhile (all of /proc/stat's
 * user, nice and system time, less the server's, the generator's, MariaDB's, the kernel
 * threads' (loopback delivery in ksoftirqd is the benchmark's work) and the benchmark
 * script's own), and the hypervisor's steal; a step over NOISE_MS of either is
 * marked, and the benchmarks run such a step again (at most twice) where its result was
 * spoiled by it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export const NOISE_MS = 100;
const NOISY_STEP_RETRIES = 2;

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** A process's CPU (all its threads) from /proc/PID/stat, in ms, and its flags; null once it is gone. */
function procStat(pid: number | string): { userMs: number; systemMs: number; flags: number } | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { userMs: (Number(f[11]) / CLK_TCK) * 1000, systemMs: (Number(f[12]) / CLK_TCK) * 1000, flags: Number(f[6]) };
  } catch {
    return null;
  }
}

/** utime + stime of a process (all its threads), in ms; NaN once it is gone. */
export function processCpuMs(pid: number): number {
  const s = procStat(pid);
  return s ? s.userMs + s.systemMs : NaN;
}

/**
 * Per thread of `pid`: [run ns, runnable-but-waiting ns, time slices] from
 * /proc/PID/task/TID/schedstat, keyed "TID", or "TID rt" for a SCHED_FIFO thread.
 */
export function threadTimes(pid: number): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const ss = fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').trim().split(' ').map(Number);
      const fifo = /policy\s*:\s*1\b/.test(fs.readFileSync(`/proc/${pid}/task/${t}/sched`, 'utf8'));
      m.set(fifo ? `${t} rt` : t, ss);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return m;
}

/** Of `pids` (those still running), CPU in ms: all of it, or only the kernel's part (stime). */
export function processesCpuMs(pids: readonly number[], which: 'all' | 'sys' = 'all'): number {
  let t = 0;
  for (const pid of pids) {
    const s = procStat(pid);
    if (s) t += (which === 'all' ? s.userMs : 0) + s.systemMs;
  }
  return t;
}

function machineCpuMs(): { busy: number; steal: number } {
  const f = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const ms = (t: number) => (t / CLK_TCK) * 1000;
  return { busy: ms(f[0] + f[1] + f[2]), steal: ms(f[7] ?? 0) };
}

/** CPU of the kernel's own threads (ksoftirqd delivering loopback packets, kworkers), ms: the benchmark's work, not noise. */
function kernelThreadsCpuMs(): number {
  let total = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(name);
    // PF_KTHREAD (0x00200000) marks a kernel thread.
    if (s && (s.flags & 0x00200000) !== 0) total += s.userMs + s.systemMs;
  }
  return total;
}

/** MariaDB's server process on this host, if any (its CPU is the servers' doing: Osprey's flushes). */
const mariadbPid = (() => {
  try {
    return Number(execFileSync('pidof', ['mariadbd']).toString().trim().split(/\s+/)[0]) || null;
  } catch {
    return null;
  }
})();

export interface Noise {
  /** CPU of the processes not accounted for, ms. */
  othersMs: number;
  /** CPU the hypervisor took from this machine (steal), ms. */
  stealMs: number;
}

export const isNoisy = (n: Noise) => n.othersMs > NOISE_MS || n.stealMs > NOISE_MS;

export const describeNoise = (n: Noise) => `other processes took ${Math.round(n.othersMs)} ms of CPU, the hypervisor ${Math.round(n.stealMs)} ms`;

/** Starts measuring; `stop(generatorCpuMs)` gives the noise since, with `pids` (the servers) accounted for. */
export function noiseMeter(pids: readonly number[]): { stop(generatorCpuMs: number): Noise } {
  const accounted = [...pids, ...(mariadbPid ? [mariadbPid] : [])];
  const cpu = () => processesCpuMs(accounted);
  const m0 = machineCpuMs();
  const own0 = process.cpuUsage();
  const c0 = cpu() + kernelThreadsCpuMs();
  return {
    stop(generatorCpuMs) {
      const m1 = machineCpuMs();
      const own = process.cpuUsage(own0);
      const mine = cpu() + kernelThreadsCpuMs() - c0 + generatorCpuMs + (own.user + own.system) / 1000;
      return { othersMs: Math.max(0, m1.busy - m0.busy - mine), stealMs: m1.steal - m0.steal };
    },
  };
}

/**
 * The command that runs a load generator `argv` (node and its arguments) pinned to `cpu`, at
 * nice -10 where allowed (root), so that MariaDB's work on that core during a flush delays
 * it less: delayed, an open-loop generator catches up in bursts (perf sched, bench:ingest:
 * 50 ms of MariaDB in a 56 ms window, the generator 4 ms, then UDP receive-buffer drops).
 */
export function loadCommand(cpu: string, argv: readonly string[]): [string, string[]] {
  const nice = process.getuid?.() === 0 ? ['nice', '-n', '-10'] : [];
  const [cmd, ...rest] = [...nice, 'taskset', '-c', cpu, ...argv];
  return [cmd, rest];
}

/**
 * Runs `step`, and again (at most NOISY_STEP_RETRIES times) while `spoiled` says the machine's
 * other work decided its result; `again` is told of each result not kept.
 */
export async function runAgainIfNoisy<T>(step: () => Promise<T>, spoiled: (r: T) => boolean, again: (r: T) => void): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const r = await step();
    if (!spoiled(r) || attempt === NOISY_STEP_RETRIES) return r;
    again(r);
  }
}

/** For a generator's report: its own CPU time so far (start-up included), ms. */
export function ownCpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}
