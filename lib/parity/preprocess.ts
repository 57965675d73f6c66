/**
 * Preprocessing parity: the test transform of every image in a folder, as
 * the reference's `[3, 224, 224]` tensors, for comparison with
 * `preprocess_golden.safetensors`.
 *
 * @module
 */
import { decodeImage } from "../data/image.ts";
import {
  defaults,
  testTransform,
  toChw,
  type TransformOptions,
} from "../data/transforms.ts";
import { f32, type HostTensor } from "../weights/host_tensor.ts";

/** Options of {@linkcode preprocessParity}. */
export interface PreprocessParityOptions {
  /**
   * Transform settings.
   * @default the reference's: Resize 256, CenterCrop 224, ImageNet mean/std
   */
  transform?: TransformOptions;
}

/**
 * For every `*.jpg`, `*.jpeg` and `*.png` directly in `dir` (any case), the
 * test transform as a channel-first F32 tensor `[3, crop, crop]`, keyed by
 * file name. Images of any mode (grayscale, RGBA, palette, 16-bit) are
 * converted as PIL's `convert("RGB")` would.
 *
 * @throws Error naming the folder when it cannot be read, or the image when
 * it cannot be decoded.
 */
export async function preprocessParity(
  dir: string,
  options: PreprocessParityOptions = {},
): Promise<Map<string, HostTensor>> {
  const crop = options.transform?.crop ?? defaults.crop;
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (
        /\.(jpe?g|png)$/i.test(e.name) &&
        (e.isFile ||
          (e.isSymlink && (await Deno.stat(`${dir}/${e.name}`)).isFile))
      ) {
        names.push(e.name);
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Preprocess parity folder "${dir}" does not exist`);
    }
    throw e;
  }
  names.sort();
  const out = new Map<string, HostTensor>();
  const nhwc = new Float32Array(crop * crop * 3);
  for (const name of names) {
    await testTransform(
      await decodeImage(`${dir}/${name}`),
      nhwc,
      0,
      options.transform,
    );
    out.set(name, f32([3, crop, crop], toChw(nhwc, crop)));
  }
  return out;
}
