/**
 * A real etcd 3.4 cluster on loopback, for bench:http's side-by-side figures: three `etcd` members
 * (Debian's etcd-server package) with data directories in a temporary directory, driven through
 * etcd's JSON gateway (`POST /v3/kv/put`, `POST /v3/kv/range`, keys and values in base64).
 *
 * etcd fsyncs its WAL on every write batch (there is no knob to relax it in 3.4 short of
 * --unsafe-no-fsync, which is not used here), so its figures compare with raftlab's `fsync always`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, requestJson } from '@raftlab/kv';

/** Where the etcd binary is, and its version; null when it is not installed. */
export function findEtcd(): { readonly path: string; readonly version: string } | null {
  for (const candidate of [process.env['ETCD_BINARY'], '/usr/bin/etcd', '/usr/local/bin/etcd']) {
    if (candidate === undefined || candidate === '') continue;
    try {
      const output = execFileSync(candidate, ['--version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
      const version = /etcd Version: (\S+)/.exec(output)?.[1];
      if (version !== undefined) return { path: candidate, version };
    } catch {
      // not this one
    }
  }
  return null;
}

/** A running etcd cluster. */
export class EtcdCluster {
  private constructor(
    readonly version: string,
    /** Client URLs, one per member. */
    readonly endpoints: readonly string[],
    private readonly children: ChildProcess[],
    private readonly directory: string,
  ) {}

  /** Starts `members` etcd members on 127.0.0.1 and waits until every /health answers true. */
  static async start(binary: { readonly path: string; readonly version: string }, members = 3): Promise<EtcdCluster> {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'raftlab-etcd-'));
    const nodes: { name: string; client: number; peer: number }[] = [];
    for (let i = 1; i <= members; i++) nodes.push({ name: `etcd${i}`, client: await freePort(), peer: await freePort() });
    const initialCluster = nodes.map((node) => `${node.name}=http://127.0.0.1:${node.peer}`).join(',');
    const children = nodes.map((node) =>
      spawn(
        binary.path,
        [
          '--name', node.name,
          '--data-dir', path.join(directory, node.name),
          '--listen-client-urls', `http://127.0.0.1:${node.client}`,
          '--advertise-client-urls', `http://127.0.0.1:${node.client}`,
          '--listen-peer-urls', `http://127.0.0.1:${node.peer}`,
          '--initial-advertise-peer-urls', `http://127.0.0.1:${node.peer}`,
          '--initial-cluster', initialCluster,
          '--initial-cluster-state', 'new',
          '--initial-cluster-token', `raftlab-bench-${process.pid}`,
          '--logger', 'zap',
          '--log-level', 'error',
        ],
        { stdio: ['ignore', 'ignore', 'ignore'] },
      ),
    );
    const cluster = new EtcdCluster(binary.version, nodes.map((node) => `http://127.0.0.1:${node.client}`), children, directory);
    const deadline = Date.now() + 30_000;
    for (const endpoint of cluster.endpoints) {
      for (;;) {
        const health = await requestJson(`${endpoint}/health`, { timeoutMs: 1000 });
        if (health !== null && (health.body as { health?: string }).health === 'true') break;
        if (Date.now() > deadline) {
          await cluster.stop();
          throw new Error(`etcd member ${endpoint} not healthy within 30 s`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return cluster;
  }

  /** Process ids of the members, in the order of `endpoints` (undefined for one that failed to spawn). */
  get pids(): readonly (number | undefined)[] {
    return this.children.map((child) => child.pid);
  }

  /** The leader's client URL (asked of each member through /v3/maintenance/status). */
  async leader(): Promise<string> {
    for (const endpoint of this.endpoints) {
      const answer = await requestJson(`${endpoint}/v3/maintenance/status`, { method: 'POST', body: {} });
      const body = answer?.body as { leader?: string; header?: { member_id?: string } } | undefined;
      if (body?.leader !== undefined && body.leader === body.header?.member_id) return endpoint;
    }
    throw new Error('no etcd member says it leads');
  }

  /** Stops every member and removes the data directories. */
  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
    rmSync(this.directory, { recursive: true, force: true });
  }
}

/** Base64 of a UTF-8 string, as etcd's JSON gateway wants keys and values. */
export function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}
