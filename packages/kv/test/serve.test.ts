/**
 * `kv serve` arguments: a full command line parses into the node's options with the documented
 * defaults (tcp, fsync always, forward mode, admin off, 10 ms ticks, lease margin 0.2); every bad
 * argument is refused with KvError('invalid-arguments') naming it; --help parses to null.
 */
import { describe, expect, test } from 'vitest';
import { KvError } from '../src/errors.js';
import { developmentSecret, parseServeArguments } from '../src/serve.js';

const base = ['--id', '2', '--peers', '1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003', '--http', '127.0.0.1:8082'];

function refusal(args: string[]): string {
  try {
    parseServeArguments(args, {});
  } catch (error) {
    expect(error).toBeInstanceOf(KvError);
    expect((error as KvError).code).toBe('invalid-arguments');
    return (error as KvError).message;
  }
  throw new Error(`accepted ${args.join(' ')}`);
}

describe('parseServeArguments', () => {
  test('a minimal command line takes the documented defaults', () => {
    const options = parseServeArguments(base, {});
    expect(options).toMatchObject({
      id: 2,
      http: { host: '127.0.0.1', port: 8082 },
      transport: 'tcp',
      secret: developmentSecret,
      clusterId: 'raftlab',
      dataDirectory: null,
      fsync: 'always',
      admin: false,
      followerMode: 'forward',
      followerReads: false,
      tickIntervalMs: 10,
      electionTimeoutTicks: 20,
      heartbeatTicks: 2,
      proposalTimeoutMs: 2000,
      readTimeoutMs: 2000,
      leaseDriftMargin: 0.2,
      plantedBug: null,
    });
    expect(options?.peers.get(3)).toEqual({ host: '127.0.0.1', port: 7003 });
    expect(options?.httpPeers.get(2)).toBe('http://127.0.0.1:8082');
  });

  test('every option is read, and the secret falls back to RAFTLAB_SECRET', () => {
    const options = parseServeArguments(
      [
        ...base,
        '--http-peers', '1=http://127.0.0.1:8081,2=http://127.0.0.1:8082/,3=http://127.0.0.1:8083',
        '--transport', 'ws', '--cluster-id', 'prod', '--data-dir', '/tmp/x', '--fsync', 'batch', '--admin',
        '--follower-mode', 'redirect', '--follower-reads', '--tick-ms', '5', '--election-ticks', '30', '--heartbeat-ticks', '3',
        '--proposal-timeout-ms', '900', '--read-timeout-ms', '800', '--lease-drift-margin', '0.3', '--planted-bug', 'stale-follower-reads',
      ],
      { RAFTLAB_SECRET: 'from-the-environment' },
    );
    expect(options).toMatchObject({
      transport: 'ws',
      secret: 'from-the-environment',
      clusterId: 'prod',
      dataDirectory: '/tmp/x',
      fsync: 'batch',
      admin: true,
      followerMode: 'redirect',
      followerReads: true,
      tickIntervalMs: 5,
      electionTimeoutTicks: 30,
      heartbeatTicks: 3,
      proposalTimeoutMs: 900,
      readTimeoutMs: 800,
      leaseDriftMargin: 0.3,
      plantedBug: 'stale-follower-reads',
    });
    expect(options?.httpPeers.get(2)).toBe('http://127.0.0.1:8082');
    expect(parseServeArguments([...base, '--secret', 'given'], { RAFTLAB_SECRET: 'ignored' })?.secret).toBe('given');
  });

  test('--help parses to null', () => {
    expect(parseServeArguments(['--help'], {})).toBeNull();
  });

  test('bad arguments are refused, naming what is wrong', () => {
    expect(refusal(['--peers', '1=a:1', '--http', 'a:1'])).toContain('--id is required');
    expect(refusal([...base.slice(0, 2), '--http', 'a:1'])).toContain('--peers is required');
    expect(refusal(['--id', '9', ...base.slice(2)])).toContain('--peers must list this node (9)');
    expect(refusal(['--id', '1', '--peers', '1=a:1,1=b:2', '--http', 'a:1'])).toContain('lists node 1 twice');
    expect(refusal(['--id', '1', '--peers', '1=nohost', '--http', 'a:1'])).toContain('expects HOST:PORT');
    expect(refusal([...base, '--transport', 'udp'])).toContain('--transport must be one of tcp, ws');
    expect(refusal([...base, '--fsync', 'sometimes'])).toContain('--fsync must be one of always, batch, none');
    expect(refusal([...base, '--http-peers', '4=http://x:1'])).toContain('names node 4');
    expect(refusal([...base, '--http-peers', '1=https://x:1'])).toContain('not an http:// URL');
    expect(refusal([...base, '--lease-drift-margin', '1.5'])).toContain('--lease-drift-margin');
    expect(refusal([...base, '--heartbeat-ticks', '20'])).toContain('must be below --election-ticks');
    expect(refusal([...base, '--planted-bug', 'everything'])).toContain('--planted-bug must be one of');
    expect(refusal([...base, '--frobnicate'])).toContain("Unknown option '--frobnicate'");
    expect(refusal([...base, 'extra'])).toContain('unexpected argument "extra"');
  });
});
