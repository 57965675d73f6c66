/**
 * PIL's bilinear resize (`Image.resize(size, Image.BILINEAR)`), bit for bit.
 *
 * torchvision's `Resize((256, 256))` on a PIL image calls this. It is not the
 * textbook 4-tap bilinear: Pillow's `ImagingResample` convolves with a
 * triangle filter whose support grows with the downscale factor (so shrinking
 * is antialiased), samples at half-pixel centres, normalises each output's
 * weights, and computes in 22-bit fixed point with the horizontal pass first
 * and the intermediate rounded to uint8. libvips' kernels differ from it by
 * up to a few levels, so this is done here, in integers, exactly as Pillow
 * does (Pillow 9, `libImaging/Resample.c`).
 *
 * @module
 */
import type { RawImage } from "./image.ts";

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);

/** Per-output-pixel taps of one axis: first input index, count, weights. */
interface Taps {
  /** `[first, count]` per output index. */
  bounds: Int32Array;
  /** `size` fixed-point weights per output index (unused tail is 0). */
  weights: Int32Array;
  /** Row length of `weights`. */
  size: number;
}

const tapsCache = new Map<string, Taps>();

/** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter. */
function taps(inSize: number, outSize: number): Taps {
  const key = `${inSize}>${outSize}`;
  const hit = tapsCache.get(key);
  if (hit) return hit;
  const scale = inSize / outSize;
  const filterScale = scale < 1 ? 1 : scale;
  const support = filterScale; // the triangle's support is 1
  const size = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * size);
  const k = new Float64Array(size);
  const inv = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * inv);
      const w = t < 1 ? 1 - t : 0;
      k[x] = w;
      sum += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? k[x] / sum : k[x];
      weights[xx * size + x] = Math.trunc(
        w < 0
          ? -0.5 + w * (1 << PRECISION_BITS)
          : 0.5 + w * (1 << PRECISION_BITS),
      );
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  const t = { bounds, weights, size };
  if (tapsCache.size > 64) tapsCache.clear();
  tapsCache.set(key, t);
  return t;
}

/** Options of {@linkcode resizeBilinear}. */
export interface ResizeOptions {
  /**
   * Where to write the result (length >= width * height * channels); a new
   * array when omitted. Must not alias the input.
   * @default undefined
   */
  out?: Uint8Array;
}

/**
 * Resize to `width` x `height` as Pillow's `resize((width, height),
 * BILINEAR)` does; channels are resampled independently.
 *
 * @throws RangeError for sizes that are not positive integers.
 */
export function resizeBilinear(
  img: RawImage,
  size: { width: number; height: number },
  options: ResizeOptions = {},
): RawImage {
  const { width, height } = size;
  const c = img.channels;
  for (
    const [key, v] of [["width", width], ["height", height], [
      "source width",
      img.width,
    ], ["source height", img.height]] as const
  ) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new RangeError(
        `Cannot resize: ${key} must be a positive integer, got ${v}`,
      );
    }
  }
  if (img.data.length < img.width * img.height * c) {
    throw new RangeError(
      `Cannot resize: pixel data of length ${img.data.length} is shorter than ${img.width}x${img.height}x${c}`,
    );
  }
  const out = options.out ?? new Uint8Array(width * height * c);
  if (out.length < width * height * c) {
    throw new RangeError(
      `Cannot resize: output of length ${out.length} is shorter than ${width}x${height}x${c}`,
    );
  }
  const needH = width !== img.width;
  const needV = height !== img.height;
  if (!needH && !needV) {
    out.set(img.data.subarray(0, width * height * c));
    return { data: out, width, height, channels: c };
  }
  const vt = needV ? taps(img.height, height) : null;
  let src = img.data;
  let rowsFirst = 0;
  if (needH) {
    const ht = taps(img.width, width);
    // Only rows the vertical pass reads are resampled horizontally.
    let rowsEnd = img.height;
    if (vt) {
      rowsFirst = vt.bounds[0];
      rowsEnd = vt.bounds[(height - 1) * 2] + vt.bounds[(height - 1) * 2 + 1];
    }
    const tmp = needV ? scratch((rowsEnd - rowsFirst) * width * c) : out;
    horizontal(img.data, img.width, c, rowsFirst, rowsEnd, ht, width, tmp);
    src = tmp;
  }
  if (vt) vertical(src, width, c, rowsFirst, vt, height, out);
  return { data: out, width, height, channels: c };
}

let scratchBuffer = new Uint8Array(0);

/** A reusable intermediate buffer (the resize is synchronous, so one suffices). */
function scratch(n: number): Uint8Array {
  if (scratchBuffer.length < n) scratchBuffer = new Uint8Array(n);
  return scratchBuffer;
}

function clip8(s: number): number {
  const v = s >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function horizontal(
  src: Uint8Array,
  inW: number,
  c: number,
  rowsFirst: number,
  rowsEnd: number,
  t: Taps,
  outW: number,
  dst: Uint8Array,
): void {
  const { bounds, weights, size } = t;
  let d = 0;
  for (let y = rowsFirst; y < rowsEnd; y++) {
    const row = y * inW * c;
    if (c === 3) {
      for (let xx = 0; xx < outW; xx++) {
        const n = bounds[xx * 2 + 1];
        const k0 = xx * size;
        let p = row + bounds[xx * 2] * 3;
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let x = 0; x < n; x++, p += 3) {
          const w = weights[k0 + x];
          s0 += src[p] * w;
          s1 += src[p + 1] * w;
          s2 += src[p + 2] * w;
        }
        dst[d++] = clip8(s0);
        dst[d++] = clip8(s1);
        dst[d++] = clip8(s2);
      }
    } else {
      for (let xx = 0; xx < outW; xx++) {
        const n = bounds[xx * 2 + 1];
        const k0 = xx * size;
        const p = row + bounds[xx * 2] * c;
        for (let ch = 0; ch < c; ch++) {
          let s = HALF;
          for (let x = 0; x < n; x++) {
            s += src[p + x * c + ch] * weights[k0 + x];
          }
          dst[d++] = clip8(s);
        }
      }
    }
  }
}

let accBuffer = new Int32Array(0);

function vertical(
  src: Uint8Array,
  w: number,
  c: number,
  rowsFirst: number,
  t: Taps,
  outH: number,
  dst: Uint8Array,
): void {
  const { bounds, weights, size } = t;
  const rowLen = w * c;
  if (accBuffer.length < rowLen) accBuffer = new Int32Array(rowLen);
  const acc = accBuffer;
  for (let yy = 0; yy < outH; yy++) {
    const first = bounds[yy * 2] - rowsFirst;
    const n = bounds[yy * 2 + 1];
    acc.fill(HALF, 0, rowLen);
    // Row by row: the inner loop walks memory contiguously.
    for (let y = 0; y < n; y++) {
      const wgt = weights[yy * size + y];
      const row = (first + y) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += src[row + i] * wgt;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) dst[o + i] = clip8(acc[i]);
  }
}
