/**
 * A port of NumPy's legacy `numpy.random.RandomState` (MT19937), the
 * generator behind `np.random.seed`, `rand`, `randint`, `choice`,
 * `shuffle`, `permutation` and `multinomial` in the reference code.
 *
 * What is bit-exact with NumPy (checked against NumPy 2.4's legacy
 * generator, which keeps the 1.x streams):
 * - seeding with one integer in [0, 2**32 - 1] (`init_genrand`);
 * - {@linkcode RandomState.randomUint32}, {@linkcode RandomState.rand};
 * - {@linkcode RandomState.randint} and {@linkcode RandomState.choice}
 *   (masked rejection; a range of one value consumes no draw);
 * - {@linkcode RandomState.shuffle} and {@linkcode RandomState.permutation}
 *   (Fisher-Yates from the end, `random_interval`);
 * - {@linkcode RandomState.multinomialIndex} (`multinomial(1, pvals)`),
 *   assuming `Math.exp(Math.log(q))` rounds like the C library's, which can
 *   only matter when a draw lands within an ulp of a threshold.
 *
 * The reference's per-epoch shuffling is torch's `RandomSampler`, not NumPy:
 * `permutation` gives NumPy's order, not torch's.
 *
 * @module
 */

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const TWO_32 = 4294967296;
const MAX_SEED = 0xffffffff;

/** Smallest all-ones mask >= `max`, for `max` in [0, 2**32). */
function mask32(max: number): number {
  let m = max >>> 0;
  m |= m >>> 1;
  m |= m >>> 2;
  m |= m >>> 4;
  m |= m >>> 8;
  m |= m >>> 16;
  return m >>> 0;
}

/** NumPy's legacy `RandomState`: MT19937 with NumPy's draw algorithms. */
export class RandomState {
  #key = new Uint32Array(N);
  #pos = N;

  /**
   * @param seed An integer in [0, 2**32 - 1], as `np.random.seed(seed)`.
   * @default 0
   */
  constructor(seed = 0) {
    this.seed(seed);
  }

  /** Re-seed in place, as `np.random.seed(seed)` with an integer seed. */
  seed(seed: number): void {
    if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
      throw new RangeError(
        `Seed must be an integer in [0, ${MAX_SEED}], got ${seed}`,
      );
    }
    const key = this.#key;
    key[0] = seed;
    for (let i = 1; i < N; i++) {
      const prev = key[i - 1] ^ (key[i - 1] >>> 30);
      key[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.#pos = N;
  }

  /** Refill the 624-word state (MT19937's "generate" step). */
  #twist(): void {
    const key = this.#key;
    let i = 0;
    let y: number;
    for (; i < N - M; i++) {
      y = (key[i] & UPPER_MASK) | (key[i + 1] & LOWER_MASK);
      key[i] = key[i + M] ^ (y >>> 1) ^ ((y & 1) ? MATRIX_A : 0);
    }
    for (; i < N - 1; i++) {
      y = (key[i] & UPPER_MASK) | (key[i + 1] & LOWER_MASK);
      key[i] = key[i + (M - N)] ^ (y >>> 1) ^ ((y & 1) ? MATRIX_A : 0);
    }
    y = (key[N - 1] & UPPER_MASK) | (key[0] & LOWER_MASK);
    key[N - 1] = key[M - 1] ^ (y >>> 1) ^ ((y & 1) ? MATRIX_A : 0);
    this.#pos = 0;
  }

  /** The next raw 32-bit output, as an unsigned integer. */
  randomUint32(): number {
    if (this.#pos === N) this.#twist();
    let y = this.#key[this.#pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) with 53 random bits, as `np.random.rand()`. */
  rand(): number {
    const a = this.randomUint32() >>> 5;
    const b = this.randomUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /**
   * An integer in [low, high), as legacy `np.random.randint(low, high)`
   * (int64 path): masked rejection sampling on 32-bit outputs when the range
   * fits 32 bits, on 64-bit outputs (high word first) otherwise. With one
   * argument the range is [0, low), as NumPy's.
   */
  randint(low: number, high?: number): number {
    if (high === undefined) [low, high] = [0, low];
    if (!Number.isSafeInteger(low) || !Number.isInteger(high)) {
      throw new RangeError(
        `randint() bounds must be integers, got low ${low}, high ${high}`,
      );
    }
    if (low >= high) {
      throw new RangeError(
        `randint() needs low < high, got low ${low}, high ${high}`,
      );
    }
    const rng = high - low - 1;
    if (!Number.isSafeInteger(rng)) {
      throw new RangeError(
        `randint() range must be below 2**53, got low ${low}, high ${high}`,
      );
    }
    return low + this.#bounded(rng);
  }

  /**
   * A value in [0, rng] as NumPy's `random_bounded_uint64_fill` with
   * `use_masked`: no draw when rng is 0, masked rejection otherwise.
   */
  #bounded(rng: number): number {
    if (rng === 0) return 0;
    if (rng < TWO_32) {
      const mask = mask32(rng);
      let v: number;
      do v = (this.randomUint32() & mask) >>> 0; while (v > rng);
      return v;
    }
    // Above 32 bits the mask's low word is all ones, so only the high word
    // needs masking; NumPy draws the high word first.
    const maskHi = mask32(Math.floor(rng / TWO_32));
    let v: number;
    do {
      const hi = (this.randomUint32() & maskHi) >>> 0;
      v = hi * TWO_32 + this.randomUint32();
    } while (v > rng);
    return v;
  }

  /**
   * An index in [0, n), as the index behind `np.random.choice(arr, 1)` for
   * `len(arr) == n` (uniform, with replacement): `randint(0, n)`. With n = 1
   * no draw is consumed.
   */
  choice(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new RangeError(
        `choice() needs a positive integer population size, got ${n}`,
      );
    }
    return this.#bounded(n - 1);
  }

  /**
   * Shuffle in place as legacy `np.random.shuffle` on a 1-D array: for i
   * from n-1 down to 1, swap i with j drawn by `random_interval(i)`.
   */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.#bounded(i);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** `np.random.permutation(n)`: 0..n-1 shuffled by {@linkcode shuffle}. */
  permutation(n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) {
      throw new RangeError(
        `permutation() needs a non-negative integer size, got ${n}`,
      );
    }
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out);
  }

  /**
   * The index of the one nonzero count of `np.random.multinomial(1, pvals)`:
   * for each category but the last, a binomial(1, p_j / remaining) draw by
   * NumPy's inversion algorithm (none when p_j is 0), stopping at the first
   * success; the last category takes what is left. `pvals` is not
   * validated here: callers check that it is a probability vector.
   */
  multinomialIndex(pvals: ArrayLike<number>): number {
    const d = pvals.length;
    let remaining = 1.0;
    for (let j = 0; j < d - 1; j++) {
      if (this.#binomial1(pvals[j] / remaining) === 1) return j;
      remaining -= pvals[j];
    }
    return d - 1;
  }

  /** NumPy's `random_binomial(p, n = 1)`; n * p <= 30 always, so inversion. */
  #binomial1(p: number): number {
    if (p === 0) return 0;
    return p <= 0.5 ? this.#inversion1(p) : 1 - this.#inversion1(1.0 - p);
  }

  /** NumPy's `random_binomial_inversion` with n = 1, step for step. */
  #inversion1(p: number): number {
    const n = 1;
    const q = 1.0 - p;
    const qn = Math.exp(n * Math.log(q));
    const np = n * p;
    const bound = Math.trunc(Math.min(n, np + 10.0 * Math.sqrt(np * q + 1)));
    let x = 0;
    let px = qn;
    let u = this.rand();
    while (u > px) {
      x++;
      if (x > bound) {
        x = 0;
        px = qn;
        u = this.rand();
      } else {
        u -= px;
        px = ((n - x + 1) * p * px) / (x * q);
      }
    }
    return x;
  }
}
