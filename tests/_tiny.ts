/**
 * Tiny random models and fixture folders for tests: other widths, depths,
 * head counts, input sizes and class counts than the shared fixtures.
 */
import { initBackbone, initTrainable } from "../lib/models/init.ts";
import { RandomState } from "../lib/noise/random_state.ts";
import type { HostTensor } from "../lib/weights/host_tensor.ts";
import type { DinoVariant } from "../lib/weights/variant.ts";
import { writeSafetensors } from "../lib/weights/safetensors.ts";

export interface TinySpec {
  dim: number;
  depth: number;
  heads: number;
  classes: number;
  grid?: number;
  seed?: number;
}

export function tinyVariant(spec: TinySpec): DinoVariant {
  const grid = spec.grid ?? 37;
  return {
    patchSize: 14,
    embedDim: spec.dim,
    depth: spec.depth,
    numHeads: spec.heads,
    mlpHidden: 4 * spec.dim,
    numPosPatches: grid,
    imgSize: grid * 14,
  };
}

/** A backbone plus fresh trainable groups of `method`. */
export function tinyModel(
  spec: TinySpec,
  method: "linear" | "rein" | "cufit",
): {
  variant: DinoVariant;
  backbone: Map<string, HostTensor>;
  groups: Map<string, HostTensor>[];
} {
  const rs = new RandomState(spec.seed ?? 0);
  const rng = () => rs.rand();
  const variant = tinyVariant(spec);
  // A larger LayerScale than DINOv2's 1e-5 so the blocks matter in tests.
  const backbone = initBackbone(variant, rng, { layerScale: 0.5 });
  const groups = initTrainable(
    method,
    { ...variant, numClasses: spec.classes },
    rng,
  );
  return { variant, backbone, groups };
}

export function randomImages(shape: number[], seed: number): HostTensor {
  const rs = new RandomState(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rs.rand() * 4 - 2;
  return { dtype: "F32", shape, data };
}

function labels(n: number, classes: number, seed: number): HostTensor {
  const rs = new RandomState(seed);
  return {
    dtype: "I64",
    shape: [n],
    data: BigInt64Array.from(
      { length: n },
      () => BigInt(rs.randint(0, classes)),
    ),
  };
}

/**
 * Writes a fixtures folder with the golden *inputs* only (no outputs):
 * `rein_model`, `rein_golden` (input, input224, rein_layer_in, labels),
 * `cufit_model1/2` and `cufit_golden` (steps of inputs and targets).
 */
export async function writeTinyFixtures(dir: string, spec: TinySpec, options: {
  batch: number;
  size: number;
  size2: number;
  steps: number;
}): Promise<void> {
  const { variant, backbone, groups } = tinyModel(spec, "cufit");
  const variantMeta = JSON.stringify({
    patch_size: 14,
    embed_dim: spec.dim,
    depth: spec.depth,
    num_heads: spec.heads,
    mlp_ratio: 4,
    img_size: variant.imgSize,
  });
  const model1 = new Map([...backbone, ...groups[0]]);
  await writeSafetensors(`${dir}/rein_model.safetensors`, model1, {
    metadata: { variant: variantMeta, num_classes: String(spec.classes) },
  });
  const n = 1 + (options.size / 14) ** 2;
  await writeSafetensors(`${dir}/rein_golden.safetensors`, {
    input: randomImages([options.batch, 3, options.size, options.size], 1),
    input224: randomImages([1, 3, options.size2, options.size2], 2),
    rein_layer_in: randomImages([options.batch, n, spec.dim], 3),
    labels: labels(options.batch, spec.classes, 4),
  });
  await writeSafetensors(`${dir}/cufit_model1.safetensors`, model1);
  await writeSafetensors(
    `${dir}/cufit_model2.safetensors`,
    new Map([...backbone, ...groups[1]]),
  );
  const steps: Record<string, HostTensor> = {};
  for (let s = 0; s < options.steps; s++) {
    steps[`step${s}.inputs`] = randomImages([
      options.batch,
      3,
      options.size,
      options.size,
    ], 10 + s);
    steps[`step${s}.targets`] = labels(options.batch, spec.classes, 20 + s);
  }
  await writeSafetensors(`${dir}/cufit_golden.safetensors`, steps);
}

/** Options of {@linkcode tinyWorkspace}. */
export interface TinyWorkspaceOptions {
  /** Folder to fill. @default a new temp folder */
  dir?: string;
  /** Keys of `synthetic.json` to replace (e.g. `epoch`, `synthetic`). @default none */
  conf?: Record<string, unknown>;
}

/**
 * A folder with tiny backbone weights (`w.safetensors`: width 16, 2 blocks,
 * 2 heads) and a generated 3-class dataset file (`synthetic.json`, 3 epochs,
 * 8 training and 4 test images a class) whose runs save inside the folder.
 * Returns the folder.
 */
export async function tinyWorkspace(
  options: TinyWorkspaceOptions = {},
): Promise<string> {
  const dir = options.dir ?? await Deno.makeTempDir();
  const { backbone } = tinyModel(
    { dim: 16, depth: 2, heads: 2, classes: 3, seed: 1 },
    "linear",
  );
  await writeSafetensors(`${dir}/w.safetensors`, backbone, {
    metadata: { variant: JSON.stringify({ num_heads: 2 }) },
  });
  const conf = {
    epoch: "3",
    id_dataset: `${dir}/data`,
    batch_size: 8,
    save_path: `${dir}/runs/`,
    num_classes: 3,
    dataset: "synthetic",
    resize: 32,
    image_size: 28,
    synthetic: { train_per_class: 8, test_per_class: 4, size: 32, seed: 0 },
    ...options.conf,
  };
  await Deno.writeTextFile(`${dir}/synthetic.json`, JSON.stringify(conf));
  return dir;
}
