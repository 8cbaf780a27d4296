/**
 * decodeMessage against hostile input: it never throws, and refuses with a reason random bytes,
 * every truncation of a valid frame, huge and inconsistent lengths, unknown type codes, and every
 * header field of every message type replaced by a value of the wrong kind (wrong type, negative,
 * NaN, fractional, beyond 2^53). Bit flips and mutations of valid frames never throw, and whatever
 * is still accepted is a well-formed message that re-encodes and decodes to itself.
 */
import { Prng, type RemoteMessage, validateFrames } from '@raftlab/core';
import { Packr } from 'msgpackr';
import { describe, expect, test } from 'vitest';
import { decodeHandshake } from '../src/codec.js';
import { decodeMessage, encodeMessage, joinFrame, messageTypeCode, protocolVersion } from '../src/index.js';
import { garbageFrame, mutateFrame, randomMessage } from '../src/testing.js';
import { normalize } from './helpers.js';

const packr = new Packr({ useRecords: false });
const allTypes = Object.keys(messageTypeCode) as RemoteMessage['type'][];

function frameWithHeader(header: unknown[], payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const packed = packr.pack(header);
  const frame = new Uint8Array(9 + packed.length + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, frame.length - 4);
  view.setUint32(4, packed.length);
  frame.set(packed, 8);
  frame.set(payload, 8 + packed.length);
  return frame;
}

function expectRefused(frame: Uint8Array, what: string): string {
  const result = decodeMessage(frame);
  expect(result.ok, `${what} was accepted`).toBe(false);
  const reason = result.ok ? '' : result.reason;
  expect(reason.length, `${what}: empty reason`).toBeGreaterThan(0);
  return reason;
}

/** Checks an accepted message is well-formed and canonical up to re-encoding. */
function expectWellFormed(message: RemoteMessage): void {
  if (message.type === 'append') expect(validateFrames(message.entries, message.term)).toBeNull();
  const again = decodeMessage(joinFrame(encodeMessage(message)));
  expect(again.ok).toBe(true);
  if (again.ok) expect(normalize(again.message)).toEqual(normalize(message));
}

type FieldKind = 'integer' | 'boolean' | 'contextOrNull' | 'string' | 'integerArray';

/** Kinds of the header fields after [type, from, to, term], per type. */
const layouts: Record<RemoteMessage['type'], FieldKind[]> = {
  append: ['integer', 'integer', 'integer', 'integer', 'integer'],
  appendResponse: ['boolean', 'integer', 'integer', 'integer'],
  vote: ['integer', 'integer', 'boolean'],
  preVote: ['integer', 'integer', 'boolean'],
  voteResponse: ['boolean'],
  preVoteResponse: ['boolean'],
  heartbeat: ['integer', 'contextOrNull'],
  heartbeatResponse: ['contextOrNull'],
  timeoutNow: [],
  propose: ['integerArray'],
  readIndex: ['string'],
  readIndexResponse: ['string', 'integer'],
  snapshot: ['integer', 'integer', 'integerArray', 'integer', 'integer', 'boolean'],
  snapshotResponse: ['integer', 'integer', 'boolean'],
};

const notInteger: unknown[] = [-1, -(2 ** 40), 0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 60, '3', null, true, [], { a: 1 }, new Uint8Array(2)];
const wrongByKind: Record<FieldKind, unknown[]> = {
  integer: notInteger,
  boolean: [0, 1, 'true', null, [], {}],
  contextOrNull: [1, true, [], {}, new Uint8Array(1)],
  string: [1, null, true, [], {}],
  integerArray: [1, 'x', null, {}, [-1], [0.5], ['x'], [Number.NaN]],
};

describe('decodeMessage never throws', () => {
  test('random bytes (20,000 buffers) are refused with reasons', () => {
    const prng = new Prng(1);
    for (let i = 0; i < 20_000; i++) expectRefused(garbageFrame(prng, 300), `garbage ${i}`);
  });

  test('every truncation of valid frames of every type is refused', () => {
    const prng = new Prng(2);
    for (const type of allTypes) {
      const frame = joinFrame(encodeMessage(randomMessage(prng, { from: 1, to: 2, types: [type] })));
      for (let length = 0; length < frame.length; length++) expectRefused(frame.subarray(0, length), `${type} truncated to ${length}`);
    }
  });

  test('bit flips and mutations of valid frames (30,000) never throw; survivors are well-formed', () => {
    const prng = new Prng(3);
    let refused = 0;
    for (let i = 0; i < 30_000; i++) {
      const frame = joinFrame(encodeMessage(randomMessage(prng, { from: 1, to: 2 })));
      const { bytes, mutation } = mutateFrame(frame, prng);
      const result = decodeMessage(bytes);
      if (!result.ok) {
        refused += 1;
        expect(result.reason.length, mutation).toBeGreaterThan(0);
      } else {
        expectWellFormed(result.message);
      }
    }
    expect(refused).toBeGreaterThan(10_000);
  });

  test('huge and inconsistent lengths are refused', () => {
    const frame = joinFrame(encodeMessage({ type: 'timeoutNow', from: 1, to: 2, term: 1 }));
    for (const prefix of [0, 1, frame.length - 5, frame.length - 3, 0x7fffffff, 0xffffffff]) {
      const copy = Uint8Array.from(frame);
      new DataView(copy.buffer).setUint32(0, prefix);
      expect(expectRefused(copy, `prefix ${prefix}`)).toMatch(/length prefix/);
    }
    for (const headerLength of [0, frame.length, 0xffffffff]) {
      const copy = Uint8Array.from(frame);
      new DataView(copy.buffer).setUint32(4, headerLength);
      expect(expectRefused(copy, `header length ${headerLength}`)).toMatch(/header length/);
    }
    // An array header claiming 2^32 - 1 elements in a few bytes.
    expect(expectRefused(frameWithHeader([]).map((byte, i) => (i === 8 ? 0xdd : byte)), 'array32')).toMatch(/header/);
    const huge = new Uint8Array([0, 0, 0, 10, 0, 0, 0, 5, 0xdd, 0xff, 0xff, 0xff, 0xff, 0]);
    expect(expectRefused(huge, 'array of 2^32 - 1 elements')).toMatch(/array of 4294967295 elements/);
  });

  test('unknown type codes, handshake codes and non-array headers are refused', () => {
    for (const code of [0, 15, 31, 32, 33, 99, 255, 65536]) {
      expect(expectRefused(frameWithHeader([code, 1, 2, 3]), `type ${code}`)).toMatch(/unknown message type code/);
    }
    expect(expectRefused(frameWithHeader(['append', 1, 2, 3]), 'string type')).toMatch(/type: expected an integer, got string/);
    expect(expectRefused(frameWithHeader({ type: 1 } as unknown as unknown[]), 'map header')).toMatch(/expected an array, got map/);
    const extension = new Uint8Array([0, 0, 0, 8, 0, 0, 0, 3, 0xd4, 0x72, 0x01, 0]);
    expect(expectRefused(extension, 'record extension')).toMatch(/expected an array/);
  });

  test('every header field of every type set to a wrong kind of value is refused, naming the problem', () => {
    const prng = new Prng(4);
    let cases = 0;
    for (const type of allTypes) {
      const message = randomMessage(prng, { from: 1, to: 2, types: [type] });
      const frame = joinFrame(encodeMessage(message));
      const headerLength = new DataView(frame.buffer, frame.byteOffset).getUint32(4);
      const header = packr.unpack(frame.subarray(8, 8 + headerLength)) as unknown[];
      const payload = frame.subarray(8 + headerLength, frame.length - 1);
      const kinds: FieldKind[] = ['integer', 'integer', 'integer', 'integer', ...layouts[type]];
      expect(kinds, type).toHaveLength(header.length);
      for (let field = 1; field < header.length; field++) {
        for (const wrong of wrongByKind[kinds[field] as FieldKind]) {
          const mutated = [...header];
          mutated[field] = wrong;
          const reason = expectRefused(frameWithHeader(mutated, payload), `${type} field ${field} = ${String(wrong)}`);
          expect(reason).toMatch(/expected|not positive|both node|above|differs|runs past|take|array/);
          cases += 1;
        }
      }
      expectRefused(frameWithHeader([...header, 0], payload), `${type} with an extra field`);
      expectRefused(frameWithHeader(header.slice(0, -1), payload), `${type} with a field missing`);
    }
    expect(cases).toBeGreaterThan(200);
  });

  test('a negative, fractional or NaN term is refused with the value in the reason', () => {
    expect(expectRefused(frameWithHeader([9, 1, 2, -3]), 'negative')).toBe('term: expected a non-negative integer, got -3');
    expect(expectRefused(frameWithHeader([9, 1, 2, 1.5]), 'fraction')).toBe('term: expected an integer, got 1.5');
    expect(expectRefused(frameWithHeader([9, 1, 2, Number.NaN]), 'NaN')).toBe('term: expected an integer, got NaN');
  });

  test('payload bytes on a message type that carries none are refused', () => {
    expect(expectRefused(frameWithHeader([9, 1, 2, 3], new Uint8Array([1, 2])), 'timeoutNow with payload')).toMatch(/carries 2 payload bytes/);
  });

  test('invalid UTF-8 in a context is refused', () => {
    const frame = frameWithHeader([11, 1, 2, 3, 'ab']);
    const at = frame.indexOf(0x61);
    frame[at] = 0xff;
    expect(expectRefused(frame, 'invalid UTF-8')).toBe('context: invalid UTF-8');
  });

  test('handshake decoding never throws either (mutated handshake frames)', () => {
    const prng = new Prng(5);
    const hello = frameWithHeader([33, protocolVersion, 'c', 1, 2, new Uint8Array(16), new Uint8Array(32)]);
    expect(decodeHandshake(hello, protocolVersion).ok).toBe(true);
    for (let i = 0; i < 5000; i++) {
      const { bytes } = mutateFrame(hello, prng);
      const result = decodeHandshake(bytes, protocolVersion);
      if (!result.ok) expect(result.reason.length).toBeGreaterThan(0);
    }
    expect(decodeHandshake(frameWithHeader([33, protocolVersion + 1]), protocolVersion)).toMatchObject({ ok: false, reason: `protocol version ${protocolVersion + 1}, this node speaks ${protocolVersion}` });
  });
});
