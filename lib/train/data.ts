/**
 * The datasets, noisy labels and backbone weights a training config names.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Dataset, loadDataset } from "../data/dataset.ts";
import { makeNoisyLabels, type NoisyLabels } from "../noise/label_noise.ts";
import type { TrainConfig } from "./config.ts";

/** The train and test splits of a config's dataset. */
export async function openDatasets(
  config: TrainConfig,
): Promise<{ train: Dataset; test: Dataset }> {
  const { dataset } = config;
  const synthetic = dataset.synthetic;
  const open = (split: "train" | "test") =>
    loadDataset(dataset.kind === "synthetic" ? "synthetic" : dataset.name, {
      root: dataset.root,
      split,
      ...(synthetic
        ? {
          numClasses: dataset.numClasses,
          perClass: split === "train"
            ? synthetic.trainPerClass
            : synthetic.testPerClass,
          imageSize: synthetic.size,
          seed: synthetic.seed,
          ...difficultyOf(synthetic),
          ...(synthetic.cue === undefined ? {} : { cue: synthetic.cue }),
        }
        : {}),
    });
  const train = await open("train");
  const test = await open("test");
  for (const [split, ds] of [["train", train], ["test", test]] as const) {
    checkLabels(ds, dataset.numClasses, `${dataset.name} ${split}`);
  }
  return { train, test };
}

/** Fails before training when a label is outside [0, numClasses). */
export function checkLabels(
  ds: Dataset,
  numClasses: number,
  what: string,
): void {
  for (let i = 0; i < ds.length; i++) {
    const y = ds.labels[i];
    if (!(y >= 0 && y < numClasses)) {
      throw new Error(
        `${what}: sample ${i} (${
          ds.describe(i)
        }) has label ${y}, but num_classes is ${numClasses}`,
      );
    }
  }
}

/** The run's noisy training labels (test labels stay clean). */
export function noisyTrainLabels(
  config: TrainConfig,
  train: Dataset,
): NoisyLabels {
  return makeNoisyLabels(train.labels, config.dataset.numClasses, {
    mode: config.noise.mode,
    rate: config.noise.rate,
    seed: config.noise.seed,
    ...(config.noise.matrix ? { matrix: config.noise.matrix } : {}),
  });
}

/** The default weights file names for a net size, in the order they are looked for. */
export function defaultWeightFiles(netsize: "s" | "b" | "l"): string[] {
  const name = `dinov2_vit${netsize}14`;
  return [
    `${name}_pretrain.pth`,
    `${name}_hf.safetensors`,
    `${name}.safetensors`,
  ];
}

/**
 * The backbone weights file of a config: `config.weights`, else the first
 * default file found in `weightsDir`.
 */
export function resolveWeightsFile(
  config: Pick<TrainConfig, "weights" | "netsize"> & {
    dataset?: Pick<TrainConfig["dataset"], "kind">;
  },
  options: { weightsDir?: string } = {},
): string {
  if (config.weights) {
    if (!existsSync(config.weights)) {
      throw new Error(`Weights file "${config.weights}" does not exist`);
    }
    return config.weights;
  }
  const dir = options.weightsDir ?? "data/weights";
  for (const f of defaultWeightFiles(config.netsize)) {
    const path = join(dir, f);
    if (existsSync(path)) return path;
  }
  throw new Error(
    `No DINOv2 weights for --netsize ${config.netsize} in "${dir}" (looked for ${
      defaultWeightFiles(config.netsize).join(", ")
    }): run \`deno task fetch:weights dinov2_vit${config.netsize}14\` or pass --weights FILE${
      // Generated data has its own small backbone, committed with the project.
      config.dataset?.kind === "synthetic"
        ? " (for generated data: --weights data/demo/backbone.safetensors)"
        : ""}`,
  );
}

/**
 * The file the training labels of a config's dataset come from, whose digest
 * a run records: APTOS's `train_1.csv`, or the MedMNIST `.npz` the loader
 * picks (`<flag>_224.npz`, else `<flag>.npz`, as `loadMedmnist` does without
 * a size). `null` for image folders (labels are folder names) and generated
 * data.
 */
export function labelListFile(
  config: Pick<TrainConfig, "dataset">,
): string | null {
  const { kind, root, name } = config.dataset;
  if (kind === "aptos") return `${root}/train_1.csv`;
  if (kind !== "medmnist") return null;
  const flag = name.toLowerCase();
  for (const c of [`${flag}_224.npz`, `${flag}.npz`]) {
    if (existsSync(`${root}/${c}`)) return `${root}/${c}`;
  }
  return null;
}

function difficultyOf(spec: object): { difficulty?: number } {
  const d = (spec as { difficulty?: unknown }).difficulty;
  return typeof d === "number" ? { difficulty: d } : {};
}
