/**
 * Helper processes that serve on a loopback port for a benchmark: the echo processes of
 * bench:cluster's latency floors (cluster/echo-main.ts) and bench:http's null HTTP server
 * (null-http-main.ts). Each such script listens on 127.0.0.1 port 0, reports `{ port }` over IPC and
 * exits when its parent disconnects; this module forks them, waits for the ports, and takes them
 * down again however the measurement ended, so neither benchmark can leave one behind.
 */
import { type ChildProcess, fork } from 'node:child_process';

/** A forked helper and the port it reported. */
export interface ListeningChild {
  readonly child: ChildProcess;
  readonly port: number;
}

/** How long a helper may take to report its port, and to exit once disconnected before it is killed. */
export interface ListeningChildDeadlines {
  readonly startMs: number;
  readonly stopMs: number;
}

/**
 * Forks `count` copies of `script`, waits until each has reported a valid port (failing when one
 * exits first or misses `deadlines.startMs`), and runs `use` with them. Then, whatever happened:
 * disconnects every child and kills by pid any that has not exited within `deadlines.stopMs`, and
 * waits for it. `label` names the helpers in errors ("echo process", "null HTTP server").
 */
export async function withListeningChildren<T>(
  script: string,
  count: number,
  label: string,
  deadlines: ListeningChildDeadlines,
  use: (children: readonly ListeningChild[]) => Promise<T>,
): Promise<T> {
  const children = Array.from({ length: count }, () => fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const exits = children.map((child) => new Promise<void>((resolve) => child.once('exit', () => resolve())));
  try {
    const ports = await Promise.all(children.map((child, i) => reportedPort(child, exits[i] as Promise<void>, `${label} ${i + 1} of ${count}`, deadlines.startMs)));
    return await use(children.map((child, i) => ({ child, port: ports[i] as number })));
  } finally {
    for (const child of children) if (child.connected) child.disconnect();
    await Promise.all(
      children.map(async (child, i) => {
        const exited = exits[i] as Promise<void>;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlines.stopMs)))]);
        clearTimeout(timer);
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGKILL');
        await exited;
      }),
    );
  }
}

/** The port `child` reports over IPC; rejects when it exits first, reports no port, or misses the deadline. */
function reportedPort(child: ChildProcess, exited: Promise<void>, name: string, deadlineMs: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const port = Promise.race([
    new Promise<number>((resolve) => child.once('message', (message: { port: number }) => resolve(message.port))),
    exited.then(() => Promise.reject(new Error(`${name} exited before listening`))),
    new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`${name} did not start listening within ${deadlineMs} ms`)), deadlineMs))),
  ]).finally(() => clearTimeout(timer));
  return port.then((value) => {
    if (!(Number.isInteger(value) && value > 0)) throw new Error(`${name} reported port ${String(value)}`);
    return value;
  });
}
