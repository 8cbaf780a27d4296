/**
 * CPU time spent by processes during a load window, for bench:http's per-request CPU figures: how
 * many microseconds of CPU each process (leader, followers, the null server, the load generator)
 * spends per request answered, so that a throughput figure on a small machine can be read against
 * what the machine can give (cores x 1e6 / total µs per request).
 *
 * Other processes are read from /proc (Linux only). The preferred source is the first field of
 * /proc/<pid>/task/<tid>/schedstat (nanoseconds on the CPU), summed over the process's threads: a
 * Node process does part of its work off the main thread (libuv's threadpool for file writes and
 * fdatasync, V8's GC helpers), and /proc/<pid>/schedstat alone counts only the main thread. Its
 * weakness: a thread that exits inside the window takes its time with it. Node's and Go's threads
 * are long-lived, so that is rare; when schedstat is unreadable, utime + stime of /proc/<pid>/stat
 * (fields 14 and 15, process totals in clock ticks of 1 / CLK_TCK s, usually 10 ms) are used
 * instead. The driver itself is read with process.cpuUsage() (getrusage: every thread, µs).
 *
 * Nothing here throws on an unreadable /proc: measureCpu reports why the figures are missing, and the
 * bench goes on without them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/** Where a process's CPU time is read from. */
export type CpuSource = 'schedstat' | 'stat';

/** A process to watch, by role (`leader`, `follower`, `server`). */
export interface WatchedProcess {
  readonly role: string;
  readonly pid: number;
}

/** The role of the driver process (where autocannon runs) in every window. */
export const loadGeneratorRole = 'load generator';

/** CPU microseconds of each watched process, and of the driver, over one window. */
export interface CpuWindow {
  readonly source: CpuSource;
  /** Watched processes in the order given, then the driver (role loadGeneratorRole). */
  readonly processes: readonly { readonly role: string; readonly cpuMicros: number }[];
}

/** What measureCpu found: the window's CPU time, or why there is none. */
export type CpuMeasurement = { readonly ok: true; readonly window: CpuWindow } | { readonly ok: false; readonly reason: string };

/** Clock ticks per second for /proc/<pid>/stat, read once with getconf. */
let clockTicksPerSecond: number | null = null;

function clockTicks(): number {
  if (clockTicksPerSecond === null) {
    let ticks = 100; // USER_HZ on every mainstream Linux architecture, if getconf is missing
    try {
      const answer = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      if (Number.isInteger(answer) && answer > 0) ticks = answer;
    } catch {
      // keep the default
    }
    clockTicksPerSecond = ticks;
  }
  return clockTicksPerSecond;
}

/** Nanoseconds on the CPU from the text of a schedstat file (`<run ns> <wait ns> <timeslices>`). */
export function parseSchedstatNanos(text: string): number {
  const nanos = Number(text.trim().split(/\s+/)[0]);
  if (!(Number.isFinite(nanos) && nanos >= 0)) throw new Error(`schedstat: unexpected text ${JSON.stringify(text.slice(0, 80))}`);
  return nanos;
}

/**
 * utime + stime in clock ticks from the text of /proc/<pid>/stat. The command name (field 2) is in
 * parentheses and may hold spaces and parentheses itself, so fields are counted after its last `)`:
 * field 3 (state) is the first there, utime (14) the twelfth, stime (15) the thirteenth.
 */
export function parseStatTicks(text: string): number {
  const fields = text.slice(text.lastIndexOf(')') + 1).trim().split(/\s+/);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!(Number.isSafeInteger(utime) && Number.isSafeInteger(stime) && utime >= 0 && stime >= 0)) {
    throw new Error(`stat: unexpected text ${JSON.stringify(text.slice(0, 80))}`);
  }
  return utime + stime;
}

/** CPU microseconds of process `pid` so far, summed over its live threads' schedstat. */
function schedstatMicros(pid: number): number {
  let nanos = 0;
  let threads = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
    } catch (error) {
      // The thread exited between the listing and the read.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ESRCH') continue;
      throw error;
    }
    nanos += parseSchedstatNanos(text);
    threads += 1;
  }
  if (threads === 0) throw new Error(`process ${pid} has no readable thread`);
  return nanos / 1000;
}

/** CPU microseconds of process `pid` so far, from /proc/<pid>/stat (clock-tick resolution). */
function statMicros(pid: number): number {
  return (parseStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) * 1e6) / clockTicks();
}

/** CPU microseconds of process `pid` so far, read from `source`. */
export function processCpuMicros(pid: number, source: CpuSource): number {
  return source === 'schedstat' ? schedstatMicros(pid) : statMicros(pid);
}

/** The driver's CPU microseconds so far, every thread. */
function driverCpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/**
 * The source that reads every process in `pids`: schedstat when it does for all of them, else stat;
 * or why neither does. Chosen once per window, so both ends of a window come from the same source.
 */
function chooseSource(pids: readonly number[]): { readonly ok: true; readonly source: CpuSource } | { readonly ok: false; readonly reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `no /proc on ${process.platform}` };
  let problem = '';
  for (const source of ['schedstat', 'stat'] as const) {
    try {
      for (const pid of pids) processCpuMicros(pid, source);
      return { ok: true, source };
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
    }
  }
  return { ok: false, reason: `/proc unreadable (${problem})` };
}

/**
 * Runs `work` and measures the CPU time each of `processes`, and the driver, spent while it ran: a
 * read right before and right after. The result of `work` is returned as it is; a /proc failure
 * gives `cpu.ok === false` with the reason, never an exception.
 */
export async function measureCpu<T>(processes: readonly WatchedProcess[], work: () => Promise<T>): Promise<{ readonly result: T; readonly cpu: CpuMeasurement }> {
  const chosen = chooseSource(processes.map((watched) => watched.pid));
  if (!chosen.ok) return { result: await work(), cpu: chosen };
  const { source } = chosen;
  let before: number[];
  try {
    before = processes.map((watched) => processCpuMicros(watched.pid, source));
  } catch (error) {
    return { result: await work(), cpu: { ok: false, reason: `/proc unreadable (${error instanceof Error ? error.message : String(error)})` } };
  }
  const driverBefore = driverCpuMicros();
  const result = await work();
  const driverAfter = driverCpuMicros();
  try {
    const after = processes.map((watched) => processCpuMicros(watched.pid, source));
    return {
      result,
      cpu: {
        ok: true,
        window: {
          source,
          processes: [
            ...processes.map((watched, i) => ({ role: watched.role, cpuMicros: (after[i] as number) - (before[i] as number) })),
            { role: loadGeneratorRole, cpuMicros: driverAfter - driverBefore },
          ],
        },
      },
    };
  } catch (error) {
    return { result, cpu: { ok: false, reason: `/proc unreadable after the window (${error instanceof Error ? error.message : String(error)})` } };
  }
}
