/**
 * A live node of a running three-node cluster (`raftlab node` processes, TCP and WebSocket) keeps
 * serving while many rogue connections attack its Raft port: random bytes, oversized length
 * prefixes, garbage handshakes (mutated hellos, wrong secret, wrong cluster, wrong protocol
 * version, unknown node id) and, after a valid handshake as one of its peers, real encoded frames
 * mutated (bits flipped, bytes randomized, truncated, extended, header fields replaced) until the
 * codec refuses them. Every rogue connection is closed by the node, and the node's log names the
 * reason for that very connection (matched by its source port). Meanwhile a client keeps proposing
 * through the leader: no gap between commits exceeds the bound, and afterwards the cluster commits,
 * every node holds the same state, no node process died, and the victim is back to its four peer
 * connections. FUZZ_SEED and FUZZ_CONNECTIONS replay or lengthen a run; the seed is in every
 * failure message.
 */
import net from 'node:net';
import { type NodeId, Prng } from '@raftlab/core';
import {
  DialerHandshake,
  FrameSplitter,
  type PeerAddress,
  checkFraming,
  decodeMessage,
  encodeMessage,
  frameOverheadBytes,
  framePrefixBytes,
  frameStatus,
  joinFrame,
  protocolVersion,
  webSocketPath,
} from '@raftlab/transport';
import { garbageFrame, mutateFrame, randomMessage } from '@raftlab/transport/testing';
import { afterEach, describe, expect, test } from 'vitest';
import { WebSocket } from 'ws';
import type { NodeReport } from '../src/cluster/control.js';
import { type LocalCluster, startCluster, waitForLeader } from '../src/cluster/local-cluster.js';

const seed = Number(process.env['FUZZ_SEED'] ?? 20261205);
const connectionCount = Number(process.env['FUZZ_CONNECTIONS'] ?? 120);
/** Rogue connections open at once. */
const concurrency = 12;
/** The longest the client may go without a commit while the node is attacked. */
const commitGapMsMax = 3000;
/** A node closes a stranger that never completes its hello after this long (the transport default). */
const handshakeTimeoutMs = 5000;
const clusterId = 'fuzz-cluster';
const secret = 'fuzz-cluster-secret-of-some-length';
/** The default frame bound of the nodes (a larger length prefix is refused at once). */
const frameBytesMax = 64 * 1024 * 1024;

const clusters: LocalCluster[] = [];
afterEach(async () => {
  for (const cluster of clusters.splice(0)) await cluster.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A raw connection to the node: bytes out, whole frames in, and who closed it. */
interface RawConnection {
  readonly localPort: number;
  write(bytes: Uint8Array): void;
  /** The next frame from the node (null once closed). */
  nextFrame(timeoutMs: number): Promise<Uint8Array | null>;
  readonly closed: Promise<void>;
  isClosed(): boolean;
  close(): void;
}

function openRaw(kind: 'tcp' | 'ws', address: PeerAddress): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const frames: Uint8Array[] = [];
    let waiter: (() => void) | null = null;
    let closed = false;
    let resolveClosed: () => void = () => undefined;
    const closedPromise = new Promise<void>((done) => (resolveClosed = done));
    const onFrame = (frame: Uint8Array): void => {
      frames.push(Uint8Array.from(frame));
      waiter?.();
    };
    const onClose = (): void => {
      closed = true;
      resolveClosed();
      waiter?.();
      reject(new Error('closed before connecting'));
    };
    const connection = (localPort: number, write: (bytes: Uint8Array) => void, close: () => void): RawConnection => ({
      localPort,
      write,
      closed: closedPromise,
      isClosed: () => closed,
      close,
      nextFrame: async (timeoutMs) => {
        const deadline = Date.now() + timeoutMs;
        while (frames.length === 0 && !closed && Date.now() < deadline) {
          await new Promise<void>((wake) => {
            waiter = wake;
            setTimeout(wake, Math.max(1, deadline - Date.now()));
          });
          waiter = null;
        }
        return frames.shift() ?? null;
      },
    });
    if (kind === 'tcp') {
      const socket = net.connect({ host: address.host, port: address.port, noDelay: true });
      const splitter = new FrameSplitter(1 << 20, onFrame, () => socket.destroy());
      socket.on('data', (chunk: Buffer) => splitter.push(chunk));
      socket.on('error', () => undefined);
      socket.on('close', onClose);
      socket.on('connect', () =>
        resolve(
          connection(
            socket.localPort as number,
            (bytes) => {
              if (!socket.destroyed) socket.write(bytes);
            },
            () => socket.destroy(),
          ),
        ),
      );
    } else {
      const socket = new WebSocket(`ws://${address.host}:${address.port}${webSocketPath}`, { perMessageDeflate: false });
      let localPort = 0;
      socket.on('upgrade', (response) => (localPort = response.socket.localPort ?? 0));
      socket.on('message', (data: Buffer) => onFrame(data));
      socket.on('error', () => undefined);
      socket.on('close', onClose);
      socket.on('open', () =>
        resolve(
          connection(
            localPort,
            (bytes) => {
              if (socket.readyState === WebSocket.OPEN) socket.send(bytes, { binary: true });
            },
            () => socket.terminate(),
          ),
        ),
      );
    }
  });
}

/** A length prefix the node refuses at once: beyond the frame bound, or below the smallest frame. */
function oversizedPrefix(prng: Prng): Uint8Array {
  const bytes = new Uint8Array(8 + prng.nextInt(64));
  const length = prng.pick([0xffffffff, 0x7fffffff, frameBytesMax, frameBytesMax + 1 + prng.nextInt(1 << 20), 0, 1, frameOverheadBytes - framePrefixBytes - 1]);
  new DataView(bytes.buffer).setUint32(0, length);
  return bytes;
}

/**
 * Is `bytes` a frame the node must refuse at once after the handshake: complete (or with a prefix
 * out of bounds), not a "discard" frame (skipped silently by design), and not a valid message?
 */
function refusedAtOnce(kind: 'tcp' | 'ws', bytes: Uint8Array, from: NodeId, to: NodeId): boolean {
  if (bytes.length < framePrefixBytes) return kind === 'ws';
  const declared = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0) + framePrefixBytes;
  const outOfBounds = declared > frameBytesMax || declared < frameOverheadBytes + 1;
  if (kind === 'tcp' && outOfBounds) return true;
  if (kind === 'tcp' && declared !== bytes.length) return false; // the stream would wait for the rest
  if (bytes[bytes.length - 1] === frameStatus.discard && checkFraming(bytes).ok) return false;
  return !decodeMessage(bytes, { from, to }).ok;
}

type Attack = 'random-bytes' | 'oversized-prefix' | 'mutated-hello' | 'wrong-secret' | 'wrong-cluster' | 'wrong-version' | 'unknown-node' | 'mutated-frame';
const attacks: readonly Attack[] = ['random-bytes', 'oversized-prefix', 'mutated-hello', 'wrong-secret', 'wrong-cluster', 'wrong-version', 'unknown-node', 'mutated-frame', 'mutated-frame', 'mutated-frame'];

interface Outcome {
  readonly attack: Attack;
  readonly localPort: number;
  /** The node closed the connection (we never close first, except after the wait below). */
  readonly closedByNode: boolean;
  readonly detail: string;
}

/** Runs one rogue connection against `victim`, claiming to be `peer` where it authenticates. */
async function attack(kind: 'tcp' | 'ws', address: PeerAddress, victim: NodeId, peer: NodeId, prng: Prng): Promise<Outcome> {
  const chosen = prng.pick(attacks);
  const connection = await openRaw(kind, address);
  let detail: string = chosen;
  const handshake = (identity: { clusterId: string; secret: string; id: NodeId; version: number }): DialerHandshake =>
    new DialerHandshake({ clusterId: identity.clusterId, secret: Buffer.from(identity.secret, 'utf8'), id: identity.id, protocolVersion: identity.version }, victim);
  const helloFor = async (dialer: DialerHandshake): Promise<Uint8Array | null> => {
    const challenge = await connection.nextFrame(2000);
    if (challenge === null) return null;
    const step = dialer.onFrame(challenge);
    return step.kind === 'continue' ? step.reply : null;
  };
  switch (chosen) {
    case 'random-bytes':
      connection.write(garbageFrame(prng, 512));
      break;
    case 'oversized-prefix':
      connection.write(oversizedPrefix(prng));
      break;
    case 'mutated-hello': {
      const hello = await helloFor(handshake({ clusterId, secret, id: peer, version: protocolVersion }));
      if (hello === null) break;
      // A mutation that leaves the hello valid would authenticate: the loop keeps mutating until it no longer matches.
      let mutated = mutateFrame(hello, prng);
      for (let tries = 0; tries < 20 && Buffer.from(mutated.bytes).equals(Buffer.from(hello)); tries++) mutated = mutateFrame(hello, prng);
      detail = `${chosen}: ${mutated.mutation}`;
      connection.write(mutated.bytes);
      break;
    }
    case 'wrong-secret':
    case 'wrong-cluster':
    case 'wrong-version':
    case 'unknown-node': {
      const identity = {
        clusterId: chosen === 'wrong-cluster' ? 'another-cluster' : clusterId,
        secret: chosen === 'wrong-secret' ? 'not-the-cluster-secret-at-all' : secret,
        id: chosen === 'unknown-node' ? 99 : peer,
        version: chosen === 'wrong-version' ? protocolVersion + 1 : protocolVersion,
      };
      const hello = await helloFor(handshake(identity));
      if (hello !== null) connection.write(hello);
      break;
    }
    case 'mutated-frame': {
      const dialer = handshake({ clusterId, secret, id: peer, version: protocolVersion });
      const hello = await helloFor(dialer);
      if (hello === null) break;
      connection.write(hello);
      const welcome = await connection.nextFrame(2000);
      if (welcome === null || dialer.onFrame(welcome).kind !== 'accepted') {
        detail = `${chosen}: handshake not accepted`;
        break;
      }
      // A real frame from the claimed peer, mutated until the codec must refuse it (a mutation can leave it valid).
      let bytes: Uint8Array = oversizedPrefix(prng);
      detail = `${chosen}: oversized prefix (no refused mutation found)`;
      for (let tries = 0; tries < 50; tries++) {
        const valid = joinFrame(encodeMessage(randomMessage(prng, { from: peer, to: victim, entryCountMax: 8, dataBytesMax: 64 })));
        const mutated = mutateFrame(valid, prng);
        if (refusedAtOnce(kind, mutated.bytes, peer, victim)) {
          bytes = mutated.bytes;
          detail = `${chosen}: ${mutated.mutation}`;
          break;
        }
      }
      connection.write(bytes);
      break;
    }
  }
  const closedByNode = await Promise.race([connection.closed.then(() => true), sleep(handshakeTimeoutMs + 2000).then(() => false)]);
  connection.close();
  return { attack: chosen, localPort: connection.localPort, closedByNode, detail };
}

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly remote?: string;
  readonly reason?: string;
  readonly type?: string;
}

function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

describe.each(['tcp', 'ws'] as const)('%s', (kind) => {
  test(`a live node keeps its cluster committing under ${connectionCount} rogue connections (seed ${seed})`, async () => {
    const cluster = await startCluster({ nodes: 3, transport: kind, secret, clusterId, proposalTimeoutMs: 2000 });
    clusters.push(cluster);
    const first = await waitForLeader(cluster);
    const pids = cluster.pids();
    // The leader is the victim: if it stalled, the whole cluster would.
    const victim = first.id;
    const peer = cluster.ids.find((id) => id !== victim) as NodeId;
    const address = cluster.address(victim) as PeerAddress;
    const prng = new Prng(seed);

    // The client: batches of 10 through whoever leads, recording when each batch committed.
    let fuzzing = true;
    let leader = victim;
    const commitTimes: number[] = [performance.now()];
    let committed = 0;
    const client = (async () => {
      while (fuzzing) {
        try {
          await cluster.propose(leader, Array.from({ length: 10 }, () => '1'), 5000);
          committed += 10;
          commitTimes.push(performance.now());
        } catch {
          const reports = (await cluster.statuses(500)).filter((report): report is NodeReport => report !== null);
          leader = reports.find((report) => report.role === 'leader')?.id ?? leader;
          await sleep(20);
        }
      }
    })();

    const outcomes: Outcome[] = [];
    let started = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (started < connectionCount) {
          started += 1;
          outcomes.push(await attack(kind, address, victim, peer, prng));
        }
      }),
    );
    commitTimes.push(performance.now());
    fuzzing = false;
    await client;

    const context = `seed ${seed}, ${kind}, victim ${victim}`;
    // Every rogue connection was closed by the node...
    const notClosed = outcomes.filter((outcome) => !outcome.closedByNode);
    expect(notClosed, `${context}: connections the node left open`).toEqual([]);
    // ...and its log names a reason for that very connection.
    let unexplained: Outcome[] = [];
    const deadline = Date.now() + 5000;
    do {
      const lines = logLines(cluster.logText(victim)).filter((line) => line.remote !== undefined && typeof line.reason === 'string' && line.reason !== '');
      const explained = new Set(lines.map((line) => Number((line.remote as string).split(':').at(-1))));
      unexplained = outcomes.filter((outcome) => !explained.has(outcome.localPort));
      if (unexplained.length > 0) await sleep(100);
    } while (unexplained.length > 0 && Date.now() < deadline);
    expect(unexplained, `${context}: closed connections without a logged reason`).toEqual([]);
    expect(new Set(outcomes.map((outcome) => outcome.attack)).size, context).toBe(new Set(attacks).size);

    // The cluster kept committing throughout.
    const gaps = commitTimes.slice(1).map((time, index) => time - (commitTimes[index] as number));
    expect(Math.max(...gaps), `${context}: longest time without a commit (ms)`).toBeLessThan(commitGapMsMax);
    expect(committed, context).toBeGreaterThan(0);

    // And afterwards: it commits, every node holds the same state, nobody crashed, links are back.
    const after = await waitForLeader(cluster);
    await cluster.propose(after.id, Array.from({ length: 100 }, () => '2'));
    const expected = String(committed + 200);
    const deadlineAfter = Date.now() + 10_000;
    let reports: (NodeReport | null)[] = [];
    for (;;) {
      reports = await cluster.statuses();
      if (reports.every((report) => report !== null && report.machine.kind === 'sum' && report.machine.value === expected && report.transport.connectionsOpen === 4)) break;
      if (Date.now() > deadlineAfter) break;
      await sleep(50);
    }
    expect(
      reports.map((report) => report !== null && report.machine.kind === 'sum' && report.machine.value),
      context,
    ).toEqual([expected, expected, expected]);
    expect(reports.map((report) => report?.transport.connectionsOpen), context).toEqual([4, 4, 4]);
    expect(cluster.pids().sort(), `${context}: node processes`).toEqual(pids.sort());
    const victimReport = reports[victim - 1] as NodeReport;
    expect(victimReport.transport.framesMalformed + victimReport.transport.handshakesRefused, context).toBeGreaterThan(connectionCount / 2);
  });
});
