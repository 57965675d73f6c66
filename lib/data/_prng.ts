/**
 * Small seeded random number generators for shuffling, augmentation and
 * synthetic data. Not the reference's RNG (torch's cannot be reproduced
 * cheaply, and these streams have no counterpart there); what matters is that
 * a stream depends only on its keys.
 *
 * A stream is `sfc32` (Chris Doty-Humphrey's Small Fast Counting generator,
 * 128-bit state, passes PractRand), seeded by hashing its integer keys with
 * MurmurHash3's 32-bit finaliser, then warmed up by 12 outputs.
 *
 * @module
 */

/** MurmurHash3's fmix32: a bijective 32-bit mixer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A 32-bit hash of a list of integers (each taken modulo 2^32). */
export function hashKeys(keys: readonly number[]): number {
  let h = 0x9e3779b9;
  for (const k of keys) {
    // Two words per key so that keys up to 2^53 are not truncated.
    const lo = k >>> 0;
    const hi = Math.floor(k / 4294967296) >>> 0;
    h = fmix32((h ^ lo) + 0x6a09e667);
    h = fmix32((h ^ hi) + 0xbb67ae85);
  }
  return h;
}

/** A uniform [0, 1) generator (53-bit floats) keyed by integers. */
export function seededRandom(...keys: number[]): () => number {
  let a = hashKeys([...keys, 1]);
  let b = hashKeys([...keys, 2]);
  let c = hashKeys([...keys, 3]);
  let d = 1;
  const next32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) next32();
  return () =>
    ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
}

/** `0, 1, ..., n - 1` shuffled by Fisher-Yates, drawing from `rng`. */
export function permutation(n: number, rng: () => number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}
