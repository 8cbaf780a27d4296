/**
 * The per-process CPU reader of bench:http (benchmarks/src/process-cpu.ts): the /proc parsers take
 * the right fields, also behind a command name holding spaces and parentheses; on Linux, the CPU time
 * read for a child that works on its main thread and on libuv's threadpool matches what the child
 * itself counts with getrusage, from schedstat and from stat alike, while the main thread's
 * schedstat alone falls short (the reason the reader sums every thread); and an unreadable process
 * gives a reason, not an exception. Nothing here asserts a speed.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { type CpuMeasurement, loadGeneratorRole, measureCpu, parseSchedstatNanos, parseStatTicks } from '../src/process-cpu.js';

/** A child that, on each message, spins its main thread for 100 ms and runs four pbkdf2 jobs on the threadpool, then reports its own CPU µs. */
const workerSource = `
const crypto = require('node:crypto');
process.on('message', async () => {
  const before = process.cpuUsage();
  const end = Date.now() + 100;
  while (Date.now() < end) {}
  await Promise.all([0, 1, 2, 3].map(() => new Promise((resolve) => crypto.pbkdf2('p', 's', 400000, 32, 'sha256', resolve))));
  const used = process.cpuUsage(before);
  process.send({ micros: used.user + used.system });
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
`;

async function withWorker(use: (child: ChildProcess, work: () => Promise<number>) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, ['-e', workerSource], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    await new Promise((resolve) => child.once('message', resolve));
    const work = (): Promise<number> =>
      new Promise((resolve) => {
        child.once('message', (message: { micros: number }) => resolve(message.micros));
        child.send('go');
      });
    await use(child, work);
  } finally {
    child.kill('SIGKILL');
  }
}

function childMicros(cpu: CpuMeasurement): number {
  if (!cpu.ok) throw new Error(cpu.reason);
  const child = cpu.window.processes.find((process) => process.role === 'worker');
  if (child === undefined) throw new Error('no worker figure');
  return child.cpuMicros;
}

describe('process-cpu parsers', () => {
  test('stat: utime + stime are fields 14 and 15, counted after the last parenthesis', () => {
    const fields = 'S 1 2 3 4 5 6 7 8 9 10 150 25 11 12 20 0 4 0 100';
    expect(parseStatTicks(`4242 (node) ${fields}`)).toBe(175);
    expect(parseStatTicks(`4242 (a) b (c) ${fields}`)).toBe(175);
    expect(() => parseStatTicks('4242 (node) S 1 2')).toThrow(/unexpected/);
  });

  test('schedstat: the first field is nanoseconds on the CPU', () => {
    expect(parseSchedstatNanos('739001 12 1\n')).toBe(739001);
    expect(() => parseSchedstatNanos('nothing')).toThrow(/unexpected/);
  });
});

describe.skipIf(process.platform !== 'linux')('measureCpu on Linux', () => {
  test('a child working on its main thread and its threadpool: every thread counted, the driver too', async () => {
    await withWorker(async (child, work) => {
      const pid = child.pid as number;
      const mainBefore = parseSchedstatNanos(readFileSync(`/proc/${pid}/schedstat`, 'utf8'));
      const { result: reported, cpu } = await measureCpu([{ role: 'worker', pid }], work);
      const mainOnly = (parseSchedstatNanos(readFileSync(`/proc/${pid}/schedstat`, 'utf8')) - mainBefore) / 1000;
      expect(cpu.ok && cpu.window.source).toBe('schedstat');
      const measured = childMicros(cpu);
      // The window also holds the child's handling of two IPC messages, hence the small slack.
      expect(Math.abs(measured - reported)).toBeLessThan(0.1 * reported + 5000);
      // Four of the five jobs ran off the main thread: its schedstat alone misses most of the time.
      expect(mainOnly).toBeLessThan(0.6 * reported);
      expect(cpu.ok && cpu.window.processes.map((process) => process.role)).toEqual(['worker', loadGeneratorRole]);
      expect(cpu.ok && (cpu.window.processes[1]?.cpuMicros ?? -1)).toBeGreaterThanOrEqual(0);
    });
  });

  test('stat, the fallback, agrees within its clock-tick resolution', async () => {
    await withWorker(async (child, work) => {
      const pid = child.pid as number;
      const before = parseStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      const reported = await work();
      const ticks = parseStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')) - before;
      const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      expect(Math.abs((ticks * 1e6) / ticksPerSecond - reported)).toBeLessThan(0.1 * reported + 2e6 / ticksPerSecond + 5000);
    });
  });

  test('a process that does not exist: a reason, and the work still runs', async () => {
    const { result, cpu } = await measureCpu([{ role: 'worker', pid: 2 ** 30 }], async () => 'done');
    expect(result).toBe('done');
    expect(cpu.ok).toBe(false);
    expect(cpu.ok ? '' : cpu.reason).toMatch(/\/proc unreadable/);
  });
});
