/**
 * The wire codec: every RemoteMessage type round-trips exactly (a property test over thousands of
 * random messages, entries in one slice or two); the frame layout is the documented one (u32 length
 * prefix, u32 header length, a msgpack array header, raw payload, status byte); AppendEntries
 * entries leave as the message's own slices, by reference; and the decoder enforces each semantic
 * rule it claims (addressing, term ceilings, entry validity, payload sizes).
 */
import { Prng, type RemoteMessage, encodeEntry, framesOf, noEntries } from '@raftlab/core';
import { unpack } from 'msgpackr';
import { describe, expect, test } from 'vitest';
import { HeaderReader, decodeMessage, encodeMessage, frameStatus, joinFrame, messageTypeCode } from '../src/index.js';
import { randomEntries, randomMessage } from '../src/testing.js';
import { normalize } from './helpers.js';

function roundTrip(message: RemoteMessage): RemoteMessage {
  const result = decodeMessage(joinFrame(encodeMessage(message)), { from: message.from, to: message.to });
  if (!result.ok) throw new Error(`decode failed: ${result.reason}`);
  return result.message;
}

function reasonOf(message: RemoteMessage): string {
  const result = decodeMessage(joinFrame(encodeMessage(message)));
  return result.ok ? 'accepted' : result.reason;
}

const append = (overrides: Partial<Extract<RemoteMessage, { type: 'append' }>> = {}): RemoteMessage => ({
  type: 'append',
  from: 1,
  to: 2,
  term: 5,
  prevIndex: 10,
  prevTerm: 4,
  commit: 9,
  entries: framesOf([encodeEntry(4, 'normal', new Uint8Array([1, 2])), encodeEntry(5, 'empty', new Uint8Array(0))]),
  ...overrides,
});

describe('codec round trip', () => {
  test('every remote message type round-trips exactly (5,000 random messages)', () => {
    const prng = new Prng(20240601);
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const message = randomMessage(prng, { from: 1 + prng.nextInt(9), to: 10 + prng.nextInt(9) });
      seen.add(message.type);
      expect(normalize(roundTrip(message)), `message ${i}: ${message.type}`).toEqual(normalize(message));
    }
    expect([...seen].sort()).toEqual(Object.keys(messageTypeCode).sort());
  });

  test('integers of every width round-trip, up to Number.MAX_SAFE_INTEGER', () => {
    for (const value of [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
      const message: RemoteMessage = { type: 'readIndexResponse', from: 1, to: 2, term: value, context: 'c', index: value };
      expect(roundTrip(message)).toEqual(message);
    }
  });

  test('an append with no entries decodes to the shared empty run', () => {
    const decoded = roundTrip(append({ entries: noEntries }));
    expect(decoded.type === 'append' && decoded.entries).toBe(noEntries);
  });
});

describe('frame layout', () => {
  test('length prefix, header length, msgpack header array, raw entries, status byte', () => {
    const message = append();
    const frame = joinFrame(encodeMessage(message));
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    expect(view.getUint32(0)).toBe(frame.length - 4);
    const headerLength = view.getUint32(4);
    expect(unpack(frame.subarray(8, 8 + headerLength))).toEqual([messageTypeCode.append, 1, 2, 5, 10, 4, 9, 2, message.type === 'append' ? message.entries.byteLength : -1]);
    const payload = frame.subarray(8 + headerLength, frame.length - 1);
    expect(Buffer.from(payload).equals(Buffer.from((message as Extract<RemoteMessage, { type: 'append' }>).entries.slices[0] as Uint8Array))).toBe(true);
    expect(frame[frame.length - 1]).toBe(frameStatus.deliver);
  });

  test('append entries are returned by reference, never copied or re-encoded', () => {
    const prng = new Prng(7);
    const entries = randomEntries(prng, 50, 3, 9, 32);
    const twoSlices = entries.slices.length === 2 ? entries : randomEntries(new Prng(8), 50, 3, 9, 32);
    for (const run of [entries, twoSlices]) {
      const encoded = encodeMessage(append({ term: 9, prevTerm: 3, entries: run }));
      expect(encoded.borrowed).toBe(true);
      expect(encoded.chunks.slice(1, 1 + run.slices.length)).toEqual(run.slices);
      for (let i = 0; i < run.slices.length; i++) expect(encoded.chunks[1 + i]).toBe(run.slices[i]);
      expect(encoded.chunks.at(-1)).toBe(encoded.status);
    }
  });

  test('snapshot data is returned by reference; proposals are copied into one owned buffer', () => {
    const data = new Uint8Array([9, 8, 7]);
    const snapshot = encodeMessage({ type: 'snapshot', from: 1, to: 2, term: 3, snapshot: { index: 4, term: 3, peers: [1, 2], data }, offset: 0, done: true });
    expect(snapshot.chunks[1]).toBe(data);
    const propose = encodeMessage({ type: 'propose', from: 2, to: 1, term: 3, data: [data, data] });
    expect(propose.borrowed).toBe(false);
    expect(propose.chunks).toHaveLength(1);
  });

  test('the strict header reader agrees with msgpackr on every integer width', () => {
    const reader = new HeaderReader();
    for (const value of [0, 5, 127, 128, 200, 255, 256, 1000, 65535, 65536, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 50, Number.MAX_SAFE_INTEGER]) {
      const frame = joinFrame(encodeMessage({ type: 'timeoutNow', from: 1, to: 2, term: value }));
      reader.reset(frame, 8, frame.length - 1);
      expect(reader.arrayLength('header')).toBe(4);
      expect([reader.integer('type'), reader.integer('from'), reader.integer('to'), reader.integer('term')]).toEqual([messageTypeCode.timeoutNow, 1, 2, value]);
      expect(reader.problem).toBeNull();
      expect(reader.atEnd).toBe(true);
    }
  });
});

describe('semantic checks on decode', () => {
  test('a frame addressed to another node is refused', () => {
    const frame = joinFrame(encodeMessage(append()));
    expect(decodeMessage(frame, { to: 3 })).toEqual({ ok: false, reason: 'addressed to node 2, this is node 3' });
    expect(decodeMessage(frame, { to: 2 }).ok).toBe(true);
  });

  test('a frame claiming another sender than the authenticated one is refused', () => {
    const result = decodeMessage(joinFrame(encodeMessage(append())), { from: 3 });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/claims to come from node 1 on a connection authenticated as node 3/);
  });

  test('from equal to to, and node id 0, are refused', () => {
    expect(reasonOf({ type: 'timeoutNow', from: 2, to: 2, term: 1 })).toMatch(/both node 2/);
    expect(reasonOf({ type: 'timeoutNow', from: 0, to: 2, term: 1 })).toMatch(/from: node id 0 is not positive/);
  });

  test('entries with a term above the message term are refused (validateFrames)', () => {
    expect(reasonOf(append({ term: 4, prevTerm: 4, entries: framesOf([encodeEntry(5, 'normal', new Uint8Array(1))]) }))).toMatch(/above message term 4/);
  });

  test('entries whose terms decrease are refused', () => {
    const entries = framesOf([encodeEntry(5, 'normal', new Uint8Array(1)), encodeEntry(4, 'normal', new Uint8Array(1))]);
    expect(reasonOf(append({ prevTerm: 1, entries }))).toMatch(/below previous 5/);
  });

  test('a first entry below prevTerm is refused (Log Matching, §5.3)', () => {
    expect(reasonOf(append({ prevTerm: 5, entries: framesOf([encodeEntry(4, 'normal', new Uint8Array(1))]) }))).toMatch(/first entry term 4 below prevTerm 5/);
  });

  test('prevTerm above the message term is refused', () => {
    expect(reasonOf(append({ term: 3, prevTerm: 4, entries: noEntries }))).toMatch(/prevTerm 4 above message term 3/);
  });

  test('a declared entry count that differs from the frames is refused', () => {
    const real = framesOf([encodeEntry(4, 'normal', new Uint8Array(1)), encodeEntry(4, 'normal', new Uint8Array(1))]);
    expect(reasonOf(append({ entries: { ...real, count: 3 } }))).toMatch(/frame count 2 differs from declared count 3/);
  });

  test('a snapshot newer than the message term, or listing a voter twice, is refused', () => {
    const data = new Uint8Array(2);
    expect(reasonOf({ type: 'snapshot', from: 1, to: 2, term: 3, snapshot: { index: 4, term: 4, peers: [1], data }, offset: 0, done: true })).toMatch(/snapshot term 4 above message term 3/);
    expect(reasonOf({ type: 'snapshot', from: 1, to: 2, term: 3, snapshot: { index: 4, term: 3, peers: [1, 1], data }, offset: 0, done: true })).toMatch(/listed twice/);
  });

  test('a frame marked discarded by its sender is not delivered', () => {
    const frame = joinFrame(encodeMessage(append()));
    frame[frame.length - 1] = frameStatus.discard;
    expect(decodeMessage(frame)).toEqual({ ok: false, reason: 'frame marked discarded by its sender' });
  });
});
