/**
 * The i64 sum module: parseI64 accepts exactly what Rust's `str::parse::<i64>` accepts (checked
 * case by case, and against a simple reference over thousands of random strings, for both the
 * string and the UTF-8 byte form); sums wrap in two's complement; commands round-trip through
 * their msgpack framing and malformed framings are refused; the machine applies a retried command
 * once, keeps its duplicate table within its bound, and a snapshot restores an equal machine.
 */
import { describe, expect, test } from 'vitest';
import {
  I64SumMachine,
  Prng,
  RaftError,
  decodeSumCommand,
  encodeSumCommand,
  i64Max,
  i64Min,
  parseI64,
  parseI64Bytes,
  wrapI64,
} from '../src/index.js';

const encoder = new TextEncoder();

function parseBoth(text: string): bigint | null {
  const bytes = encoder.encode(text);
  const fromBytes = parseI64Bytes(bytes, 0, bytes.length);
  const fromString = parseI64(text);
  expect(fromBytes).toBe(fromString);
  return fromString;
}

/** Reference: the grammar as a regular expression, the range with BigInt on the validated text. */
function reference(text: string): bigint | null {
  if (!/^[+-]?[0-9]+$/.test(text)) return null;
  const value = BigInt(text.startsWith('+') ? text.slice(1) : text);
  return value < i64Min || value > i64Max ? null : value;
}

describe('parseI64 follows str::parse::<i64>', () => {
  const cases: [string, bigint | null][] = [
    ['', null],
    ['+', null],
    ['-', null],
    ['-0', 0n],
    ['+0', 0n],
    ['0', 0n],
    ['+5', 5n],
    ['-5', -5n],
    [' 5', null],
    ['5 ', null],
    ['\t5', null],
    ['5\n', null],
    ['007', 7n],
    ['-007', -7n],
    ['9223372036854775807', 9223372036854775807n],
    ['9223372036854775808', null],
    ['-9223372036854775808', -9223372036854775808n],
    ['-9223372036854775809', null],
    ['00000000000000000000000009223372036854775807', 9223372036854775807n],
    ['99999999999999999999', null],
    ['1e3', null],
    ['0x10', null],
    ['1_000', null],
    ['1,000', null],
    ['1.0', null],
    ['٣', null],
    ['５', null],
    ['+-5', null],
    ['-+5', null],
    ['--5', null],
    ['++5', null],
    ['5-', null],
    ['Infinity', null],
    ['NaN', null],
    ['123456789012345', 123456789012345n],
    ['1234567890123456', 1234567890123456n],
    ['-1234567890123456789', -1234567890123456789n],
  ];
  for (const [text, expected] of cases) {
    test(`${JSON.stringify(text)} -> ${expected === null ? 'invalid' : String(expected)}`, () => {
      expect(parseBoth(text)).toBe(expected);
    });
  }

  test('agrees with the reference grammar on random strings over digits, signs and look-alikes', () => {
    const alphabet = ['0', '1', '5', '9', '+', '-', ' ', '_', 'e', 'x', '٣', '.', '\n'];
    const prng = new Prng(64);
    for (let i = 0; i < 20_000; i++) {
      const length = prng.nextInt(22);
      let text = '';
      for (let j = 0; j < length; j++) text += prng.nextFloat() < 0.8 ? String(prng.nextInt(10)) : prng.pick(alphabet);
      expect(parseBoth(text), JSON.stringify(text)).toBe(reference(text));
    }
  });

  test('agrees with the reference on numbers near the i64 bounds', () => {
    for (const edge of [i64Min, i64Max]) {
      for (let delta = -3n; delta <= 3n; delta++) {
        const text = String(edge + delta);
        expect(parseBoth(text), text).toBe(reference(text));
      }
    }
  });
});

describe('wrapI64 wraps in two\u2019s complement', () => {
  test('max + 1 is min, min - 1 is max', () => {
    expect(wrapI64(i64Max + 1n)).toBe(i64Min);
    expect(wrapI64(i64Min - 1n)).toBe(i64Max);
    expect(wrapI64(i64Max + i64Max)).toBe(-2n);
    expect(wrapI64(42n)).toBe(42n);
  });
});

describe('sum commands', () => {
  test('round-trip through the msgpack framing for every integer width and text length', () => {
    const ids = [1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    const texts = ['', '5', '-9223372036854775808', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(300), 'w'.repeat(70_000), '٣ é'];
    for (const clientId of ids) {
      for (const text of texts) {
        const command = { clientId, sequence: ids[(clientId % 7) + 1] as number, text };
        expect(decodeSumCommand(encodeSumCommand(command))).toEqual(command);
      }
    }
  });

  test('decoding refuses anything but exactly one well-formed command', () => {
    const good = encodeSumCommand({ clientId: 3, sequence: 9, text: '12' });
    expect(decodeSumCommand(good)).not.toBeNull();
    expect(decodeSumCommand(new Uint8Array(0))).toBeNull();
    expect(decodeSumCommand(good.subarray(0, good.length - 1))).toBeNull(); // truncated
    const longer = new Uint8Array(good.length + 1);
    longer.set(good);
    expect(decodeSumCommand(longer)).toBeNull(); // trailing byte
    expect(decodeSumCommand(Uint8Array.of(0x93, 0, 1, 0xa0))).toBeNull(); // client 0
    expect(decodeSumCommand(Uint8Array.of(0x93, 1, 0, 0xa0))).toBeNull(); // sequence 0
    expect(decodeSumCommand(Uint8Array.of(0x92, 1, 1, 0xa0))).toBeNull(); // not three items
    expect(decodeSumCommand(Uint8Array.of(0x93, 1, 1, 0xc4, 0))).toBeNull(); // bin, not str
    expect(decodeSumCommand(Uint8Array.of(0x93, 1, 1, 0xa1, 0xff))).toBeNull(); // not UTF-8
    expect(decodeSumCommand(encoder.encode('12'))).toBeNull(); // raw text
  });

  test('encoding refuses ids and sequences that are not positive safe integers', () => {
    expect(() => encodeSumCommand({ clientId: 0, sequence: 1, text: '1' })).toThrow(/clientId/);
    expect(() => encodeSumCommand({ clientId: 1, sequence: 1.5, text: '1' })).toThrow(/sequence/);
    expect(() => encodeSumCommand({ clientId: 2 ** 53, sequence: 1, text: '1' })).toThrow(/clientId/);
  });
});

describe('I64SumMachine', () => {
  const command = (clientId: number, sequence: number, text: string): Uint8Array => encodeSumCommand({ clientId, sequence, text });

  test('adds valid numbers, ignores invalid ones, wraps on overflow', () => {
    const machine = new I64SumMachine();
    expect(machine.apply(command(1, 1, '9223372036854775807')).status).toBe('applied');
    expect(machine.apply(command(1, 2, '1')).status).toBe('applied');
    expect(machine.value).toBe(i64Min);
    expect(machine.apply(command(1, 3, ' 5')).status).toBe('invalid');
    expect(machine.apply(command(1, 4, '9223372036854775808')).status).toBe('invalid');
    expect(machine.value).toBe(i64Min);
    expect(machine.commandCount).toBe(4);
    expect(machine.apply(encoder.encode('5')).status).toBe('malformed');
    expect(machine.commandCount).toBe(4);
  });

  test('a retried command (same client and sequence) applies once', () => {
    const machine = new I64SumMachine();
    const once = command(7, 1, '10');
    expect(machine.apply(once).status).toBe('applied');
    expect(machine.apply(once).status).toBe('duplicate');
    expect(machine.apply(command(7, 2, '5')).status).toBe('applied');
    expect(machine.apply(once).status).toBe('duplicate'); // a late retry of an older command
    expect(machine.value).toBe(15n);
    expect(machine.lastSequence(7)).toBe(2);
  });

  test('the duplicate table stays within clientsMax, forgetting the least recently applied client', () => {
    const machine = new I64SumMachine({ clientsMax: 3 });
    machine.apply(command(1, 1, '1'));
    machine.apply(command(2, 1, '1'));
    machine.apply(command(3, 1, '1'));
    machine.apply(command(1, 2, '1')); // client 1 is now the most recent
    machine.apply(command(4, 1, '1')); // evicts client 2
    expect(machine.clientCount).toBe(3);
    expect(machine.lastSequence(2)).toBe(0);
    expect(machine.lastSequence(1)).toBe(2);
    expect(machine.lastSequence(3)).toBe(1);
  });

  test('restore(snapshot()) gives a machine that behaves identically, eviction order included', () => {
    const prng = new Prng(9);
    const original = new I64SumMachine({ clientsMax: 8 });
    const sequences = new Map<number, number>();
    for (let i = 0; i < 500; i++) {
      const clientId = 1 + prng.nextInt(12);
      const sequence = (sequences.get(clientId) ?? 0) + (prng.chance(0.2) ? 0 : 1);
      sequences.set(clientId, Math.max(1, sequence));
      original.apply(command(clientId, Math.max(1, sequence), String(prng.nextUint32() * 4096 - 2 ** 43)));
    }
    const copy = new I64SumMachine({ clientsMax: 8 });
    copy.restore(original.snapshot());
    expect(copy.value).toBe(original.value);
    expect(copy.commandCount).toBe(original.commandCount);
    for (let i = 0; i < 200; i++) {
      const clientId = 1 + prng.nextInt(14);
      const data = command(clientId, 1 + prng.nextInt(60), String(prng.nextInt(1000)));
      expect(copy.apply(data)).toEqual(original.apply(data));
    }
    expect(copy.snapshot()).toEqual(original.snapshot());
  });

  test('restore refuses malformed snapshots with an invalid-state error and keeps the old state', () => {
    const machine = new I64SumMachine({ clientsMax: 2 });
    machine.apply(command(1, 1, '3'));
    const good = machine.snapshot();
    const bad: Uint8Array[] = [new Uint8Array(0), good.subarray(0, good.length - 1), Uint8Array.of(...good, 0)];
    const other = new I64SumMachine({ clientsMax: 2 });
    other.apply(command(1, 1, '1'));
    other.apply(command(2, 1, '1'));
    other.apply(command(3, 1, '1'));
    const tooMany = new I64SumMachine({ clientsMax: 3 });
    tooMany.restore(new I64SumMachine({ clientsMax: 3 }).snapshot());
    for (const id of [1, 2, 3]) tooMany.apply(command(id, 1, '1'));
    bad.push(tooMany.snapshot()); // three clients into a machine bounded at two
    for (const data of bad) {
      const target = new I64SumMachine({ clientsMax: 2 });
      target.apply(command(9, 1, '4'));
      expect(() => target.restore(data)).toThrow(RaftError);
      expect(target.value).toBe(4n);
    }
  });
});

describe('command text is UTF-8 without TextEncoder (core is pure)', () => {
  test('agrees with TextEncoder and TextDecoder on random text, astral characters and lone surrogates', () => {
    const prng = new Prng(8);
    const pieces = ['a', '5', 'é', '٣', '€', '😀', '\ud800', '\udc00', '\u0000', '\uffff'];
    for (let i = 0; i < 2000; i++) {
      let text = '';
      for (let j = prng.nextInt(12); j > 0; j--) text += prng.pick(pieces);
      const data = encodeSumCommand({ clientId: 1, sequence: 1, text });
      const decoded = decodeSumCommand(data);
      const expectedBytes = encoder.encode(text);
      expect(data.subarray(data.length - expectedBytes.length)).toEqual(expectedBytes);
      expect(decoded?.text).toBe(new TextDecoder().decode(expectedBytes));
    }
  });

  test('refuses overlong forms, encoded surrogates and truncated sequences', () => {
    const framed = (...text: number[]): Uint8Array => Uint8Array.of(0x93, 1, 1, 0xa0 | text.length, ...text);
    expect(decodeSumCommand(framed(0xc0, 0xb5))).toBeNull(); // overlong '5'
    expect(decodeSumCommand(framed(0xed, 0xa0, 0x80))).toBeNull(); // U+D800
    expect(decodeSumCommand(framed(0xe2, 0x82))).toBeNull(); // truncated '€'
    expect(decodeSumCommand(framed(0xf4, 0x90, 0x80, 0x80))).toBeNull(); // past U+10FFFF
    expect(decodeSumCommand(framed(0xe2, 0x82, 0xac))?.text).toBe('€');
  });
});
