/**
 * `raftlab kv` against a local 3-node cluster of node processes: set, get, del, cas and status do
 * what they say and exit 0; a missing key or a failed cas exits 1; bad usage exits 2; `kv serve`
 * validates its arguments; `kv bench` drives load and prints throughput and microsecond latencies.
 * Runs the built command (packages/cli/dist/main.js).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LocalCluster } from '@raftlab/kv';

const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
let cluster: LocalCluster;

function raftlab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

function kv(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return raftlab('kv', ...args, '--endpoints', cluster.endpoints.join(','));
}

beforeAll(async () => {
  cluster = await LocalCluster.start({ nodes: 3, durable: false });
});

afterAll(async () => {
  await cluster?.stop();
});

describe('raftlab kv', () => {
  test('set then get prints the value; del removes it and get then exits 1', async () => {
    expect(await kv('set', 'greeting', 'hello there')).toMatchObject({ code: 0, stdout: expect.stringContaining('OK (index') });
    expect(await kv('get', 'greeting')).toMatchObject({ code: 0, stdout: 'hello there\n' });
    expect((await kv('get', 'greeting', '--consistency', 'lease')).stdout).toBe('hello there\n');
    expect((await kv('set', 'greeting', 'hi', '--json')).stdout).toMatch(/^\{"previous":"hello there","index":\d+\}\n$/);
    expect(await kv('del', 'greeting')).toMatchObject({ code: 0, stdout: expect.stringContaining('deleted') });
    expect(await kv('get', 'greeting')).toMatchObject({ code: 1, stderr: expect.stringContaining('not found') });
  });

  test('cas swaps only from the expected value or from absence; a failed cas says what the key holds and exits 1', async () => {
    expect((await kv('cas', 'lock', 'me', '--absent')).code).toBe(0);
    expect(await kv('cas', 'lock', 'you', '--absent')).toMatchObject({ code: 1, stdout: expect.stringContaining('holds "me"') });
    expect((await kv('cas', 'lock', 'you', '--expected', 'me')).code).toBe(0);
    expect((await kv('get', 'lock')).stdout).toBe('you\n');
    expect((await kv('cas', 'lock', 'x')).code).toBe(2);
  });

  test('status lists every endpoint with its role, and exactly one leader', async () => {
    const { code, stdout } = await kv('status');
    expect(code).toBe(0);
    for (const node of cluster.nodes) expect(stdout).toContain(node.url);
    expect(stdout.match(/^\S+\s+\d+\s+leader\s/gm)?.length).toBe(1);
    const json = JSON.parse((await kv('status', '--json')).stdout);
    expect(json).toHaveLength(3);
  });

  test('bad usage exits 2; an unreachable cluster exits 1', async () => {
    expect((await raftlab('kv', 'get', 'a', '--endpoints', 'ftp://x')).code).toBe(2);
    expect((await raftlab('kv', 'get', 'a', '--consistency', 'eventual', '--endpoints', cluster.endpoints[0] as string)).code).toBe(2);
    expect((await raftlab('kv', 'get')).code).toBe(2);
    const unreachable = await raftlab('kv', 'get', 'a', '--endpoints', 'http://127.0.0.1:1', '--timeout-ms', '1500');
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('unreachable');
  });

  test('kv serve prints its usage for --help and refuses bad arguments with exit 2', async () => {
    expect(await raftlab('kv', 'serve', '--help')).toMatchObject({ code: 0, stdout: expect.stringContaining('--peers') });
    expect(await raftlab('kv', 'serve', '--id', 'x', '--peers', '1=127.0.0.1:1', '--http', '127.0.0.1:0')).toMatchObject({ code: 2, stderr: expect.stringContaining('--id expects an integer') });
    expect((await raftlab('kv', 'serve', '--id', '2', '--peers', '1=127.0.0.1:1', '--http', '127.0.0.1:0')).stderr).toContain('--peers must list this node');
  });

  test('kv bench drives puts and gets and reports requests/s and microsecond percentiles', async () => {
    const { code, stdout } = await kv('bench', '--connections', '1,4', '--duration', '1', '--json');
    expect(code).toBe(0);
    const rows = JSON.parse(stdout) as { op: string; connections: number; throughputPerSecond: number; latencyMicros: { p50: number; p99: number }; ok: number }[];
    expect(rows.map((row) => `${row.op}/${row.connections}`)).toEqual(['put/1', 'get/1', 'put/4', 'get/4']);
    for (const row of rows) {
      expect(row.ok).toBeGreaterThan(0);
      expect(row.latencyMicros.p50).toBeGreaterThan(0);
      expect(row.latencyMicros.p99).toBeGreaterThanOrEqual(row.latencyMicros.p50);
    }
  });
});
