/**
 * The dataset interface the trainer reads, and {@linkcode loadDataset}, which
 * opens one of the paper's datasets (or a synthetic one) by name.
 *
 * Samples are in the reference loader's order, which is the order its label
 * noise is drawn in: ImageFolder order for HAM10000, CSV order for APTOS,
 * `.npz` order for MedMNIST.
 *
 * @module
 */
import { loadAptos } from "./aptos.ts";
import type { RawImage } from "./image.ts";
import { loadImageFolder } from "./image_folder.ts";
import { loadMedmnist, medmnistClasses } from "./medmnist.ts";
import { makeSynthetic, type SyntheticOptions } from "./synthetic.ts";

/** An indexed, labelled image dataset. */
export interface Dataset {
  readonly name: string;
  /** Class names; label `k` is `classes[k]`. */
  readonly classes: string[];
  readonly numClasses: number;
  readonly length: number;
  /** Clean labels, in loader order. */
  readonly labels: Int32Array;
  /** Where sample `i` comes from (a file path, `"x.npz:train[12]"`), for messages and predictions. */
  describe(i: number): string;
  /** Sample `i`, decoded to uint8. */
  image(i: number): Promise<RawImage>;
}

/** Options of {@linkcode loadDataset}. */
export interface LoadDatasetOptions extends Omit<SyntheticOptions, "split"> {
  /** Folder of the dataset (ignored by `synthetic`). */
  root: string;
  split: "train" | "test";
  /**
   * MedMNIST image size (`<flag>_<size>.npz`); see `loadMedmnist`.
   * @default undefined (the 224 file if present, else the 28 one)
   */
  medmnistSize?: number;
  /**
   * Follow symlinks of an image-folder dataset that resolve outside `root`
   * (refused otherwise); see `loadImageFolder`.
   * @default false
   */
  allowOutsideLinks?: boolean;
}

/** The dataset names {@linkcode loadDataset} knows besides MedMNIST flags. */
export const datasetNames = [
  "ham10000",
  "aptos",
  "bloodmnist",
  "organcmnist",
  "synthetic",
] as const;

const MEDMNIST_FLAGS = new Set([
  "pathmnist",
  "chestmnist",
  "dermamnist",
  "octmnist",
  "pneumoniamnist",
  "retinamnist",
  "breastmnist",
  "bloodmnist",
  "tissuemnist",
  "organamnist",
  "organcmnist",
  "organsmnist",
  ...Object.keys(medmnistClasses),
]);

/**
 * Open a dataset split by name:
 * - `ham10000`: ImageFolder at `{root}/{split}/{CLASS}/*`;
 * - `aptos`: `{root}/train_1.csv` or `{root}/test.csv` and their images;
 * - `bloodmnist`, `organcmnist` (any MedMNIST flag): `{root}/<flag>[_<size>].npz`;
 * - `synthetic`: generated, from the synthetic options;
 * - any other name: an ImageFolder at `{root}/{split}`, if it exists.
 *
 * @throws Error naming the dataset and what was expected when it cannot be
 * found, or the loader's error for malformed files.
 */
export async function loadDataset(
  name: string,
  options: LoadDatasetOptions,
): Promise<Dataset> {
  const { root, split } = options;
  if (split !== "train" && split !== "test") {
    throw new Error(`Dataset split "${split}" is not "train" or "test"`);
  }
  const key = name.toLowerCase();
  if (key === "synthetic") return makeSynthetic({ ...options, split });
  if (key === "aptos") return await loadAptos(root, { split });
  if (MEDMNIST_FLAGS.has(key)) {
    return await loadMedmnist(root, {
      flag: key,
      split,
      size: options.medmnistSize,
    });
  }
  const dir = `${root.replace(/\/+$/, "")}/${split}`;
  try {
    await Deno.stat(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    const hint = key === "ham10000"
      ? "; build it from the ISIC 2018 files with `deno task prepare:ham10000` (see its --help)"
      : ` (known datasets: ${datasetNames.join(", ")})`;
    throw new Error(
      `Dataset "${name}": folder "${dir}" does not exist, expected ${root}/{train,test}/<CLASS>/<image>${hint}`,
    );
  }
  return await loadImageFolder(dir, {
    name: key,
    within: root,
    allowOutsideLinks: options.allowOutsideLinks,
  });
}
