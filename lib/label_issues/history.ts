/**
 * The selection history of a run: for every epoch and training sample, one
 * bit per recording module saying whether that module agreed with the
 * sample's given (noisy) label when the sample was trained on, plus one bit
 * saying whether the sample was seen at all that epoch (a `--max-batches` run
 * or a skipped unreadable image sees only part of the set).
 *
 * Which modules record: CUFIT's two selectors, LPM and IAM (their agreement
 * bit is exactly the mask that decides which samples train the next module);
 * for linear probing and Rein, their one module (its agreement is what a
 * selector built on it would have decided).
 *
 * Batches arrive in shuffled order; {@linkcode SelectionHistory.record} takes
 * the batch's dataset indices, so bit `i` always belongs to dataset sample
 * `i`.
 *
 * Storage: one `U8` {@linkcode HostTensor} of shape `[epochs, 1 + modules,
 * ceil(N / 8)]` (row 0: seen; rows 1..: the modules in order; bit `i % 8` of
 * byte `i >> 3` is sample `i`), about 0.4 MB for 10,000 samples, 2 modules
 * and 100 epochs. The trainer stores it inside each checkpoint's state, so it
 * is written with the checkpoint it belongs to and comes back with
 * `--resume`.
 *
 * @module
 */
import type { HostTensor } from "../weights/host_tensor.ts";
import type { Method, ModuleName } from "../train/learner.ts";

/** The modules whose agreement a run of each method records, in row order. */
export const RECORDED_MODULES: Record<Method, ModuleName[]> = {
  linear: ["lpm"],
  rein: ["rein"],
  cufit: ["lpm", "iam"],
};

/** The state a checkpoint holds (see the module doc for the layout). */
export interface SelectionHistoryState {
  format: typeof HISTORY_FORMAT;
  samples: number;
  modules: ModuleName[];
  bits: HostTensor;
}

/** The `format` of {@linkcode SelectionHistoryState}. */
export const HISTORY_FORMAT = "cufit-ts-selection-history/1";

const MODULE_NAMES: readonly ModuleName[] = ["lpm", "iam", "lam", "rein"];

/** Per-epoch, per-sample selection bits of a run's recording modules. */
export class SelectionHistory {
  readonly samples: number;
  readonly modules: readonly ModuleName[];
  /** Bytes per row (`ceil(samples / 8)`). */
  readonly rowBytes: number;
  #epochs: Uint8Array[] = [];

  constructor(samples: number, modules: readonly ModuleName[]) {
    if (!Number.isSafeInteger(samples) || samples < 0) {
      throw new RangeError(
        `Selection history: samples must be a non-negative integer, got ${samples}`,
      );
    }
    if (modules.length === 0) {
      throw new RangeError(`Selection history: no module to record`);
    }
    this.samples = samples;
    this.modules = [...modules];
    this.rowBytes = Math.ceil(samples / 8);
  }

  /** Epochs recorded (0..epochs-1). */
  get epochs(): number {
    return this.#epochs.length;
  }

  #epoch(epoch: number): Uint8Array {
    if (!Number.isSafeInteger(epoch) || epoch < 0) {
      throw new RangeError(
        `Selection history: epoch must be a non-negative integer, got ${epoch}`,
      );
    }
    while (this.#epochs.length <= epoch) {
      this.#epochs.push(
        new Uint8Array((1 + this.modules.length) * this.rowBytes),
      );
    }
    return this.#epochs[epoch];
  }

  /**
   * Records one batch of epoch `epoch`: `indices` are the batch's dataset
   * indices, `masks[module][j]` is 1 when the module agreed with the label
   * of `indices[j]`.
   */
  record(
    epoch: number,
    indices: ArrayLike<number>,
    masks: Partial<Record<ModuleName, ArrayLike<number>>>,
  ): void {
    const bits = this.#epoch(epoch);
    const rows = this.modules.map((m, r) => {
      const mask = masks[m];
      if (!mask || mask.length !== indices.length) {
        throw new RangeError(
          `Selection history: module "${m}" gave ${
            mask?.length ?? "no"
          } mask values for a batch of ${indices.length}`,
        );
      }
      return { mask, offset: (r + 1) * this.rowBytes };
    });
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (!(i >= 0 && i < this.samples && Number.isInteger(i))) {
        throw new RangeError(
          `Selection history: dataset index ${i} outside [0, ${this.samples})`,
        );
      }
      const byte = i >> 3;
      const bit = 1 << (i & 7);
      bits[byte] |= bit;
      for (const { mask, offset } of rows) {
        if (mask[j]) bits[offset + byte] |= bit;
        else bits[offset + byte] &= ~bit;
      }
    }
  }

  /** Whether sample `i` was seen in `epoch`. */
  seen(epoch: number, i: number): boolean {
    const bits = this.#epochs[epoch];
    return bits !== undefined && (bits[i >> 3] & (1 << (i & 7))) !== 0;
  }

  /** Whether `module` agreed with sample `i`'s label in `epoch` (false when unseen). */
  selected(module: ModuleName, epoch: number, i: number): boolean {
    const r = this.modules.indexOf(module);
    if (r < 0) {
      throw new RangeError(
        `Selection history has no module "${module}" (it has ${
          this.modules.join(", ")
        })`,
      );
    }
    const bits = this.#epochs[epoch];
    return bits !== undefined &&
      (bits[(r + 1) * this.rowBytes + (i >> 3)] & (1 << (i & 7))) !== 0;
  }

  /** Forgets epochs from `epochs` on (a resumed run redoes them). */
  truncate(epochs: number): void {
    this.#epochs.length = Math.min(this.#epochs.length, epochs);
  }

  /** The checkpoint state: every recorded epoch as one U8 tensor. */
  toState(): SelectionHistoryState {
    const per = (1 + this.modules.length) * this.rowBytes;
    const data = new Uint8Array(this.#epochs.length * per);
    this.#epochs.forEach((e, k) => data.set(e, k * per));
    return {
      format: HISTORY_FORMAT,
      samples: this.samples,
      modules: [...this.modules],
      bits: {
        dtype: "U8",
        shape: [this.#epochs.length, 1 + this.modules.length, this.rowBytes],
        data,
      },
    };
  }

  /**
   * A history from checkpoint state, checked against what the caller
   * expects; `where` names the file in errors.
   */
  static fromState(
    state: unknown,
    where: string,
    expect: { samples?: number; modules?: readonly ModuleName[] } = {},
  ): SelectionHistory {
    const s = state as Partial<SelectionHistoryState> | null;
    const bad = (what: string) =>
      new Error(`${where}: selection history ${what}`);
    if (s?.format !== HISTORY_FORMAT) {
      throw bad(
        `has format ${JSON.stringify(s?.format)}, expected "${HISTORY_FORMAT}"`,
      );
    }
    if (
      !Array.isArray(s.modules) || s.modules.length === 0 ||
      !s.modules.every((m) => MODULE_NAMES.includes(m))
    ) {
      throw bad(
        `has modules ${JSON.stringify(s.modules)}, expected some of ${
          MODULE_NAMES.join(", ")
        }`,
      );
    }
    if (!Number.isSafeInteger(s.samples) || s.samples! < 0) {
      throw bad(`has samples ${JSON.stringify(s.samples)}`);
    }
    const history = new SelectionHistory(s.samples!, s.modules);
    if (expect.samples !== undefined && expect.samples !== history.samples) {
      throw bad(
        `covers ${history.samples} samples, but the training set has ${expect.samples}`,
      );
    }
    if (
      expect.modules !== undefined &&
      expect.modules.join(",") !== history.modules.join(",")
    ) {
      throw bad(
        `records ${history.modules.join(", ")}, expected ${
          expect.modules.join(", ")
        }`,
      );
    }
    const bits = s.bits;
    const rows = 1 + history.modules.length;
    if (
      bits?.dtype !== "U8" || !(bits.data instanceof Uint8Array) ||
      bits.shape.length !== 3 || bits.shape[1] !== rows ||
      bits.shape[2] !== history.rowBytes ||
      bits.data.length !== bits.shape[0] * rows * history.rowBytes
    ) {
      throw bad(
        `bits have dtype ${bits?.dtype} and shape ${
          JSON.stringify(bits?.shape)
        }, expected U8 [epochs, ${rows}, ${history.rowBytes}]`,
      );
    }
    const per = rows * history.rowBytes;
    for (let e = 0; e < bits.shape[0]; e++) {
      history.#epochs.push(bits.data.slice(e * per, (e + 1) * per));
    }
    return history;
  }

  /**
   * Per sample and module: epochs seen, epochs selected, and the selection
   * bits epoch by epoch (for scores that weigh epochs differently).
   */
  counts(module: ModuleName): { seen: Int32Array; selected: Int32Array } {
    const seen = new Int32Array(this.samples);
    const selected = new Int32Array(this.samples);
    for (let e = 0; e < this.#epochs.length; e++) {
      for (let i = 0; i < this.samples; i++) {
        if (this.seen(e, i)) {
          seen[i]++;
          if (this.selected(module, e, i)) selected[i]++;
        }
      }
    }
    return { seen, selected };
  }
}
