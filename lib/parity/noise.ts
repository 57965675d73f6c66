/**
 * Recomputes the reference's noisy labels for every dataset and rate that a
 * `noise_golden.json` lists, so that a parity check can compare them with
 * the golden ones.
 *
 * The file: an optional top-level `seed` (default 0), and one object per
 * dataset holding `clean` (the labels in the reference's loader order) and
 * `noisy` (an object keyed by rate strings such as `"0.2"`). Only the keys of
 * `noisy` are read, never its labels. A dataset's `seed`, if present,
 * overrides the top-level one. The number of classes is the dataset's
 * `num_classes`, else the length of its `classes` array, else
 * `max(clean) + 1` (right only when the highest class occurs). Top-level
 * entries that are not objects with `clean` or `noisy` are ignored.
 *
 * @module
 */
import { join } from "node:path";
import { symmetricNoise } from "../noise/label_noise.ts";
import type { HostTensor } from "../weights/host_tensor.ts";

/** The fixture's file name inside the fixture folder. */
export const noiseGoldenFile = "noise_golden.json";

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readSeed(value: unknown, where: string, file: string): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < 0 ||
    value > 0xffffffff
  ) {
    throw new RangeError(
      `${file}: ${where} "seed" must be an integer in [0, 4294967295], got ${
        JSON.stringify(value)
      }`,
    );
  }
  return value;
}

function readClean(entry: Json, name: string, file: string): Int32Array {
  const clean = entry.clean;
  if (!Array.isArray(clean)) {
    throw new TypeError(
      `${file}: dataset "${name}" needs a "clean" array of labels`,
    );
  }
  const out = new Int32Array(clean.length);
  for (let i = 0; i < clean.length; i++) {
    const y = clean[i];
    if (typeof y !== "number" || !Number.isInteger(y) || y < 0) {
      throw new TypeError(
        `${file}: dataset "${name}" clean[${i}] is ${
          JSON.stringify(y)
        }, expected a non-negative integer`,
      );
    }
    out[i] = y;
  }
  return out;
}

function readNumClasses(
  entry: Json,
  clean: Int32Array,
  name: string,
  file: string,
): number {
  if (entry.num_classes !== undefined) {
    const k = entry.num_classes;
    if (typeof k !== "number" || !Number.isInteger(k) || k < 2) {
      throw new RangeError(
        `${file}: dataset "${name}" num_classes is ${
          JSON.stringify(k)
        }, expected an integer >= 2`,
      );
    }
    return k;
  }
  if (Array.isArray(entry.classes)) return entry.classes.length;
  let max = -1;
  for (const y of clean) if (y > max) max = y;
  return max + 1;
}

function readRateKeys(entry: Json, name: string, file: string): string[] {
  if (!isObject(entry.noisy)) {
    throw new TypeError(
      `${file}: dataset "${name}" needs a "noisy" object keyed by rate`,
    );
  }
  return Object.keys(entry.noisy);
}

function parseRate(key: string, name: string, file: string): number {
  const rate = key.trim() === "" ? NaN : Number(key);
  if (!(rate >= 0 && rate <= 1)) {
    throw new RangeError(
      `${file}: dataset "${name}" noisy key "${key}" is not a noise rate in [0, 1]`,
    );
  }
  return rate;
}

/**
 * Reads `<dir>/noise_golden.json` and returns, for every dataset and rate
 * key it lists, the symmetric noisy labels this project computes from the
 * clean ones, as `noise.<dataset>.<rate key>` int64 tensors of shape [N].
 */
export async function noiseParity(
  dir: string,
): Promise<Map<string, HostTensor>> {
  const file = join(dir, noiseGoldenFile);
  let doc: unknown;
  try {
    doc = JSON.parse(await Deno.readTextFile(file));
  } catch (err) {
    throw new Error(
      `Cannot read noise fixture "${file}": ${(err as Error).message}`,
    );
  }
  if (!isObject(doc)) {
    throw new TypeError(`${file}: expected a JSON object at the top level`);
  }
  const topSeed = doc.seed === undefined
    ? 0
    : readSeed(doc.seed, "top-level", file);
  const out = new Map<string, HostTensor>();
  for (const [name, entry] of Object.entries(doc)) {
    if (!isObject(entry) || (!("clean" in entry) && !("noisy" in entry))) {
      continue;
    }
    const clean = readClean(entry, name, file);
    const numClasses = readNumClasses(entry, clean, name, file);
    const seed = entry.seed === undefined
      ? topSeed
      : readSeed(entry.seed, `dataset "${name}"`, file);
    for (const key of readRateKeys(entry, name, file)) {
      const rate = parseRate(key, name, file);
      let noisy: Int32Array;
      try {
        ({ noisy } = symmetricNoise(clean, numClasses, rate, { seed }));
      } catch (err) {
        throw new RangeError(
          `${file}: dataset "${name}" rate "${key}": ${(err as Error).message}`,
        );
      }
      const data = new BigInt64Array(noisy.length);
      for (let i = 0; i < noisy.length; i++) data[i] = BigInt(noisy[i]);
      out.set(`noise.${name}.${key}`, {
        dtype: "I64",
        shape: [noisy.length],
        data,
      });
    }
  }
  return out;
}
