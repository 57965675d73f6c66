/**
 * MedMNIST v3 `.npz` files (`bloodmnist`, `organcmnist`, ...), as the
 * `medmnist` package loads them with `as_rgb=True`.
 *
 * Only the requested split's `<split>_images` and `<split>_labels` members
 * are read. Images stay the uint8 array NumPy stored; `image(i)` is a view
 * of one image, never a copy. Grayscale (N x H x W) images are returned as
 * one channel; the transforms repeat it to RGB as `as_rgb` does.
 *
 * @module
 */
import { openZip } from "../io/zip.ts";
import type { Dataset } from "./dataset.ts";
import type { RawImage } from "./image.ts";
import { npyToInt32, parseNpy } from "./npy.ts";

/** Class names of the MedMNIST flags this project trains on (from `medmnist.INFO`). */
export const medmnistClasses: Record<string, string[]> = {
  bloodmnist: [
    "basophil",
    "eosinophil",
    "erythroblast",
    "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
    "lymphocyte",
    "monocyte",
    "neutrophil",
    "platelet",
  ],
  organcmnist: [
    "bladder",
    "femur-left",
    "femur-right",
    "heart",
    "kidney-left",
    "kidney-right",
    "liver",
    "lung-left",
    "lung-right",
    "pancreas",
    "spleen",
  ],
};

/** Options of {@linkcode loadMedmnist}. */
export interface MedmnistOptions {
  /** The MedMNIST flag, e.g. `"bloodmnist"`: names the file and the classes. */
  flag: string;
  /** Which split to read. */
  split: "train" | "val" | "test";
  /**
   * Image size of the file: `<flag>_<size>.npz` (size 28 is `<flag>.npz`).
   * When omitted, the first of `<flag>_224.npz` and `<flag>.npz` that exists.
   * @default undefined
   */
  size?: number;
  /**
   * An explicit `.npz` path, instead of one derived from `root` and `flag`.
   * @default undefined
   */
  file?: string;
  /**
   * Number of classes, for flags without known class names.
   * @default the flag's class count, else max label + 1
   */
  numClasses?: number;
  /**
   * Largest uncompressed `.npy` member to read; see `openZip`.
   * @default 4 GiB, or `CUFIT_ZIP_MAX_MEMBER_BYTES`
   */
  maxMemberBytes?: number;
  /**
   * Largest total to inflate from the archive; see `openZip`.
   * @default 8 GiB, or `CUFIT_ZIP_MAX_TOTAL_BYTES`
   */
  maxTotalBytes?: number;
}

/**
 * Load one split of a MedMNIST `.npz` file from `root`.
 *
 * @throws Error naming the file and key when a member is missing, has the
 * wrong dtype or shape, or a label is out of range.
 */
export async function loadMedmnist(
  root: string,
  options: MedmnistOptions,
): Promise<Dataset> {
  const { flag, split } = options;
  const file = options.file ?? await findFile(root, flag, options.size);
  const zip = await openZip(file, {
    maxMemberBytes: options.maxMemberBytes,
    maxTotalBytes: options.maxTotalBytes,
  });
  const names = zip.names();
  const base = file.split("/").pop() ?? file;
  const member = async (key: string) => {
    const entry = `${key}.npy`;
    if (!names.includes(entry)) {
      const keys = names.map((n) => n.replace(/\.npy$/, "")).join(", ");
      throw new Error(
        `MedMNIST file "${file}" has no key "${key}" (it has ${keys})`,
      );
    }
    return parseNpy(await zip.read(entry), { name: `${file}:${key}` });
  };
  const images = await member(`${split}_images`);
  const labelsArr = await member(`${split}_labels`);

  const imgKey = `"${file}" key "${split}_images"`;
  if (!(images.data instanceof Uint8Array) || images.descr.endsWith("b1")) {
    throw new Error(
      `MedMNIST file ${imgKey} has dtype '${images.descr}', expected uint8 ('|u1')`,
    );
  }
  const s = images.shape;
  const rgb = s.length === 4 && s[3] === 3;
  const gray = s.length === 3 || (s.length === 4 && s[3] === 1);
  if (!rgb && !gray) {
    throw new Error(
      `MedMNIST file ${imgKey} has shape (${
        s.join(", ")
      }), expected N x H x W or N x H x W x 3`,
    );
  }
  const [n, height, width] = s;
  const channels: 1 | 3 = rgb ? 3 : 1;
  const pixels = images.data;

  const labKey = `"${file}" key "${split}_labels"`;
  const ls = labelsArr.shape;
  if (!(ls.length === 2 && ls[1] === 1) && ls.length !== 1) {
    throw new Error(
      `MedMNIST file ${labKey} has shape (${ls.join(", ")}), expected N x 1`,
    );
  }
  if (ls[0] !== n) {
    throw new Error(
      `MedMNIST file ${labKey} has ${ls[0]} labels for ${n} images`,
    );
  }
  if (
    labelsArr.data instanceof Float32Array ||
    labelsArr.data instanceof Float64Array
  ) {
    throw new Error(
      `MedMNIST file ${labKey} has dtype '${labelsArr.descr}', expected an integer dtype`,
    );
  }
  const labels = Int32Array.from(
    npyToInt32(labelsArr, { name: `${file}:${split}_labels` }),
  );

  const known = medmnistClasses[flag];
  let max = -1;
  for (const v of labels) if (v > max) max = v;
  const numClasses = options.numClasses ?? known?.length ?? max + 1;
  for (let i = 0; i < n; i++) {
    if (labels[i] < 0 || labels[i] >= numClasses) {
      throw new Error(
        `MedMNIST file ${labKey} has label ${
          labels[i]
        } at index ${i}, expected 0 to ${numClasses - 1}`,
      );
    }
  }
  const classes = known && known.length === numClasses
    ? [...known]
    : Array.from({ length: numClasses }, (_, i) => String(i));
  const stride = height * width * channels;
  return {
    name: flag,
    classes,
    numClasses,
    length: n,
    labels,
    describe: (i) => `${base}:${split}[${i}]`,
    image(i: number): Promise<RawImage> {
      if (!Number.isInteger(i) || i < 0 || i >= n) {
        return Promise.reject(
          new RangeError(
            `MedMNIST "${flag}" ${split} has no sample ${i} (it has ${n})`,
          ),
        );
      }
      const data = pixels.subarray(i * stride, (i + 1) * stride);
      return Promise.resolve({ data, width, height, channels });
    },
  };
}

async function findFile(
  root: string,
  flag: string,
  size?: number,
): Promise<string> {
  const candidates = size === undefined
    ? [`${flag}_224.npz`, `${flag}.npz`]
    : size === 28
    ? [`${flag}.npz`, `${flag}_28.npz`]
    : [`${flag}_${size}.npz`];
  for (const c of candidates) {
    const path = `${root}/${c}`;
    try {
      if ((await Deno.stat(path)).isFile) return path;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  throw new Error(
    `MedMNIST "${flag}" not found: expected ${
      candidates.map((c) => `"${root}/${c}"`).join(" or ")
    }; download it with \`deno task fetch:medmnist ${flag} --size ${
      size ?? 224
    }\``,
  );
}
