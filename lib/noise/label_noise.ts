/**
 * Synthetic label noise for the training set, bit-exact with the NumPy code
 * that made it.
 *
 * - `symmetric`: the reference's "flip to another class" (CUFIT's
 *   `utils/`): seed once, then per sample `rand() > rate` keeps the label,
 *   otherwise `choice(other classes ascending, 1)` replaces it.
 * - `pairflip`: Co-teaching's `noisify_pairflip`: transition matrix with
 *   `1 - rate` on the diagonal and `rate` on y -> (y + 1) mod K, applied by
 *   `multiclass_noisify`.
 * - `matrix`: Co-teaching's `multiclass_noisify` with any row-stochastic
 *   K x K matrix: a fresh `RandomState(seed)`, then per sample the index of
 *   `multinomial(1, T[y])`.
 *
 * @module
 */
import { RandomState } from "./random_state.ts";

/** The noise models {@linkcode makeNoisyLabels} knows. */
export type NoiseMode = "symmetric" | "pairflip" | "matrix";

/** The noise modes, in the order error messages list them. */
export const noiseModes: readonly NoiseMode[] = [
  "symmetric",
  "pairflip",
  "matrix",
];

/** Clean and noisy labels of one training set, and how they were made. */
export interface NoisyLabels {
  /** The labels as given (a copy). */
  clean: Int32Array;
  /** The labels after noise. */
  noisy: Int32Array;
  /** 1 where `noisy` differs from `clean`. */
  isNoisy: Uint8Array;
  /**
   * The requested noise rate; for `matrix`, the expected flip probability
   * `mean over samples of 1 - T[y][y]`.
   */
  rate: number;
  mode: NoiseMode;
  seed: number;
  /** Fraction of labels that changed (0 for an empty set). */
  actualRate: number;
}

/** Options shared by every noise function. */
export interface NoiseOptions {
  /**
   * NumPy seed, an integer in [0, 2**32 - 1].
   * @default 0
   */
  seed?: number;
}

/** Options of {@linkcode makeNoisyLabels}. */
export interface MakeNoisyLabelsOptions extends NoiseOptions {
  /**
   * Noise model.
   * @default "symmetric"
   */
  mode?: NoiseMode;
  /**
   * Noise rate in [0, 1] for `symmetric` and `pairflip` (the reference's
   * `-n` default); ignored by `matrix`.
   * @default 0.2
   */
  rate?: number;
  /** Row-stochastic K x K transition matrix; required by `matrix`. */
  matrix?: readonly (readonly number[])[];
}

/** Tolerance on each transition-matrix row sum. */
const ROW_SUM_TOLERANCE = 1e-6;

function checkNumClasses(numClasses: number): void {
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new RangeError(
      `Number of classes must be an integer >= 2, got ${numClasses}`,
    );
  }
}

function checkRate(rate: number): void {
  if (typeof rate !== "number" || !(rate >= 0 && rate <= 1)) {
    throw new RangeError(`Noise rate must be a number in [0, 1], got ${rate}`);
  }
}

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(
      `Noise seed must be an integer in [0, 4294967295], got ${seed}`,
    );
  }
}

/** A checked copy of the clean labels. */
function checkClean(clean: ArrayLike<number>, numClasses: number): Int32Array {
  const out = new Int32Array(clean.length);
  for (let i = 0; i < clean.length; i++) {
    const y = clean[i];
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) {
      throw new RangeError(
        `Clean label ${y} at index ${i} is outside [0, ${numClasses})`,
      );
    }
    out[i] = y;
  }
  return out;
}

/** Checks that `matrix` is K x K, entries in [0, 1], rows summing to 1. */
function checkMatrix(matrix: readonly (readonly number[])[]): void {
  if (!Array.isArray(matrix) || matrix.length < 2) {
    throw new RangeError(
      `Transition matrix must be a K x K array with K >= 2, got ${
        Array.isArray(matrix) ? `${matrix.length} rows` : typeof matrix
      }`,
    );
  }
  const k = matrix.length;
  for (let i = 0; i < k; i++) {
    const row = matrix[i];
    if (!Array.isArray(row) || row.length !== k) {
      throw new RangeError(
        `Transition matrix row ${i} must have ${k} entries, got ${
          Array.isArray(row) ? row.length : typeof row
        }`,
      );
    }
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const p = row[j];
      if (typeof p !== "number" || !(p >= 0 && p <= 1)) {
        throw new RangeError(
          `Transition matrix entry [${i}][${j}] must be a number in [0, 1], got ${p}`,
        );
      }
      sum += p;
    }
    if (Math.abs(sum - 1) > ROW_SUM_TOLERANCE) {
      throw new RangeError(
        `Transition matrix row ${i} sums to ${sum}, expected 1 (within 1e-6)`,
      );
    }
  }
}

function finish(
  clean: Int32Array,
  noisy: Int32Array,
  mode: NoiseMode,
  rate: number,
  seed: number,
): NoisyLabels {
  const isNoisy = new Uint8Array(clean.length);
  let flipped = 0;
  for (let i = 0; i < clean.length; i++) {
    if (noisy[i] !== clean[i]) {
      isNoisy[i] = 1;
      flipped++;
    }
  }
  const actualRate = clean.length === 0 ? 0 : flipped / clean.length;
  return { clean, noisy, isNoisy, rate, mode, seed, actualRate };
}

/**
 * The reference's symmetric noise: `np.random.seed(seed)` once, then for
 * each sample in order, `if rand() > rate` keep it, else replace it by
 * `choice(other_classes, 1)[0]` with the K - 1 other classes ascending
 * (two classes: the choice consumes no draw).
 */
export function symmetricNoise(
  clean: Int32Array,
  numClasses: number,
  rate: number,
  options: NoiseOptions = {},
): NoisyLabels {
  const { seed = 0 } = options;
  checkNumClasses(numClasses);
  checkRate(rate);
  checkSeed(seed);
  const labels = checkClean(clean, numClasses);
  const rs = new RandomState(seed);
  const noisy = labels.slice();
  for (let i = 0; i < noisy.length; i++) {
    if (rs.rand() > rate) continue;
    const y = labels[i];
    const k = rs.choice(numClasses - 1);
    // Index k of range(K) without y, ascending.
    noisy[i] = k < y ? k : k + 1;
  }
  return finish(labels, noisy, "symmetric", rate, seed);
}

/** Co-teaching's pair-flip transition matrix: y -> (y + 1) mod K. */
function pairFlipMatrix(numClasses: number, rate: number): number[][] {
  const t: number[][] = [];
  for (let i = 0; i < numClasses; i++) {
    const row = new Array<number>(numClasses).fill(0);
    row[i] = 1 - rate;
    row[(i + 1) % numClasses] = rate;
    t.push(row);
  }
  return t;
}

/** Co-teaching's `multiclass_noisify`, on checked labels and matrix. */
function noisify(
  labels: Int32Array,
  transition: readonly (readonly number[])[],
  seed: number,
): Int32Array {
  const rs = new RandomState(seed);
  const noisy = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    noisy[i] = rs.multinomialIndex(transition[labels[i]]);
  }
  return noisy;
}

/**
 * Co-teaching's pair flip (`noisify_pairflip`): with probability `rate` a
 * label y becomes (y + 1) mod K. RNG use, as there: a fresh
 * `RandomState(seed)`, then per sample one `multinomial(1, T[y])`, which
 * walks the classes before the last in order, skipping zero entries, with
 * one binomial(1, p) draw each (one `rand()`, redrawn only in the rare
 * inversion restart) until one succeeds: class y first (class 0 when
 * y = K - 1), then y + 1 unless it is the last class, which takes the
 * remainder without a draw. A rate of 0 draws nothing (as Co-teaching skips
 * noisifying) and returns the clean labels.
 */
export function pairFlipNoise(
  clean: Int32Array,
  numClasses: number,
  rate: number,
  options: NoiseOptions = {},
): NoisyLabels {
  const { seed = 0 } = options;
  checkNumClasses(numClasses);
  checkRate(rate);
  checkSeed(seed);
  const labels = checkClean(clean, numClasses);
  const noisy = rate > 0
    ? noisify(labels, pairFlipMatrix(numClasses, rate), seed)
    : labels.slice();
  return finish(labels, noisy, "pairflip", rate, seed);
}

/**
 * Noise from a row-stochastic K x K transition matrix (row = clean label,
 * column = noisy label), as Co-teaching's `multiclass_noisify`: a fresh
 * `RandomState(seed)`, then per sample the index drawn by
 * `multinomial(1, transition[y])`. Rows must sum to 1 within 1e-6.
 */
export function matrixNoise(
  clean: Int32Array,
  transition: readonly (readonly number[])[],
  options: NoiseOptions = {},
): NoisyLabels {
  const { seed = 0 } = options;
  checkMatrix(transition);
  checkSeed(seed);
  const labels = checkClean(clean, transition.length);
  const noisy = noisify(labels, transition, seed);
  let expected = 0;
  for (const y of labels) expected += 1 - transition[y][y];
  const rate = labels.length === 0 ? 0 : expected / labels.length;
  return finish(labels, noisy, "matrix", rate, seed);
}

/** Makes noisy labels with the model named by `options.mode`. */
export function makeNoisyLabels(
  clean: Int32Array,
  numClasses: number,
  options: MakeNoisyLabelsOptions = {},
): NoisyLabels {
  const { mode = "symmetric", rate = 0.2, seed = 0, matrix } = options;
  switch (mode) {
    case "symmetric":
      return symmetricNoise(clean, numClasses, rate, { seed });
    case "pairflip":
      return pairFlipNoise(clean, numClasses, rate, { seed });
    case "matrix": {
      if (matrix === undefined) {
        throw new TypeError(`Noise mode "matrix" needs a transition matrix`);
      }
      checkNumClasses(numClasses);
      if (Array.isArray(matrix) && matrix.length !== numClasses) {
        throw new RangeError(
          `Transition matrix has ${matrix.length} rows, expected ${numClasses} (the number of classes)`,
        );
      }
      return matrixNoise(clean, matrix, { seed });
    }
    default:
      throw new RangeError(
        `Unknown noise mode "${mode}": expected one of ${
          noiseModes.join(", ")
        }`,
      );
  }
}
