/**
 * The KV command encoding: every command survives an encode/decode round trip unchanged (including
 * empty values, a leading byte-order mark and characters outside the BMP); bad input is refused
 * at encode time with a precise reason and never mangled; and decoding untrusted bytes never throws:
 * truncations, bad versions and opcodes, over-long or non-shortest varints, invalid UTF-8, oversized
 * fields, trailing bytes and random garbage all come back as refusals whose detail depends only on
 * the bytes, so every replica reaches the same verdict.
 */
import { Prng } from '@raftlab/core';
import { describe, expect, test } from 'vitest';
import { type KvCommand, commandVersion, decodeCommand, defaultKvLimits, encodeCommand } from '../src/index.js';

const session = { clientId: 7, sequence: 3, lowestPendingSequence: 2 };

function encode(command: KvCommand): Uint8Array {
  const result = encodeCommand(command);
  if (!result.ok) throw new Error(`encode failed: ${result.detail}`);
  return result.bytes;
}

const samples: KvCommand[] = [
  { op: 'register', timeMs: 0 },
  { op: 'register', timeMs: Number.MAX_SAFE_INTEGER },
  { op: 'get', timeMs: 12, key: 'a' },
  { op: 'put', timeMs: 1_700_000_000_000, session, key: 'user/1', value: 'Ada' },
  { op: 'put', timeMs: 1, session, key: 'k', value: '' },
  { op: 'put', timeMs: 1, session, key: '\ufeffbom', value: '\ufeffstill here' },
  { op: 'put', timeMs: 1, session, key: 'ключ', value: 'emoji 😀 and 中文' },
  { op: 'delete', timeMs: 5, session, key: 'gone' },
  { op: 'cas', timeMs: 5, session, key: 'c', expected: null, value: 'first' },
  { op: 'cas', timeMs: 5, session, key: 'c', expected: 'first', value: 'second' },
  { op: 'cas', timeMs: 5, session, key: 'c', expected: '', value: '' },
];

describe('round trip', () => {
  test.each(samples.map((command) => [command.op, command] as const))('%s decodes to the command encoded', (_, command) => {
    const bytes = encode(command);
    expect(bytes[0]).toBe(commandVersion);
    const decoded = decodeCommand(bytes);
    expect(decoded.ok).toBe(true);
    if (decoded.ok) expect(decoded.command).toEqual(command);
  });

  test('keys and values at exactly their limits are accepted', () => {
    const key = 'k'.repeat(defaultKvLimits.keyBytesMax);
    const value = 'v'.repeat(defaultKvLimits.valueBytesMax);
    const decoded = decodeCommand(encode({ op: 'put', timeMs: 0, session, key, value }));
    expect(decoded.ok && decoded.command.op === 'put' && decoded.command.key === key && decoded.command.value === value).toBe(true);
  });

  test('decode reports the UTF-8 sizes of key and value', () => {
    const decoded = decodeCommand(encode({ op: 'put', timeMs: 0, session, key: 'é', value: '😀' }));
    expect(decoded.ok && [decoded.keyBytes, decoded.valueBytes]).toEqual([2, 4]);
  });
});

describe('encode refuses bad input with a precise reason', () => {
  const cases: [string, KvCommand, string, RegExp][] = [
    ['an empty key', { op: 'get', timeMs: 0, key: '' }, 'malformed-command', /key is empty/],
    ['a key over keyBytesMax', { op: 'get', timeMs: 0, key: 'k'.repeat(1025) }, 'key-too-large', /1025 bytes exceeds keyBytesMax 1024/],
    ['a key over the limit only in UTF-8 bytes', { op: 'get', timeMs: 0, key: 'é'.repeat(513) }, 'key-too-large', /1026 bytes/],
    ['a value over valueBytesMax', { op: 'put', timeMs: 0, session, key: 'k', value: 'v'.repeat(1024 * 1024 + 1) }, 'value-too-large', /valueBytesMax/],
    ['an expected value over valueBytesMax', { op: 'cas', timeMs: 0, session, key: 'k', expected: 'v'.repeat(1024 * 1024 + 1), value: '' }, 'value-too-large', /expected of/],
    ['a lone high surrogate', { op: 'put', timeMs: 0, session, key: 'k', value: 'a\ud800b' }, 'malformed-command', /lone surrogate/],
    ['a lone low surrogate in the key', { op: 'get', timeMs: 0, key: '\udc00' }, 'malformed-command', /lone surrogate/],
    ['a negative time', { op: 'register', timeMs: -1 }, 'malformed-command', /timeMs -1/],
    ['a fractional time', { op: 'register', timeMs: 1.5 }, 'malformed-command', /timeMs 1.5/],
    ['client id 0', { op: 'delete', timeMs: 0, session: { ...session, clientId: 0 }, key: 'k' }, 'malformed-command', /clientId 0/],
    ['sequence 0', { op: 'delete', timeMs: 0, session: { ...session, sequence: 0, lowestPendingSequence: 0 }, key: 'k' }, 'malformed-command', /sequence 0/],
    ['a pending sequence above the sequence', { op: 'delete', timeMs: 0, session: { ...session, lowestPendingSequence: 4 }, key: 'k' }, 'malformed-command', /above sequence 3/],
    ['a missing session stamp', { op: 'put', timeMs: 0, key: 'k', value: 'v' } as unknown as KvCommand, 'malformed-command', /no session stamp/],
    ['an unknown op', { op: 'drop', timeMs: 0 } as unknown as KvCommand, 'malformed-command', /unknown op "drop"/],
  ];
  test.each(cases)('%s', (_, command, reason, detail) => {
    const result = encodeCommand(command);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toBe(reason);
      expect(result.detail).toMatch(detail);
    }
  });

  test('custom limits apply on both sides', () => {
    const limits = { keyBytesMax: 4, valueBytesMax: 8 };
    expect(encodeCommand({ op: 'put', timeMs: 0, session, key: 'abcd', value: '12345678' }, limits).ok).toBe(true);
    expect(encodeCommand({ op: 'put', timeMs: 0, session, key: 'abcde', value: '' }, limits)).toMatchObject({ ok: false, reason: 'key-too-large' });
    const big = encode({ op: 'put', timeMs: 0, session, key: 'abcd', value: '123456789' });
    expect(decodeCommand(big, limits)).toMatchObject({ ok: false, reason: 'value-too-large' });
  });
});

describe('decode refuses malformed bytes without throwing', () => {
  const put = encode({ op: 'put', timeMs: 300, session, key: 'key', value: 'value' });
  const cases: [string, number[], RegExp][] = [
    ['empty bytes', [], /empty command/],
    ['an unknown version', [2, 1, 0], /unsupported command version 2/],
    ['an unknown opcode', [1, 9, 0], /unknown opcode 9/],
    ['opcode 0', [1, 0, 0], /unknown opcode 0/],
    ['a missing time', [1, 1], /timeMs: truncated varint/],
    ['a varint not in its shortest form', [1, 1, 0x80, 0x00], /not in its shortest form/],
    ['a varint longer than 8 bytes', [1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /longer than 8 bytes/],
    ['a varint beyond 2^53 - 1', [1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], /exceeds the safe integer range/],
    ['trailing bytes', [1, 1, 0, 0], /1 trailing bytes/],
    ['an empty key', [1, 2, 0, 0], /empty key/],
    ['a key longer than the bytes left', [1, 2, 0, 5, 0x61], /5 bytes declared/],
    ['a key of invalid UTF-8', [1, 2, 0, 1, 0xff], /invalid UTF-8/],
    ['an encoded lone surrogate', [1, 2, 0, 3, 0xed, 0xa0, 0x80], /invalid UTF-8/],
    ['an overlong UTF-8 encoding', [1, 2, 0, 2, 0xc0, 0xaf], /invalid UTF-8/],
    ['client id 0', [1, 4, 0, 0, 1, 1, 1, 0x61], /clientId 0/],
    ['a pending sequence above the sequence', [1, 4, 0, 1, 1, 2, 1, 0x61], /above sequence 1/],
    ['a cas presence byte of 2', [1, 5, 0, 1, 1, 1, 1, 0x61, 2, 0], /presence byte 2/],
    ['a cas without its value', [1, 5, 0, 1, 1, 1, 1, 0x61, 0], /value length: truncated/],
    ['a put cut short', Array.from(put.subarray(0, put.length - 1)), /value: 5 bytes declared/],
  ];
  test.each(cases)('%s', (_, bytes, detail) => {
    const result = decodeCommand(new Uint8Array(bytes));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toBe('malformed-command');
      expect(result.detail).toMatch(detail);
    }
  });

  test('an oversized key is refused by its declared length, before reading it', () => {
    // Declares a 2000-byte key but carries none: the size bound wins over the truncation.
    const result = decodeCommand(new Uint8Array([1, 2, 0, 0xd0, 0x0f]));
    expect(result).toMatchObject({ ok: false, reason: 'key-too-large' });
  });

  test('every prefix of every sample is refused, never thrown', () => {
    for (const command of samples) {
      const bytes = encode(command);
      for (let length = 0; length < bytes.length; length++) {
        expect(decodeCommand(bytes.subarray(0, length)).ok, `${command.op} cut to ${length}`).toBe(false);
      }
    }
  });

  test('random garbage and random corruptions never throw, and decode the same way twice', () => {
    const prng = new Prng(42);
    const encoded = samples.map(encode);
    let refusals = 0;
    for (let round = 0; round < 20_000; round++) {
      let bytes: Uint8Array;
      if (round % 2 === 0) {
        bytes = new Uint8Array(prng.nextInt(24));
        for (let i = 0; i < bytes.length; i++) bytes[i] = prng.nextInt(256);
        if (bytes.length > 0 && prng.chance(0.5)) bytes[0] = commandVersion;
      } else {
        bytes = prng.pick(encoded).slice();
        const flips = 1 + prng.nextInt(3);
        for (let f = 0; f < flips; f++) bytes[prng.nextInt(bytes.length)] = prng.nextInt(256);
      }
      const first = decodeCommand(bytes);
      const second = decodeCommand(bytes.slice());
      expect(second).toEqual(first);
      if (!first.ok) {
        refusals += 1;
        expect(first.detail.length).toBeGreaterThan(0);
      } else {
        // Whatever decodes must re-encode to the very same bytes: one encoding per command.
        expect(encode(first.command)).toEqual(bytes);
      }
    }
    expect(refusals).toBeGreaterThan(10_000);
  });
});
