/**
 * CUFIT's sample-selection rule and how good the selection is.
 *
 * A sample is selected when a module's prediction agrees with its (possibly
 * noisy) label: the linear probe (LPM) selects the samples that train the
 * first Rein adapter (IAM), and IAM selects those that train the second (LAM).
 * Precision is the share of clean samples among the selected ones, recall the
 * share of clean samples that were selected (the paper's Fig. 3; the reference
 * scripts do not log them).
 *
 * A ratio whose denominator is 0 (nothing selected, no clean sample) is
 * `null`, not `NaN`, so that it survives `JSON.stringify` as `null`.
 *
 * @module
 */

/** Selection counts and the two ratios. */
export interface SelectionStats {
  /** Samples seen. */
  total: number;
  /** Samples selected. */
  selected: number;
  /** Samples whose label is clean. */
  clean: number;
  /** Selected samples whose label is clean. */
  cleanSelected: number;
  /** `cleanSelected / selected`, `null` when nothing is selected. */
  precision: number | null;
  /** `cleanSelected / clean`, `null` when no label is clean. */
  recall: number | null;
}

function checkLengths(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  what: string,
) {
  if (a.length !== b.length) {
    throw new RangeError(
      `${what}: lengths differ (${a.length} and ${b.length}), expected one value per sample`,
    );
  }
}

/**
 * The selection mask: 1 where the predicted class equals the label (the
 * reference's `argmax(logits) == targets`), else 0.
 */
export function agreementMask(
  predicted: Int32Array,
  labels: Int32Array,
): Uint8Array {
  checkLengths(predicted, labels, "Cannot compare predictions with labels");
  const mask = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    mask[i] = predicted[i] === labels[i] ? 1 : 0;
  }
  return mask;
}

/**
 * Marks noisy labels: 1 where the training label differs from the clean one.
 */
export function noisyMask(
  noisyLabels: ArrayLike<number>,
  cleanLabels: ArrayLike<number>,
): Uint8Array {
  checkLengths(
    noisyLabels,
    cleanLabels,
    "Cannot compare noisy with clean labels",
  );
  const out = new Uint8Array(noisyLabels.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = noisyLabels[i] === cleanLabels[i] ? 0 : 1;
  }
  return out;
}

function ratio(num: number, den: number): number | null {
  return den === 0 ? null : num / den;
}

/** Stats from the four counts. */
function statsOf(
  total: number,
  selected: number,
  clean: number,
  cleanSelected: number,
): SelectionStats {
  return {
    total,
    selected,
    clean,
    cleanSelected,
    precision: ratio(cleanSelected, selected),
    recall: ratio(cleanSelected, clean),
  };
}

/**
 * Counts how well a selection mask picks clean samples: `isNoisy[i]` is 1 when
 * sample i's training label is not its true label.
 */
export function selectionStats(
  mask: Uint8Array,
  isNoisy: Uint8Array,
): SelectionStats {
  checkLengths(mask, isNoisy, "Cannot score a selection");
  let selected = 0;
  let clean = 0;
  let cleanSelected = 0;
  for (let i = 0; i < mask.length; i++) {
    // 1. Any non-zero entry counts as selected / noisy.
    const sel = mask[i] !== 0;
    const isClean = isNoisy[i] === 0;
    // 2. Count the selected, the clean, and the clean among the selected.
    if (sel) selected++;
    if (isClean) clean++;
    if (sel && isClean) cleanSelected++;
  }
  return statsOf(mask.length, selected, clean, cleanSelected);
}

/** Sums selection counts over the batches of an epoch. */
export class SelectionAccumulator {
  #total = 0;
  #selected = 0;
  #clean = 0;
  #cleanSelected = 0;

  /** Adds one batch: its selection mask and which of its labels are noisy. */
  add(mask: Uint8Array, isNoisy: Uint8Array): SelectionStats {
    const s = selectionStats(mask, isNoisy);
    this.addStats(s);
    return s;
  }

  /** Adds counts computed elsewhere (the ratios are recomputed). */
  addStats(
    s: Pick<SelectionStats, "total" | "selected" | "clean" | "cleanSelected">,
  ): void {
    this.#total += s.total;
    this.#selected += s.selected;
    this.#clean += s.clean;
    this.#cleanSelected += s.cleanSelected;
  }

  /** The totals so far, with precision and recall over all of them. */
  stats(): SelectionStats {
    return statsOf(
      this.#total,
      this.#selected,
      this.#clean,
      this.#cleanSelected,
    );
  }

  /** Starts a new epoch. */
  reset(): void {
    this.#total =
      this.#selected =
      this.#clean =
      this.#cleanSelected =
        0;
  }
}
