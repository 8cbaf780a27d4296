/**
 * 53-bit non-cryptographic hashes (cyrb53: two 32-bit multiply-xorshift lanes), chained through a
 * seed. The checkers compare entries by these hashes instead of keeping every byte of every log:
 * two different entries collide with probability about 2^-53 per comparison.
 */

/** Largest value the hashes produce (they fit a double exactly). */
export const hashMax = 2 ** 53 - 1;

function finish(h1: number, h2: number): number {
  let a = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  a ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  let b = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  b ^= Math.imul(a ^ (a >>> 13), 3266489909);
  return 4294967296 * (2097151 & b) + (a >>> 0);
}

/** Hash of `bytes[offset, end)` continuing from `seed` (0 or a previous hash). */
export function hashBytes(bytes: Uint8Array, offset: number, end: number, seed: number): number {
  let h1 = 0xdeadbeef ^ (seed >>> 0);
  let h2 = 0x41c6ce57 ^ Math.floor(seed / 4294967296);
  for (let i = offset; i < end; i++) {
    const byte = bytes[i] as number;
    h1 = Math.imul(h1 ^ byte, 2654435761);
    h2 = Math.imul(h2 ^ byte, 1597334677);
  }
  return finish(h1, h2);
}

/** Hash of a string's UTF-16 code units continuing from `seed` (traces). */
export function hashString(text: string, seed: number): number {
  let h1 = 0xdeadbeef ^ (seed >>> 0);
  let h2 = 0x41c6ce57 ^ Math.floor(seed / 4294967296);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ code, 2654435761);
    h2 = Math.imul(h2 ^ code, 1597334677);
  }
  return finish(h1, h2);
}

/** Hash of one number continuing from `seed`. */
export function hashNumber(value: number, seed: number): number {
  let h1 = 0xdeadbeef ^ (seed >>> 0);
  let h2 = 0x41c6ce57 ^ Math.floor(seed / 4294967296);
  const low = value >>> 0;
  const high = Math.floor(value / 4294967296) >>> 0;
  h1 = Math.imul(h1 ^ low, 2654435761);
  h2 = Math.imul(h2 ^ low, 1597334677);
  h1 = Math.imul(h1 ^ high, 2654435761);
  h2 = Math.imul(h2 ^ high, 1597334677);
  return finish(h1, h2);
}
