/**
 * `deno task parity`: compute every golden key a fixtures folder supports and
 * compare with the goldens it holds.
 *
 * Sections run when their inputs are present:
 * - `rein`: `rein_model.safetensors` + `rein_golden.safetensors`;
 * - `backbone files`: `dinov2_backbone.pth` + `.safetensors` must load identically;
 * - `cufit`: `cufit_model1/2.safetensors` + `cufit_golden.safetensors`;
 * - `noise`: `noise_golden.json`;
 * - `preprocess`: every `*.jpg`, `*.jpeg`, `*.png`.
 *
 * @module
 */
import { join } from "node:path";
import type { HostTensor } from "../weights/host_tensor.ts";
import { readSafetensors } from "../weights/safetensors.ts";
import { compareTensor, type Comparison } from "./compare.ts";
import { backboneFilesAgree, cufitParity, reinParity } from "./model.ts";
import { noiseParity } from "./noise.ts";
import { preprocessParity } from "./preprocess.ts";

/** Golden keys that are inputs, not outputs. */
const INPUT_KEYS = new Set(["input", "input224", "rein_layer_in", "labels"]);
const isInputKey = (key: string) =>
  INPUT_KEYS.has(key) || /^step\d+\.(inputs|targets)$/.test(key);

/** What a parity run produced. */
export interface ParityReport {
  /** Everything computed, by golden key name. */
  computed: Map<string, HostTensor>;
  /** One row per computed key that has a golden. */
  comparisons: Comparison[];
  /** Golden output keys that nothing computed. */
  missing: string[];
  /** Sections that ran, and failures that are not per-key (e.g. backbone files). */
  sections: string[];
  problems: string[];
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The golden noisy labels of `noise_golden.json` as `noise.<dataset>.<rate>` tensors. */
export async function readNoiseGoldens(
  path: string,
): Promise<Map<string, HostTensor>> {
  const doc = JSON.parse(await Deno.readTextFile(path)) as Record<
    string,
    unknown
  >;
  const out = new Map<string, HostTensor>();
  for (const [name, value] of Object.entries(doc)) {
    if (typeof value !== "object" || value === null || !("noisy" in value)) {
      continue;
    }
    const noisy = (value as { noisy: Record<string, number[]> }).noisy;
    for (const [rate, labels] of Object.entries(noisy)) {
      out.set(`noise.${name}.${rate}`, {
        dtype: "I64",
        shape: [labels.length],
        data: BigInt64Array.from(labels, (v) => BigInt(v)),
      });
    }
  }
  return out;
}

/** Options of {@linkcode runParity}. */
export interface RunParityOptions {
  /** Progress lines. @default no output */
  log?: (line: string) => void;
}

/** Runs every section `dir` supports and compares with its goldens. */
export async function runParity(
  dir: string,
  options: RunParityOptions = {},
): Promise<ParityReport> {
  const log = options.log ?? (() => {});
  let isDir = false;
  try {
    isDir = Deno.statSync(dir).isDirectory;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (!isDir) {
    throw new Error(
      `Fixtures folder "${dir}" not found (the reference fixtures are in tests/fixtures/reference)`,
    );
  }
  const computed = new Map<string, HostTensor>();
  const noisyEntries = new Map<string, Uint8Array>();
  const goldens = new Map<string, HostTensor>();
  const sections: string[] = [];
  const problems: string[] = [];
  const has = (f: string) => exists(join(dir, f));
  const addGoldens = async (file: string) => {
    if (!has(file)) return;
    const { tensors } = await readSafetensors(join(dir, file));
    for (const [k, t] of tensors) if (!isInputKey(k)) goldens.set(k, t);
  };

  if (has("rein_model.safetensors") && has("rein_golden.safetensors")) {
    log("rein: backbone, Rein, loss, gradients, one Adam step");
    const r = await reinParity(dir);
    r.tensors.forEach((t, k) => computed.set(k, t));
    r.noisyEntries.forEach((m, k) => noisyEntries.set(k, m));
    await addGoldens("rein_golden.safetensors");
    sections.push("rein");
  }
  if (has("dinov2_backbone.pth") && has("dinov2_backbone.safetensors")) {
    log("backbone files: .pth and .safetensors");
    const diff = await backboneFilesAgree(dir);
    if (diff) {
      problems.push(`dinov2_backbone.pth and .safetensors differ: ${diff}`);
    }
    sections.push("backbone files");
  }
  if (
    has("cufit_golden.safetensors") && has("cufit_model1.safetensors") &&
    has("cufit_model2.safetensors")
  ) {
    log("cufit: training steps of LPM + IAM and LAM");
    const r = await cufitParity(dir);
    r.tensors.forEach((t, k) => computed.set(k, t));
    r.noisyEntries.forEach((m, k) => noisyEntries.set(k, m));
    await addGoldens("cufit_golden.safetensors");
    sections.push("cufit");
  }
  if (has("noise_golden.json")) {
    log("noise: symmetric label noise");
    (await noiseParity(dir)).forEach((t, k) => computed.set(k, t));
    (await readNoiseGoldens(join(dir, "noise_golden.json"))).forEach((t, k) =>
      goldens.set(k, t)
    );
    sections.push("noise");
  }
  const images = [...Deno.readDirSync(dir)].filter((e) =>
    e.isFile && /\.(jpe?g|png)$/i.test(e.name)
  );
  if (images.length > 0) {
    log(`preprocess: test transform of ${images.length} image(s)`);
    (await preprocessParity(dir)).forEach((t, k) => computed.set(k, t));
    await addGoldens("preprocess_golden.safetensors");
    sections.push("preprocess");
  }

  const comparisons: Comparison[] = [];
  for (const [key, t] of computed) {
    const golden = goldens.get(key);
    if (golden) {
      comparisons.push(
        compareTensor(key, t, golden, { noisyEntries: noisyEntries.get(key) }),
      );
    }
  }
  const missing = [...goldens.keys()].filter((k) => !computed.has(k));
  return { computed, comparisons, missing, sections, problems };
}

/** Whether a report passes: every comparison within bounds, nothing missing, no problem. */
export function parityPassed(report: ParityReport): boolean {
  return report.comparisons.every((c) => c.ok) && report.missing.length === 0 &&
    report.problems.length === 0;
}
