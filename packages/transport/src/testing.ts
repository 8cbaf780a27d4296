/**
 * Test helpers, exported as `@raftlab/transport/testing` so the runtime's tests can reuse them:
 * random valid messages (property tests), mutated and garbage frames (fuzzing), and a rogue
 * connection that speaks raw bytes to a live TCP or WebSocket node, after a valid handshake or as a
 * stranger. Nothing here is used by the transports themselves.
 */
import { connect } from 'node:net';
import { type EntryFrames, type NodeId, type Prng, type RemoteMessage, encodeEntry, framesOf, noEntries } from '@raftlab/core';
import { Packr } from 'msgpackr';
import { WebSocket } from 'ws';
import { type EncodedFrame, frameHeadBytes, frameStatus, joinFrame, messageTypeCode, readFrameLength } from './codec.js';
import { DialerHandshake, protocolVersion, secretBytes } from './handshake.js';
import { FrameSplitter } from './tcp.js';
import type { PeerAddress } from './transport.js';
import { webSocketPath } from './ws.js';

/** Shapes of random messages. */
export interface RandomMessageOptions {
  readonly from: NodeId;
  readonly to: NodeId;
  /** Most entries in an append (default 20). */
  readonly entryCountMax?: number;
  /** Most data bytes per entry, proposal or snapshot (default 64). */
  readonly dataBytesMax?: number;
  /** Restrict to these types (default: every remote type). */
  readonly types?: readonly RemoteMessage['type'][];
}

const allTypes = Object.keys(messageTypeCode) as RemoteMessage['type'][];

function randomBytes(prng: Prng, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = prng.nextInt(256);
  return bytes;
}

/** A random integer from a spread of magnitudes (small, byte, u16, u32 and beyond up to 2^53 - 1). */
export function randomIndex(prng: Prng): number {
  switch (prng.nextInt(5)) {
    case 0:
      return prng.nextInt(128);
    case 1:
      return prng.nextInt(256);
    case 2:
      return prng.nextInt(65536);
    case 3:
      return prng.nextUint32();
    default:
      return prng.nextInt(0x200000) * 0x100000000 + prng.nextUint32();
  }
}

function randomContext(prng: Prng): string {
  const alphabet = ['a', 'Z', '0', ' ', 'é', '✓', '𝄞', '"', '\\', '\n'];
  let text = '';
  const length = prng.nextInt(12);
  for (let i = 0; i < length; i++) text += prng.pick(alphabet);
  return text;
}

/** Random entries: non-decreasing terms in [firstTerm, lastTerm], in one slice or split in two at an entry boundary. */
export function randomEntries(prng: Prng, count: number, firstTerm: number, lastTerm: number, dataBytesMax: number): EntryFrames {
  if (count === 0) return noEntries;
  const frames: Uint8Array[] = [];
  let term = firstTerm;
  for (let i = 0; i < count; i++) {
    if (term < lastTerm && prng.chance(0.2)) term += 1 + prng.nextInt(Math.min(lastTerm - term, 1000));
    frames.push(encodeEntry(term, prng.chance(0.1) ? 'empty' : 'normal', randomBytes(prng, prng.nextInt(dataBytesMax + 1))));
  }
  if (lastTerm > term && prng.chance(0.5)) frames[frames.length - 1] = encodeEntry(lastTerm, 'normal', randomBytes(prng, 3));
  const joined = framesOf(frames);
  if (count < 2 || prng.chance(0.5)) return joined;
  // Two slices, as when a run wraps the ring.
  const split = 1 + prng.nextInt(count - 1);
  let splitBytes = 0;
  for (let i = 0; i < split; i++) splitBytes += (frames[i] as Uint8Array).length;
  const bytes = joined.slices[0] as Uint8Array;
  return { count, byteLength: joined.byteLength, slices: [bytes.subarray(0, splitBytes), bytes.subarray(splitBytes)] };
}

/** A random, valid remote message (what a RaftNode could send). */
export function randomMessage(prng: Prng, options: RandomMessageOptions): RemoteMessage {
  const { from, to } = options;
  const entryCountMax = options.entryCountMax ?? 20;
  const dataBytesMax = options.dataBytesMax ?? 64;
  const type = prng.pick(options.types ?? allTypes);
  const term = randomIndex(prng);
  const base = { from, to, term };
  switch (type) {
    case 'append': {
      const prevTerm = prng.nextInt(Math.min(term, 1 << 30) + 1) + Math.max(0, term - (1 << 30));
      const count = prng.nextInt(entryCountMax + 1);
      const entries = randomEntries(prng, count, Math.min(prevTerm, term), term, dataBytesMax);
      return { ...base, type, prevIndex: randomIndex(prng), prevTerm, commit: randomIndex(prng), entries };
    }
    case 'appendResponse':
      return { ...base, type, reject: prng.chance(0.5), index: randomIndex(prng), hintIndex: randomIndex(prng), hintTerm: randomIndex(prng) };
    case 'vote':
    case 'preVote':
      return { ...base, type, lastIndex: randomIndex(prng), lastTerm: randomIndex(prng), transfer: prng.chance(0.5) };
    case 'voteResponse':
    case 'preVoteResponse':
      return { ...base, type, reject: prng.chance(0.5) };
    case 'heartbeat':
      return { ...base, type, commit: randomIndex(prng), context: prng.chance(0.5) ? null : randomContext(prng) };
    case 'heartbeatResponse':
      return { ...base, type, context: prng.chance(0.5) ? null : randomContext(prng) };
    case 'timeoutNow':
      return { ...base, type };
    case 'propose': {
      const data: Uint8Array[] = [];
      const count = prng.nextInt(6);
      for (let i = 0; i < count; i++) data.push(randomBytes(prng, prng.nextInt(dataBytesMax + 1)));
      return { ...base, type, data };
    }
    case 'readIndex':
      return { ...base, type, context: randomContext(prng) };
    case 'readIndexResponse':
      return { ...base, type, context: randomContext(prng), index: randomIndex(prng) };
    case 'snapshot': {
      const peers: NodeId[] = [];
      const peerCount = 1 + prng.nextInt(7);
      while (peers.length < peerCount) {
        const peer = 1 + prng.nextInt(1000);
        if (!peers.includes(peer)) peers.push(peer);
      }
      const snapshotTerm = prng.nextInt(Math.min(term, 1 << 30) + 1);
      const snapshot = { index: randomIndex(prng), term: snapshotTerm, peers, data: randomBytes(prng, prng.nextInt(dataBytesMax * 4 + 1)) };
      return { ...base, type, snapshot, offset: randomIndex(prng), done: prng.chance(0.5) };
    }
    case 'snapshotResponse':
      return { ...base, type, index: randomIndex(prng), offset: randomIndex(prng), reject: prng.chance(0.5) };
  }
}

const mutationPackr = new Packr({ useRecords: false });

/** Values that do not belong in a header field: wrong types, negative, NaN, fractions, huge. */
const wrongValues: readonly unknown[] = [-1, -(2 ** 40), 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60, 'text', null, true, [], { a: 1 }, new Uint8Array(3), ''];

/** A mutated copy of `frame` and what was done, for fuzzing a decoder or a live node. */
export function mutateFrame(frame: Uint8Array, prng: Prng): { bytes: Uint8Array; mutation: string } {
  const bytes = Uint8Array.from(frame);
  const view = new DataView(bytes.buffer);
  const headerLength = bytes.length >= frameHeadBytes ? readFrameLength(bytes, 4) : 0;
  switch (prng.nextInt(11)) {
    case 0: {
      const at = prng.nextInt(bytes.length);
      bytes[at] = (bytes[at] as number) ^ (1 << prng.nextInt(8));
      return { bytes, mutation: `flip a bit of byte ${at}` };
    }
    case 1: {
      const length = prng.nextInt(bytes.length);
      return { bytes: bytes.subarray(0, length), mutation: `truncate to ${length} bytes` };
    }
    case 2: {
      const extra = randomBytes(prng, 1 + prng.nextInt(16));
      const longer = new Uint8Array(bytes.length + extra.length);
      longer.set(bytes);
      longer.set(extra, bytes.length);
      // Keep the length prefix consistent half of the time, so the header and payload checks are reached.
      if (prng.chance(0.5) && longer.length >= 4) new DataView(longer.buffer).setUint32(0, longer.length - 4);
      return { bytes: longer, mutation: `append ${extra.length} junk bytes` };
    }
    case 3: {
      const value = prng.pick([0xffffffff, 0x7fffffff, 0x10000000, prng.nextUint32(), 0, 1]);
      if (bytes.length >= 4) view.setUint32(0, value);
      return { bytes, mutation: `length prefix ${value}` };
    }
    case 4: {
      const value = prng.pick([0, 0xffffffff, headerLength + 1, Math.max(0, headerLength - 1), prng.nextUint32()]);
      if (bytes.length >= frameHeadBytes) view.setUint32(4, value);
      return { bytes, mutation: `header length ${value}` };
    }
    case 5: {
      if (headerLength > 0 && frameHeadBytes + headerLength <= bytes.length) {
        const at = frameHeadBytes + prng.nextInt(headerLength);
        bytes[at] = prng.nextInt(256);
        return { bytes, mutation: `header byte ${at} randomized` };
      }
      return { bytes, mutation: 'unchanged (no header)' };
    }
    case 6: {
      const payloadStart = frameHeadBytes + headerLength;
      if (payloadStart < bytes.length - 1) {
        const at = payloadStart + prng.nextInt(bytes.length - 1 - payloadStart);
        bytes[at] = prng.nextInt(256);
        return { bytes, mutation: `payload byte ${at} randomized` };
      }
      return { bytes, mutation: 'unchanged (no payload)' };
    }
    case 7: {
      const status = prng.pick([frameStatus.discard, 2, 0xff]);
      if (bytes.length > 0) bytes[bytes.length - 1] = status;
      return { bytes, mutation: `status byte ${status}` };
    }
    case 8:
    case 9: {
      // Re-encode a header with one field replaced by a wrong value, payload kept.
      const fields = headerFields(bytes, headerLength);
      if (fields === null || fields.length === 0) return { bytes, mutation: 'unchanged (header unreadable)' };
      const index = prng.nextInt(fields.length);
      const wrong = index === 0 ? prng.pick([0, 14, 99, 255, -1, 'append']) : prng.pick(wrongValues);
      fields[index] = wrong;
      return { bytes: withHeader(bytes, headerLength, mutationPackr.pack(fields)), mutation: `header field ${index} set to ${String(wrong)}` };
    }
    default: {
      // Drop or add a header field.
      const fields = headerFields(bytes, headerLength);
      if (fields === null) return { bytes, mutation: 'unchanged (header unreadable)' };
      if (prng.chance(0.5) && fields.length > 0) fields.pop();
      else fields.push(prng.pick(wrongValues));
      return { bytes: withHeader(bytes, headerLength, mutationPackr.pack(fields)), mutation: `header of ${fields.length} fields` };
    }
  }
}

function headerFields(bytes: Uint8Array, headerLength: number): unknown[] | null {
  if (headerLength === 0 || frameHeadBytes + headerLength > bytes.length) return null;
  try {
    const value: unknown = mutationPackr.unpack(bytes.subarray(frameHeadBytes, frameHeadBytes + headerLength));
    return Array.isArray(value) ? [...(value as unknown[])] : null;
  } catch {
    return null;
  }
}

function withHeader(bytes: Uint8Array, headerLength: number, header: Uint8Array): Uint8Array {
  const rest = bytes.subarray(frameHeadBytes + headerLength);
  const frame = new Uint8Array(frameHeadBytes + header.length + rest.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, frame.length - 4);
  view.setUint32(4, header.length);
  frame.set(header, frameHeadBytes);
  frame.set(rest, frameHeadBytes + header.length);
  return frame;
}

/** Random bytes, with a plausible length prefix half of the time (so parsers get past the first check). */
export function garbageFrame(prng: Prng, bytesMax = 256): Uint8Array {
  const length = prng.nextInt(bytesMax + 1);
  const bytes = randomBytes(prng, length);
  if (length >= 4 && prng.chance(0.5)) new DataView(bytes.buffer).setUint32(0, length - 4);
  return bytes;
}

/** One encoded frame as a single buffer (tests). */
export function frameBytesOf(frame: EncodedFrame): Uint8Array {
  return joinFrame(frame);
}

/** Who a rogue connection claims to be; null for a stranger that skips the handshake. */
export interface RogueIdentity {
  readonly clusterId: string;
  readonly secret: string | Uint8Array;
  /** The id it claims. */
  readonly id: NodeId;
  /** The node it dials. */
  readonly peer: NodeId;
  readonly protocolVersion?: number;
}

/** A raw connection to a live node. */
export interface RogueConnection {
  /** Writes raw bytes (TCP: into the stream; WebSocket: as one binary message). */
  write(bytes: Uint8Array): void;
  /** Resolves when the connection has closed. */
  readonly closed: Promise<void>;
  /** True once closed. */
  isClosed(): boolean;
  /** Closes from this side. */
  close(): void;
}

/**
 * Opens a raw TCP or WebSocket connection to `address`; with an identity, completes a valid
 * handshake first (rejects if refused). Then anything can be written.
 */
export function openRogueConnection(kind: 'tcp' | 'ws', address: PeerAddress, identity: RogueIdentity | null): Promise<RogueConnection> {
  const handshake =
    identity === null
      ? null
      : new DialerHandshake(
          { clusterId: identity.clusterId, secret: secretBytes(identity.secret), id: identity.id, protocolVersion: identity.protocolVersion ?? protocolVersion },
          identity.peer,
        );
  return new Promise((resolve, reject) => {
    let closed = false;
    let settled = false;
    let resolveClosed: () => void = () => undefined;
    const closedPromise = new Promise<void>((done) => (resolveClosed = done));
    const settle = (connection: RogueConnection | Error): void => {
      if (settled) return;
      settled = true;
      if (connection instanceof Error) reject(connection);
      else resolve(connection);
    };
    let write: (bytes: Uint8Array) => void;
    let close: () => void;
    const connection: RogueConnection = {
      write: (bytes) => write(bytes),
      closed: closedPromise,
      isClosed: () => closed,
      close: () => close(),
    };
    const onFrame = (frame: Uint8Array): void => {
      if (handshake === null || settled) return;
      const step = handshake.onFrame(frame);
      if (step.kind === 'continue') write(step.reply);
      else if (step.kind === 'accepted') settle(connection);
      else {
        settle(new Error(`rogue handshake refused: ${step.reason}`));
        close();
      }
    };
    const onClosed = (): void => {
      closed = true;
      resolveClosed();
      settle(new Error('rogue connection closed during the handshake'));
    };
    if (kind === 'tcp') {
      const socket = connect({ host: address.host, port: address.port, noDelay: true });
      const splitter = new FrameSplitter(1 << 20, onFrame, () => socket.destroy());
      write = (bytes) => {
        if (!socket.destroyed) socket.write(bytes);
      };
      close = () => socket.destroy();
      socket.on('data', (chunk: Buffer) => splitter.push(chunk));
      socket.on('error', () => undefined);
      socket.on('close', onClosed);
      socket.on('connect', () => {
        if (handshake === null) settle(connection);
      });
    } else {
      const socket = new WebSocket(`ws://${address.host}:${address.port}${webSocketPath}`, { perMessageDeflate: false });
      write = (bytes) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(bytes, { binary: true });
      };
      close = () => socket.terminate();
      socket.on('message', (data: Buffer) => onFrame(data));
      socket.on('error', () => undefined);
      socket.on('close', onClosed);
      socket.on('open', () => {
        if (handshake === null) settle(connection);
      });
    }
  });
}
