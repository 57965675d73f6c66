/**
 * Metric math on host arrays (no tensors): accuracy, confusion matrices,
 * per-class precision and recall, the reference's "mean test accuracy of the
 * last 10 epochs", the best epoch, the one console line per epoch, and the
 * text of `avgacc.txt`.
 *
 * Ratios whose denominator is 0 are `null` (JSON keeps them; `NaN` would
 * become `null` silently anyway).
 *
 * @module
 */
import type { SelectionStats } from "./selection.ts";

/** How many final epochs the reported figure averages (the paper's Table 1). */
export const LAST_EPOCHS = 10;

/**
 * One epoch of a run: a line of `metrics.jsonl`. Accuracies are fractions in
 * [0, 1] (the reference's `correct / total`), epochs 0-based as the reference
 * prints them.
 */
export interface EpochMetrics {
  epoch: number;
  /** Learning rate used during this epoch. */
  lr: number;
  /** Mean over batches of the minimized loss (CUFIT: model 1's, as the reference prints it). */
  trainLoss: number;
  /** Training accuracy against the (noisy) training labels. */
  trainAcc: number;
  /** Test accuracy of the reported model: linear head, Rein, or CUFIT's LAM. */
  testAcc: number;
  /** CUFIT's three heads (`lpm`, `iam`, `lam`): their train and test accuracy. */
  heads?: Record<string, { trainAcc?: number; testAcc?: number }>;
  /** CUFIT: how well `lpm` and `iam` select clean samples this epoch. */
  selection?: Record<string, SelectionStats>;
  /** Training batches run this epoch. */
  batches?: number;
  /** Wall-clock seconds of the epoch (training and evaluation). */
  seconds?: number;
}

/**
 * The index of the largest value of each row of a row-major `[n, k]` array
 * (the first one on ties).
 */
export function argmaxRows(values: ArrayLike<number>, k: number): Int32Array {
  if (!Number.isSafeInteger(k) || k < 1 || values.length % k !== 0) {
    throw new RangeError(
      `Cannot split ${values.length} values into rows of ${k}: expected a positive row length that divides the count`,
    );
  }
  const n = values.length / k;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < k; j++) {
      if (values[i * k + j] > values[i * k + best]) best = j;
    }
    out[i] = best;
  }
  return out;
}

function checkPair(predicted: ArrayLike<number>, labels: ArrayLike<number>) {
  if (predicted.length !== labels.length) {
    throw new RangeError(
      `Cannot score ${predicted.length} predictions against ${labels.length} labels: expected one prediction per label`,
    );
  }
  if (labels.length === 0) {
    throw new RangeError(
      "Cannot score an empty set: expected at least one label",
    );
  }
}

/** Fraction of predictions equal to their label. */
export function accuracy(
  predicted: ArrayLike<number>,
  labels: ArrayLike<number>,
): number {
  checkPair(predicted, labels);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    if (predicted[i] === labels[i]) correct++;
  }
  return correct / labels.length;
}

/** Options of {@linkcode confusionMatrix}. */
export interface ConfusionMatrixOptions {
  /**
   * Number of classes k.
   * @default 1 + the largest label or prediction
   */
  numClasses?: number;
}

/**
 * `k x k` counts: row = true label, column = predicted class. Labels and
 * predictions outside `[0, k)` are an error naming the sample.
 */
export function confusionMatrix(
  predicted: ArrayLike<number>,
  labels: ArrayLike<number>,
  options: ConfusionMatrixOptions = {},
): number[][] {
  checkPair(predicted, labels);
  const numClasses = options.numClasses ?? inferClasses(predicted, labels);
  if (!Number.isSafeInteger(numClasses) || numClasses < 1) {
    throw new RangeError(
      `Option "numClasses" must be a positive integer, got ${numClasses}`,
    );
  }
  const m = Array.from(
    { length: numClasses },
    () => new Array(numClasses).fill(0),
  );
  for (let i = 0; i < labels.length; i++) {
    for (
      const [what, v] of [["label", labels[i]], [
        "prediction",
        predicted[i],
      ]] as const
    ) {
      if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
        throw new RangeError(
          `Sample ${i} has ${what} ${v}, expected an integer in [0, ${
            numClasses - 1
          }]`,
        );
      }
    }
    m[labels[i]][predicted[i]]++;
  }
  return m;
}

function inferClasses(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, a[i], b[i]);
  return max + 1;
}

/** Per-class figures from a confusion matrix. */
export interface PerClassMetrics {
  /** Of the samples predicted as the class, the share that belong to it. */
  precision: (number | null)[];
  /** Of the samples of the class, the share predicted as it. */
  recall: (number | null)[];
  /** Harmonic mean of the two (`null` if either is, 0 if both are 0). */
  f1: (number | null)[];
  /** Samples of each class. */
  support: number[];
}

/** Precision, recall, F1 and support of every class. */
export function perClassMetrics(confusion: number[][]): PerClassMetrics {
  const k = confusion.length;
  const out: PerClassMetrics = {
    precision: [],
    recall: [],
    f1: [],
    support: [],
  };
  for (let c = 0; c < k; c++) {
    let row = 0;
    let col = 0;
    for (let j = 0; j < k; j++) {
      row += confusion[c][j];
      col += confusion[j][c];
    }
    const tp = confusion[c][c];
    const p = col === 0 ? null : tp / col;
    const r = row === 0 ? null : tp / row;
    out.precision.push(p);
    out.recall.push(r);
    out.f1.push(
      p === null || r === null ? null : p + r === 0 ? 0 : (2 * p * r) / (p + r),
    );
    out.support.push(row);
  }
  return out;
}

/** What `evaluate` and `predict` report for one labelled set. */
export interface EvaluationSummary {
  total: number;
  correct: number;
  accuracy: number;
  /** Mean recall over the classes present (balanced accuracy). */
  balancedAccuracy: number;
  /** Mean F1 over the classes whose F1 is defined. */
  macroF1: number | null;
  confusion: number[][];
  perClass: PerClassMetrics;
  /** Class names in index order, when given. */
  classNames: string[] | null;
}

/** Options of {@linkcode evaluationSummary}. */
export interface EvaluationSummaryOptions {
  /**
   * Number of classes.
   * @default classNames.length, else 1 + the largest label or prediction
   */
  numClasses?: number;
  /**
   * Names of the classes in index order.
   * @default null
   */
  classNames?: string[] | null;
}

/** Accuracy, confusion matrix and per-class metrics of predictions. */
export function evaluationSummary(
  predicted: ArrayLike<number>,
  labels: ArrayLike<number>,
  options: EvaluationSummaryOptions = {},
): EvaluationSummary {
  const classNames = options.classNames ?? null;
  const numClasses = options.numClasses ?? classNames?.length ??
    inferClasses(predicted, labels);
  if (classNames !== null && classNames.length !== numClasses) {
    throw new RangeError(
      `Got ${classNames.length} class names for ${numClasses} classes: expected one name per class`,
    );
  }
  const confusion = confusionMatrix(predicted, labels, { numClasses });
  const perClass = perClassMetrics(confusion);
  let correct = 0;
  for (let c = 0; c < numClasses; c++) correct += confusion[c][c];
  const present = perClass.recall.filter((r): r is number => r !== null);
  const f1s = perClass.f1.filter((f): f is number => f !== null);
  return {
    total: labels.length,
    correct,
    accuracy: correct / labels.length,
    balancedAccuracy: mean(present),
    macroF1: f1s.length === 0 ? null : mean(f1s),
    confusion,
    perClass,
    classNames,
  };
}

function mean(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Options of {@linkcode lastEpochsMean}. */
export interface LastEpochsMeanOptions {
  /**
   * How many final values to average.
   * @default 10
   */
  count?: number;
}

/**
 * The name of {@linkcode lastEpochsMean}'s figure for a run of `epochs`
 * epochs: "last-10", or "last-N" when the run is shorter.
 */
export function lastEpochsLabel(epochs: number, count = LAST_EPOCHS): string {
  return `last-${Math.max(1, Math.min(count, epochs))}`;
}

/**
 * The reference's reported figure: the mean of the last 10 test accuracies,
 * summed in epoch order from 0.0 as `train_*.py` does, so that for runs of 10
 * or more epochs the value is bit-identical to its `avgacc.txt`.
 *
 * Differs from the reference only for runs shorter than `count`: the
 * reference still divides by 10, this divides by the number of epochs run.
 */
export function lastEpochsMean(
  values: readonly number[],
  options: LastEpochsMeanOptions = {},
): number {
  const count = options.count ?? LAST_EPOCHS;
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new RangeError(
      `Option "count" must be a positive integer, got ${count}`,
    );
  }
  if (values.length === 0) {
    throw new RangeError(
      "Cannot average the last epochs of an empty run: expected at least one value",
    );
  }
  const tail = values.slice(-count);
  let sum = 0.0;
  for (const v of tail) sum += v;
  return sum / tail.length;
}

/** The best epoch so far and its value. */
export interface Best {
  epoch: number;
  value: number;
}

/**
 * Whether `value` beats the best so far. Strictly greater, as timm's
 * CheckpointSaver decides, so the first of equal epochs stays best.
 */
export function isImprovement(value: number, best: Best | null): boolean {
  return best === null || value > best.value;
}

/** The epoch with the highest `testAcc` (the first on ties), `null` when empty. */
export function bestEpoch(records: readonly EpochMetrics[]): Best | null {
  let best: Best | null = null;
  for (const r of records) {
    if (isImprovement(r.testAcc, best)) {
      best = { epoch: r.epoch, value: r.testAcc };
    }
  }
  return best;
}

/**
 * A float as Python's `str()`/`repr()` prints it: the shortest round-trip
 * digits (as JavaScript), but with `.0` on integral values, exponent notation
 * below 1e-4 and from 1e16 (`1e-05`, `1e+16`), and `nan`/`inf`.
 */
export function pythonFloat(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  // toExponential() without digits gives the shortest round-trip mantissa.
  const [mant, exp] = Math.abs(x).toExponential().split("e");
  const digits = mant.replace(".", "");
  // Python's "decpt": the value is 0.<digits> * 10^decpt.
  const decpt = Number(exp) + 1;
  if (decpt <= -4 || decpt > 16) {
    const e = decpt - 1;
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? "-" : "+"}${
      String(Math.abs(e)).padStart(2, "0")
    }`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) {
    return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
  }
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

/**
 * The content of `avgacc.txt`: the mean test accuracy of the last 10 epochs
 * as a fraction, written like the reference's `f.write(str(avg))` (Python's
 * float repr, e.g. `0.8153439153439153`, no newline).
 */
export function avgAccText(testAccs: readonly number[]): string {
  return pythonFloat(lastEpochsMean(testAccs));
}

/** Reads `avgacc.txt` text back (a Python float literal). */
export function parseAvgAcc(text: string): number {
  const t = text.trim();
  if (!/^-?(\d+\.\d*|\d*\.\d+|\d+)(e[+-]?\d+)?$/.test(t)) {
    throw new SyntaxError(
      `Cannot read avgacc text ${
        JSON.stringify(text)
      }: expected a float such as 0.8153`,
    );
  }
  return Number(t);
}

/** Options of {@linkcode formatEpochLine}. */
export interface FormatEpochLineOptions {
  /**
   * Total epochs, shown as `epoch/total` when given.
   * @default null
   */
  epochs?: number | null;
}

const f4 = (x: number | null | undefined) =>
  x === null || x === undefined ? "n/a" : x.toFixed(4);

/**
 * The console line of one epoch, after the reference's
 * `EPOCH    3, TRAIN [loss - 0.6931, acc - 0.5000], VALID [acc - 0.6000]`,
 * followed by CUFIT's per-head test accuracies and selection quality when
 * present, the learning rate and the time.
 */
export function formatEpochLine(
  m: EpochMetrics,
  options: FormatEpochLineOptions = {},
): string {
  const total = options.epochs ?? null;
  const parts = [
    `EPOCH ${String(m.epoch).padStart(4)}${total === null ? "" : `/${total}`}`,
    `TRAIN [loss - ${f4(m.trainLoss)}, acc - ${f4(m.trainAcc)}]`,
    `VALID [acc - ${f4(m.testAcc)}]`,
  ];
  if (m.heads && Object.keys(m.heads).length > 0) {
    const accs = Object.entries(m.heads).map(([h, v]) =>
      `${h} - ${f4(v.testAcc)}`
    );
    parts.push(`HEADS [${accs.join(", ")}]`);
  }
  if (m.selection) {
    for (const [h, s] of Object.entries(m.selection)) {
      parts.push(
        `SELECT(${h}) [${s.selected}/${s.total}, precision - ${
          f4(s.precision)
        }, recall - ${f4(s.recall)}]`,
      );
    }
  }
  parts.push(`LR ${pythonFloat(m.lr)}`);
  if (m.seconds !== undefined) parts.push(`${m.seconds.toFixed(1)} s`);
  return parts.join(", ");
}
