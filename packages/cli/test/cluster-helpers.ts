/**
 * Helpers of the `raftlab cluster up` tests: running the built command, reading the node pids off
 * its status tables, checking processes and ports.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import net from 'node:net';
import { cliMainPath } from '../src/cluster/local-cluster.js';

/** A running `raftlab` process and what it printed so far. */
export interface Run {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Kills what is still running among `runs` (the tests' afterEach). */
export function killRuns(runs: Run[]): void {
  for (const run of runs.splice(0)) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
}

/** Starts `raftlab ARGS`, recorded in `runs` so the test kills it if it fails midway. */
export function raftlab(runs: Run[], args: readonly string[], options: { detached?: boolean } = {}): Run {
  const child = spawn(process.execPath, [cliMainPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  const run: Run = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout?.on('data', (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (run.stderr += chunk.toString()));
  runs.push(run);
  return run;
}

/** Runs the command to its end (usage errors: nothing to clean up, so these tests run concurrently). */
export function raftlabToEnd(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cliMainPath, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr });
    });
  });
}

/** Polls `check` until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Node process ids listed in the status tables printed so far. */
export function tablePids(stdout: string): number[] {
  return [...new Set([...stdout.matchAll(/^\d+ +(\d+) +(?:leader|follower|candidate|preCandidate) /gm)].map((match) => Number(match[1])))];
}

/** True while a process with this id exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True when 127.0.0.1:port can be listened on (nothing holds it). */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port with `count` free ports after it (random, checked). */
export async function freeBasePort(count: number): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(Array.from({ length: count }, (_, index) => canListen(base + index)));
    if (free.every(Boolean)) return base;
  }
}

/** A table block whose title names a leader and whose rows include the leader's. */
export const leaderTable = /cluster: 3 nodes over \w+, 3 up, leader (\d+) [^\n]*\nid +pid +role[^\n]*\n(?:.*\n){3}/;
