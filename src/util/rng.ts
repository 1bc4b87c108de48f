// seeded pseudo-random numbers: xoshiro128** (Blackman & Vigna), 128 bits of state,
// expanded from the seed by a weyl sequence passed through the murmur3 finaliser.
// deterministic across platforms: everything is 32-bit integer math.

const GOLDEN = 0x9e3779b9; // weyl increment, 2^32 / phi

// murmur3's 32-bit finaliser: every input bit flips about half the output bits
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export class Rng {
  readonly #s = new Uint32Array(4);

  // any finite number works as a seed; integers beyond 32 bits keep their high part
  constructor(seed: number) {
    const low = seed >>> 0;
    const high = Math.floor(Math.abs(seed) / 2 ** 32) >>> 0;
    let weyl = mix32(low ^ mix32(high ^ GOLDEN));
    for (let i = 0; i < 4; i++) {
      weyl = (weyl + GOLDEN) >>> 0;
      this.#s[i] = mix32(weyl);
    }
    // the all-zero state is a fixed point; it cannot come out of mix32 four times, but be sure
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1;
  }

  // one raw 32-bit output
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  // uniform in [0, 1) with 53 random bits, so every double in the grid 2^-53 is reachable
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  // standard normal by box-muller (one of the pair is discarded: simple over fast)
  normal(): number {
    const u = 1 - this.next(); // (0, 1], keeps log finite
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/**
 * The draw at `index` of the stream keyed by `seed`: uniform in [0, 1), a function of the two alone (no state),
 * so that what is drawn at one index does not depend on how many draws came before it. Decoding draws the
 * token at each position of a sequence from here, so that a sampled text does not depend on how its tokens
 * were speculated.
 */
export function uniformAt(seed: number, index: number): number {
  const key = mix32((seed >>> 0) ^ mix32((Math.floor(Math.abs(seed) / 2 ** 32) >>> 0) ^ GOLDEN)); // the seed, as Rng takes it
  const at = mix32((index >>> 0) ^ mix32((Math.floor(index / 2 ** 32) >>> 0) ^ 0x632be5ab));
  const hi = mix32((key ^ at) >>> 0) >>> 5; // 27 bits
  const lo = mix32((mix32((key + GOLDEN) >>> 0) + at) >>> 0) >>> 6; // 26 bits
  return (hi * 67108864 + lo) / 9007199254740992;
}

/** A sampling seed: the one given, or a fresh random one for -1 (the CLI's "no seed"). */
export function resolveSeed(seed: number): number {
  return seed === -1 ? Math.floor(Math.random() * 2 ** 31) : seed;
}
