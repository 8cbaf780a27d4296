/**
 * Proves the slicing-by-8 CRC32C: it gives the published check value and the iSCSI test vectors of
 * RFC 3720 appendix B.4, agrees with a bit-at-a-time reference on every length and alignment, and
 * chains (the CRC of a record can be computed over separate pieces without copying them together).
 */
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cUpdate } from '../src/index.js';

/** Bit-at-a-time CRC32C straight from the definition (reflected polynomial 0x82F63B78). */
function referenceCrc32c(bytes: Uint8Array): number {
  let crc = ~0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

describe('crc32c', () => {
  it('gives the check value 0xE3069283 for "123456789"', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('matches the iSCSI test vectors (RFC 3720 B.4)', () => {
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
    const readCommand = Uint8Array.from([
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
      0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]);
    expect(crc32c(readCommand)).toBe(0xd9963a56);
  });

  it('is 0 for no bytes', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('agrees with the bitwise reference on every length from 0 to 300 and at unaligned offsets', () => {
    const buffer = Uint8Array.from({ length: 400 }, (_, i) => (i * 167 + 13) & 0xff);
    for (let length = 0; length <= 300; length++) {
      for (const start of [0, 1, 3, 7]) {
        expect(crc32c(buffer, start, start + length)).toBe(referenceCrc32c(buffer.subarray(start, start + length)));
      }
    }
  });

  it('chains: the CRC over pieces equals the CRC over their concatenation', () => {
    const whole = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff);
    for (const cut of [0, 1, 8, 9, 500, 999, 1000]) {
      expect(crc32cUpdate(crc32c(whole, 0, cut), whole, cut)).toBe(crc32c(whole));
    }
  });

  it('detects a single flipped bit', () => {
    const bytes = Uint8Array.from({ length: 64 }, (_, i) => i);
    const before = crc32c(bytes);
    bytes[40] = (bytes[40] as number) ^ 0x10;
    expect(crc32c(bytes)).not.toBe(before);
  });
});
