/**
 * The label-issue score: how strongly a finished run rejects a training
 * sample's given label, from what training already computed.
 *
 * ## The score
 *
 * For sample `i` with given label `y`:
 *
 *     rejection(i) = 1 - Σ_e w_e·s_e(i) / Σ_e w_e      (recorded modules averaged)
 *     doubt(i)     = 1 - mean over final modules of p(y | x_i)
 *     score(i)     = (rejection(i) + doubt(i)) / 2        in [0, 1]
 *
 * `s_e(i)` is 1 when a recording module (LPM and IAM for CUFIT, the one module
 * of linear probing or Rein) agreed with `y` when it trained on the sample in
 * epoch `e` (lib/label_issues/history.ts); only epochs in which the sample
 * was seen count. The weights grow with the epoch, `w_e = e + 1`: early
 * epochs, when the modules are still near their initialization, say little,
 * and the last epochs, when the learning rate has decayed and the selection
 * has settled, say the most. `p(y | x_i)` is the final modules' probability of
 * the given label on the un-augmented image (LPM, IAM and LAM for CUFIT;
 * lib/label_issues/train_probabilities.ts).
 *
 * Why both halves. The history is what CUFIT is built on: a label LPM and IAM
 * keep refusing over the epochs is one the curriculum never trusted, and IAM
 * and LAM never trained on it, so their verdict on it is close to an
 * out-of-sample one. But agreement is a hard 0/1 per epoch; two samples
 * rejected every epoch tie, and a noisy sample that a module has started to
 * memorize late in training is selected in those late epochs. The final
 * probabilities break the ties and measure how far from the given label the
 * final modules are. Averaging the two makes 1/2 a natural cut: a sample
 * scores above 1/2 when, on balance, the run rejects its label.
 *
 * The variants (`selection`, `late_selection`, `final_probability` and the
 * default `curriculum`) are compared on a recorded demo run in
 * tests/label_issues_test.ts.
 *
 * ## How many to flag
 *
 * By default the samples scoring above 1/2, i.e. the run's own estimate of
 * the noisy set; the estimated noise rate is their share of the training
 * set. `--top K` only decides how many are shown and precision at K.
 *
 * ## Suggested label
 *
 * The argmax of the final modules' mean probability.
 *
 * @module
 */
import type { ModuleName } from "../train/learner.ts";
import type { SelectionHistory } from "./history.ts";
import type { TrainProbabilities } from "./train_probabilities.ts";

/** The score variants; `curriculum` is the default (see the module doc). */
export type ScoreVariant =
  | "curriculum"
  | "selection"
  | "late_selection"
  | "final_probability";

/** The variants, in the order reports list them. */
export const SCORE_VARIANTS: readonly ScoreVariant[] = [
  "curriculum",
  "selection",
  "late_selection",
  "final_probability",
];

/** One training sample's line of the ranking. */
export interface LabelIssue {
  /** Dataset index. */
  index: number;
  /** Given (noisy) label. */
  given: number;
  /** Suggested label: argmax of the final modules' mean probability (-1 when unknown). */
  suggested: number;
  /** Mean final probability of the given label (NaN when unknown). */
  givenProbability: number;
  /** The score (higher = label more likely wrong); NaN for a sample never seen. */
  score: number;
  /** Fraction of the epochs it was seen in that each recording module selected it. */
  selectedFraction: Partial<Record<ModuleName, number>>;
  /** Whether it is in the flagged set. */
  flagged: boolean;
}

/** What {@linkcode rankLabelIssues} returns. */
export interface LabelIssueRanking {
  /** Every training sample, highest score first (ties: lower given-label probability, then index). */
  issues: LabelIssue[];
  /** Samples flagged (score above 1/2). */
  flagged: number;
  /** `flagged / samples`: the run's own estimate of the noise rate. */
  estimatedNoiseRate: number;
  /** The recording modules and the final modules used. */
  modules: { history: ModuleName[]; final: ModuleName[] };
  variant: ScoreVariant;
}

/** Options of {@linkcode rankLabelIssues}. */
export interface RankOptions {
  /** Score variant. @default "curriculum" */
  variant?: ScoreVariant;
  /** Final modules whose probabilities count. @default every module in the probabilities */
  finalModules?: ModuleName[];
}

/** Per-sample selection rate of one module: uniform or late-weighted (`w_e = e + 1`). NaN if never seen. */
export function selectionRate(
  history: SelectionHistory,
  module: ModuleName,
  weighting: "uniform" | "late",
): Float64Array {
  const num = new Float64Array(history.samples);
  const den = new Float64Array(history.samples);
  for (let e = 0; e < history.epochs; e++) {
    const w = weighting === "late" ? e + 1 : 1;
    for (let i = 0; i < history.samples; i++) {
      if (!history.seen(e, i)) continue;
      den[i] += w;
      if (history.selected(module, e, i)) num[i] += w;
    }
  }
  return num.map((v, i) => (den[i] > 0 ? v / den[i] : NaN));
}

/**
 * Ranks every training sample by the score (see the module doc) from a run's
 * selection history and final training-set probabilities.
 */
export function rankLabelIssues(
  history: SelectionHistory,
  probabilities: TrainProbabilities,
  options: RankOptions = {},
): LabelIssueRanking {
  const variant = options.variant ?? "curriculum";
  if (!SCORE_VARIANTS.includes(variant)) {
    throw new RangeError(
      `Unknown score variant "${variant}", expected ${
        SCORE_VARIANTS.join(", ")
      }`,
    );
  }
  const n = history.samples;
  const k = probabilities.classes;
  if (probabilities.samples !== n) {
    throw new RangeError(
      `The selection history covers ${n} samples, the probabilities ${probabilities.samples}`,
    );
  }
  const final = options.finalModules ??
    (Object.keys(probabilities.probs) as ModuleName[]);
  for (const m of final) {
    if (!probabilities.probs[m]) {
      throw new RangeError(
        `No final probabilities for module "${m}" (have ${
          Object.keys(probabilities.probs).join(", ")
        })`,
      );
    }
  }
  const labels = probabilities.labels;
  const uniform = new Map(
    history.modules.map((m) => [m, selectionRate(history, m, "uniform")]),
  );
  const late = variant === "selection" ? uniform : new Map(
    history.modules.map((m) => [m, selectionRate(history, m, "late")]),
  );
  const mean = new Float64Array(k);
  const issues: LabelIssue[] = [];
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    mean.fill(0);
    for (const m of final) {
      const p = probabilities.probs[m]!;
      for (let c = 0; c < k; c++) mean[c] += p[i * k + c] / final.length;
    }
    let suggested = -1;
    for (let c = 0; c < k; c++) {
      if (
        Number.isFinite(mean[c]) && (suggested < 0 || mean[c] > mean[suggested])
      ) {
        suggested = c;
      }
    }
    const givenProbability = mean[y];
    let rate = 0;
    for (const m of history.modules) rate += late.get(m)![i];
    rate /= history.modules.length;
    const rejection = 1 - rate;
    const doubt = 1 - givenProbability;
    // A sample never seen in training (or never read at the end) keeps the half it has.
    const score = variant === "curriculum"
      ? (Number.isNaN(rejection)
        ? doubt
        : Number.isNaN(doubt)
        ? rejection
        : (rejection + doubt) / 2)
      : variant === "final_probability"
      ? doubt
      : rejection;
    issues.push({
      index: i,
      given: y,
      suggested,
      givenProbability,
      score,
      selectedFraction: Object.fromEntries(
        history.modules.map((m) => [m, uniform.get(m)![i]]),
      ),
      flagged: score > 0.5,
    });
  }
  issues.sort((a, b) =>
    nanLast(a.score, b.score, -1) ||
    nanLast(a.givenProbability, b.givenProbability, 1) || a.index - b.index
  );
  const flagged = issues.filter((x) => x.flagged).length;
  return {
    issues,
    flagged,
    estimatedNoiseRate: n ? flagged / n : 0,
    modules: { history: [...history.modules], final },
    variant,
  };
}

/** Comparison in `direction` (1 ascending, -1 descending) with NaN last either way. */
function nanLast(a: number, b: number, direction: 1 | -1): number {
  const na = Number.isNaN(a);
  const nb = Number.isNaN(b);
  if (na || nb) return na === nb ? 0 : na ? 1 : -1;
  return direction * (a - b);
}

/** Precision, recall and F1 of a flagged set, and precision at K of a ranking, against the true noise mask. */
export interface FlagStats {
  flagged: number;
  /** Noisy samples among the flagged ones / flagged (null when none flagged). */
  precision: number | null;
  /** Noisy samples found / noisy samples (null when there are none). */
  recall: number | null;
  f1: number | null;
  /** The K of precision at K. */
  k: number;
  /** Noisy samples among the top K / K (null when K is 0). */
  precision_at_k: number | null;
  /** Mean precision at each noisy sample's rank (null when there are none). */
  average_precision: number | null;
}

/**
 * Scores a flagged set and a ranking (dataset indices, most suspect first)
 * against the noise mask (`isNoisy[i]` is 1 for a flipped label).
 */
export function flagStats(
  flagged: ArrayLike<number>,
  ranking: ArrayLike<number>,
  isNoisy: ArrayLike<number>,
  k: number,
): FlagStats {
  let tp = 0;
  let count = 0;
  for (let i = 0; i < flagged.length; i++) {
    if (flagged[i]) {
      count++;
      if (isNoisy[i]) tp++;
    }
  }
  let noisy = 0;
  for (let i = 0; i < isNoisy.length; i++) if (isNoisy[i]) noisy++;
  const precision = count ? tp / count : null;
  const recall = noisy ? tp / noisy : null;
  const f1 = precision !== null && recall !== null && precision + recall > 0
    ? (2 * precision * recall) / (precision + recall)
    : precision === null || recall === null
    ? null
    : 0;
  const kk = Math.min(k, ranking.length);
  let atK = 0;
  let hits = 0;
  let apSum = 0;
  for (let r = 0; r < ranking.length; r++) {
    if (isNoisy[ranking[r]]) {
      hits++;
      apSum += hits / (r + 1);
      if (r < kk) atK++;
    }
  }
  return {
    flagged: count,
    precision,
    recall,
    f1,
    k: kk,
    precision_at_k: kk ? atK / kk : null,
    average_precision: noisy ? apSum / noisy : null,
  };
}
