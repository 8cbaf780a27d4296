/**
 * Seeded pseudo-random number generator (xoshiro128**, seeded through splitmix32). The core has no
 * other source of randomness: one seed reproduces every randomized election timeout, which is what
 * makes simulated runs replayable.
 */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** Creates a generator from any 32-bit integer seed; equal seeds give equal sequences. */
  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      // splitmix32: spreads a small seed over the 128-bit state so seeds 1, 2, 3 diverge at once.
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniformly distributed float in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A uniformly distributed integer in [0, bound); bound must be a positive integer. */
  nextInt(bound: number): number {
    if (!(Number.isInteger(bound) && bound > 0)) throw new RangeError(`nextInt bound ${bound}`);
    return Math.floor(this.nextFloat() * bound);
  }

  /** A uniformly distributed integer in [low, high] inclusive. */
  nextRange(low: number, high: number): number {
    return low + this.nextInt(high - low + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.nextFloat() < p;
  }

  /** One element chosen uniformly; the array must not be empty. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty array');
    return items[this.nextInt(items.length)] as T;
  }

  /** A new generator derived from this one, for an independent stream. */
  fork(): Prng {
    return new Prng(this.nextUint32());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
