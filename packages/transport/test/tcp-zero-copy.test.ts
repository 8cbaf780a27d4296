/**
 * The TCP send path keeps the zero-copy promise without breaking rule 1 of transport.ts: entry
 * bytes are handed to the socket as the very slices of the message (by reference, never copied or
 * re-encoded) when the kernel takes them at once; and when it cannot (a peer that stops reading),
 * a view overwritten right after send() never reaches the peer: the pinned frame is marked
 * discarded and an intact copy follows, so every delivered append carries the bytes as they were
 * at send(). A planted bug (the same path without that step) proves the check catches a leak.
 */
import { type Server, Socket, connect, createServer } from 'node:net';
import { EntryReader, Prng, type RemoteMessage } from '@raftlab/core';
import { afterEach, describe, expect, test, vi } from 'vitest';
import {
  AcceptorHandshake,
  type EncodedFrame,
  type FrameChannel,
  FrameSplitter,
  type PeerAddress,
  TcpTransport,
  type TcpTransportOptions,
  type TransportStats,
  type WriteOutcome,
  decodeMessage,
  frameStatus,
  protocolVersion,
} from '../src/index.js';
import { TcpChannel } from '../src/tcp.js';
import { randomEntries } from '../src/testing.js';
import { clusterId, normalize, secret, startMesh, waitFor } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('tcp zero-copy send path', () => {
  test('append entries are written to the socket as the message slices themselves', async () => {
    const nodes = await startMesh('tcp', [1, 2]);
    cleanups.push(() => Promise.all([...nodes.values()].map((node) => node.transport.stop())).then(() => undefined));
    const written: unknown[] = [];
    const original = Socket.prototype.write;
    vi.spyOn(Socket.prototype, 'write').mockImplementation(function (this: Socket, ...args: Parameters<Socket['write']>) {
      written.push(args[0]);
      return original.apply(this, args);
    });
    const entries = randomEntries(new Prng(1), 100, 2, 2, 16);
    const message: RemoteMessage = { type: 'append', from: 1, to: 2, term: 2, prevIndex: 0, prevTerm: 0, commit: 0, entries };
    nodes.get(1)?.transport.send(message);
    for (const slice of entries.slices) expect(written).toContain(slice);
    expect(written.filter((chunk) => entries.slices.includes(chunk as Uint8Array))).toHaveLength(entries.slices.length);
    const receiver = nodes.get(2);
    await waitFor(() => receiver?.received.length === 1, 'the append');
    expect(normalize(receiver?.received[0] as RemoteMessage)).toEqual(normalize(message));
    expect(nodes.get(1)?.transport.stats()).toMatchObject({ framesResent: 0 });
  });

  test('a view overwritten after send() never reaches a peer that was not reading', async () => {
    const run = await runAgainstPausedPeer((options) => new TcpTransport(options));
    expect(run.stats.messagesDropped).toBe(0);
    expect(run.stats.framesResent).toBeGreaterThanOrEqual(1);
    expect(run.discarded).toBe(run.stats.framesResent);
    expect(run.refused).toEqual([]);
    expect(run.delivered).toEqual(run.expected);
  });

  test('planted bug: without discard-and-resend the same run delivers bytes written after send()', async () => {
    const run = await runAgainstPausedPeer((options) => new UnsafeTcpTransport(options));
    expect(run.discarded).toBe(0);
    expect(run.refused.length > 0 || JSON.stringify(run.delivered) !== JSON.stringify(run.expected)).toBe(true);
  });
});

/** The send path with the safety step removed: views go to the socket and nothing else happens. */
class UnsafeTcpChannel extends TcpChannel {
  override writeFrame(frame: EncodedFrame): WriteOutcome {
    this.socket.cork();
    for (const chunk of frame.chunks) this.socket.write(chunk);
    this.socket.uncork();
    return 'direct';
  }
}

class UnsafeTcpTransport extends TcpTransport {
  protected override dialTo(address: PeerAddress): FrameChannel {
    return new UnsafeTcpChannel(connect({ host: address.host, port: address.port }), `${address.host}:${address.port}`, this.bounds.frameBytesMax);
  }
}

/**
 * Sends 384 appends of about 64 KiB to a raw acceptor (playing node 2) that stops reading after the
 * handshake; after each send the test reuses the "ring" the entries were views of (every entry
 * keeps its frame header, its data changes, so a leak still decodes as valid entries and only a
 * comparison of contents catches it). Then the peer reads everything.
 */
async function runAgainstPausedPeer(create: (options: TcpTransportOptions) => TcpTransport): Promise<{
  stats: TransportStats;
  expected: unknown[];
  delivered: unknown[];
  refused: string[];
  discarded: number;
}> {
  const frames: Uint8Array[] = [];
  let peerSocket: Socket | null = null;
  const server: Server = createServer((socket) => {
    peerSocket = socket;
    const handshake = new AcceptorHandshake({ clusterId, secret: Buffer.from(secret), id: 2, protocolVersion }, (id) => id === 1);
    let open = false;
    const splitter = new FrameSplitter(
      1 << 26,
      (frame) => {
        if (open) {
          frames.push(frame);
          return;
        }
        const step = handshake.onFrame(frame);
        if (step.kind !== 'accepted') throw new Error(`handshake failed: ${step.kind}`);
        socket.write(step.reply as Uint8Array);
        open = true;
        socket.pause();
      },
      (reason) => {
        throw new Error(reason);
      },
    );
    socket.on('data', (chunk: Buffer) => splitter.push(chunk));
    socket.write(handshake.challenge());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  const sender = create({ id: 1, clusterId, secret, listen: { host: '127.0.0.1', port: 0 }, peers: new Map([[2, { host: '127.0.0.1', port: address.port }]]) });
  cleanups.push(() => {
    (peerSocket as Socket | null)?.destroy();
    return sender.stop();
  });
  await sender.start();
  await waitFor(() => sender.stats().connectionsOpen === 1, 'the link to the paused peer');

  const ring = new Uint8Array(1 << 17);
  const appends = 384;
  const expected: unknown[] = [];
  const reader = new EntryReader();
  for (let i = 0; i < appends; i++) {
    const entries = randomEntries(new Prng(1000 + i), 60, 3, 3, 1080);
    const bytes = entries.slices.length === 1 ? (entries.slices[0] as Uint8Array) : Buffer.concat(entries.slices as Uint8Array[]);
    ring.set(bytes, 0);
    const message: RemoteMessage = {
      type: 'append',
      from: 1,
      to: 2,
      term: 3,
      prevIndex: i,
      prevTerm: 3,
      commit: 0,
      entries: { count: entries.count, byteLength: entries.byteLength, slices: [ring.subarray(0, entries.byteLength)] },
    };
    expected.push(normalize(message));
    sender.send(message);
    reader.reset(message.entries);
    while (reader.next()) for (let at = reader.dataOffset; at < reader.dataOffset + reader.dataLength; at++) ring[at] = (ring[at] as number) ^ 0xff;
  }
  const stats = sender.stats();
  (peerSocket as Socket | null)?.resume();
  const deliverable = (): number => frames.filter((frame) => frame[frame.length - 1] === frameStatus.deliver).length;
  await waitFor(() => deliverable() === appends, 'every frame', 20_000);
  const delivered: unknown[] = [];
  const refused: string[] = [];
  let discarded = 0;
  for (const frame of frames) {
    if (frame[frame.length - 1] === frameStatus.discard) {
      discarded += 1;
      continue;
    }
    const result = decodeMessage(frame, { from: 1, to: 2 });
    if (result.ok) delivered.push(normalize(result.message));
    else refused.push(result.reason);
  }
  return { stats, expected, delivered, refused, discarded };
}
