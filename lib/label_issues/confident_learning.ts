/**
 * The confident-learning baseline (Northcutt, Jiang and Chuang, "Confident
 * Learning: Estimating Uncertainty in Dataset Labels", JAIR 70, 2021),
 * written from the paper's definitions:
 *
 * 1. Per-class threshold `t_j`: the mean self-confidence `p(ỹ = j; x)` over
 *    the samples whose given label is `j` (the paper's Eq. 2).
 * 2. A sample `x` with given label `i` is counted as "confidently of class
 *    `j`" when `p(ỹ = j; x) >= t_j`; among several such classes, the one of
 *    highest probability wins. Samples without any such class are not
 *    counted.
 * 3. The confident joint `C[i][j]` counts the samples of given label `i`
 *    confidently of class `j` (Eq. 1).
 * 4. Label issues: the samples counted off the diagonal of `C` (`j != i`),
 *    the simplest of the paper's rules for finding them (its `C_{ỹ,y*}`).
 *
 * A class with no given labels has no threshold and is never a candidate.
 * The ranking that goes with the flags, as in the paper's experiments, is
 * by self-confidence: the lower `p(ỹ = given; x)`, the more likely an issue.
 *
 * The paper feeds out-of-sample probabilities from K-fold cross-validation;
 * here the probabilities are the run's own in-sample ones (the linear probe's
 * for CUFIT), which is the cost-free setting the curriculum score competes in.
 *
 * @module
 */

/** What {@linkcode confidentLearning} returns. */
export interface ConfidentLearningResult {
  /** `t_j` per class (NaN for a class without given labels). */
  thresholds: Float64Array;
  /** `C[i][j]`: given label `i`, confidently of class `j`. */
  confidentJoint: number[][];
  /** The confident class of each sample, -1 when none passes its threshold. */
  confidentClass: Int32Array;
  /** 1 where the sample lies off the joint's diagonal: a label issue. */
  issues: Uint8Array;
  /** `1 - p(given label)` per sample: the ranking score (higher = more suspect). */
  score: Float64Array;
}

/**
 * Confident learning on `[N, K]` row-major probabilities (`K` =
 * `options.classes`) and the given labels. Rows holding NaN (samples never read) are neither thresholds'
 * inputs nor issues.
 */
export function confidentLearning(
  probs: ArrayLike<number>,
  labels: ArrayLike<number>,
  options: { classes: number },
): ConfidentLearningResult {
  const { classes } = options;
  const n = labels.length;
  if (!Number.isInteger(classes) || classes < 2) {
    throw new RangeError(
      `Confident learning needs at least 2 classes, got ${classes}`,
    );
  }
  if (probs.length !== n * classes) {
    throw new RangeError(
      `Confident learning: ${probs.length} probabilities do not make ${n} rows of ${classes} classes`,
    );
  }
  const valid = (i: number) => Number.isFinite(probs[i * classes]);
  // 1. Thresholds: mean self-confidence per given class.
  const sum = new Float64Array(classes);
  const count = new Float64Array(classes);
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!(y >= 0 && y < classes && Number.isInteger(y))) {
      throw new RangeError(
        `Confident learning: label ${y} of sample ${i} is outside [0, ${classes})`,
      );
    }
    if (!valid(i)) continue;
    sum[y] += probs[i * classes + y];
    count[y]++;
  }
  const thresholds = sum.map((s, j) => (count[j] > 0 ? s / count[j] : NaN));
  // 2-4. Confident class, joint, off-diagonal.
  const confidentJoint = Array.from(
    { length: classes },
    () => new Array<number>(classes).fill(0),
  );
  const confidentClass = new Int32Array(n).fill(-1);
  const issues = new Uint8Array(n);
  const score = new Float64Array(n).fill(NaN);
  for (let i = 0; i < n; i++) {
    if (!valid(i)) continue;
    const y = labels[i];
    score[i] = 1 - probs[i * classes + y];
    let best = -1;
    for (let j = 0; j < classes; j++) {
      const p = probs[i * classes + j];
      if (
        !(p >= thresholds[j]) // false for NaN thresholds too
      ) continue;
      if (best < 0 || p > probs[i * classes + best]) best = j;
    }
    if (best < 0) continue;
    confidentClass[i] = best;
    confidentJoint[y][best]++;
    if (best !== y) issues[i] = 1;
  }
  return { thresholds, confidentJoint, confidentClass, issues, score };
}
