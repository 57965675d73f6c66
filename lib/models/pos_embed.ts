/**
 * DINOv2's position-embedding interpolation, computed on the host exactly as
 * PyTorch's `F.interpolate(mode="bicubic", align_corners=False)` does with an
 * explicit `scale_factor = (w0 + 0.1) / M`.
 *
 * Position embeddings are frozen, so this runs once per input size.
 *
 * @module
 */
import type { HostTensor } from "../weights/host_tensor.ts";

/** The offset DINOv2 adds to the patch count before dividing (avoids fp rounding to w0 - 1). */
export const INTERPOLATE_OFFSET = 0.1;

/** PyTorch's bicubic convolution constant. */
const A = -0.75;
const fr = Math.fround;

// PyTorch's cubic_convolution1/2 and get_cubic_upsample_coefficients, in float32.
function cubic1(x: number): number {
  return fr(fr(fr(fr(fr(A + 2) * x) - fr(A + 3)) * x) * x) + 1;
}
function cubic2(x: number): number {
  return fr(fr(fr(fr(fr(A * x) - fr(5 * A)) * x) + fr(8 * A)) * x) - fr(4 * A);
}
function coefficients(t: number): [number, number, number, number] {
  return [
    fr(cubic2(fr(t + 1))),
    fr(cubic1(t)),
    fr(cubic1(fr(1 - t))),
    fr(cubic2(fr(2 - t))),
  ];
}

/** Source index and fraction for each output index along one axis. */
function axisTaps(
  outSize: number,
  scaleFactor: number,
): { index: Int32Array; t: Float32Array } {
  // PyTorch: area_pixel_compute_scale gives 1/scale_factor (computed in double,
  // used as float); source = scale * (dst + 0.5) - 0.5, not clamped for cubic.
  const scale = fr(1 / scaleFactor);
  const index = new Int32Array(outSize);
  const t = new Float32Array(outSize);
  for (let d = 0; d < outSize; d++) {
    const src = fr(fr(scale * fr(d + 0.5)) - 0.5);
    const i = Math.floor(src);
    index[d] = i;
    t[d] = fr(src - i);
  }
  return { index, t };
}

/**
 * Bicubic resize of a channel-last grid `[inH, inW, C]` to `[outH, outW, C]`
 * with PyTorch's source-coordinate rule for an explicit scale factor and
 * clamped borders.
 */
export function bicubicResize(
  grid: Float32Array,
  inH: number,
  inW: number,
  channels: number,
  out: { height: number; width: number; scaleH: number; scaleW: number },
): Float32Array {
  if (grid.length !== inH * inW * channels) {
    throw new RangeError(
      `bicubicResize(): grid of length ${grid.length} is not ${inH}x${inW}x${channels}`,
    );
  }
  const ys = axisTaps(out.height, out.scaleH);
  const xs = axisTaps(out.width, out.scaleW);
  const result = new Float32Array(out.height * out.width * channels);
  const clampY = (y: number) => Math.min(Math.max(y, 0), inH - 1);
  const clampX = (x: number) => Math.min(Math.max(x, 0), inW - 1);
  const rowValues = new Float32Array(4);
  for (let oy = 0; oy < out.height; oy++) {
    const wy = coefficients(ys.t[oy]);
    for (let ox = 0; ox < out.width; ox++) {
      const wx = coefficients(xs.t[ox]);
      const o = (oy * out.width + ox) * channels;
      for (let c = 0; c < channels; c++) {
        // Interpolate along x for the four rows, then along y (PyTorch's order).
        for (let k = 0; k < 4; k++) {
          const row = clampY(ys.index[oy] - 1 + k) * inW;
          let acc = 0;
          for (let j = 0; j < 4; j++) {
            const v = grid[(row + clampX(xs.index[ox] - 1 + j)) * channels + c];
            acc = fr(acc + fr(v * wx[j]));
          }
          rowValues[k] = acc;
        }
        let acc = 0;
        for (let k = 0; k < 4; k++) acc = fr(acc + fr(rowValues[k] * wy[k]));
        result[o + c] = acc;
      }
    }
  }
  return result;
}

/**
 * `interpolate_pos_encoding` for an input of `height x width` pixels: the
 * pre-trained `pos_embed` [1, 1 + M*M, D] resized to [1, 1 + h0*w0, D] with
 * h0 = height / patch, w0 = width / patch. Returned unchanged when the grid
 * already matches (the reference returns it as is for a square input of the
 * training size).
 */
export function interpolatePosEmbed(
  posEmbed: HostTensor,
  height: number,
  width: number,
  patchSize: number,
): HostTensor {
  const [one, n, dim] = posEmbed.shape;
  if (posEmbed.shape.length !== 3 || one !== 1) {
    throw new RangeError(
      `pos_embed must be [1, N, D], got [${posEmbed.shape}]`,
    );
  }
  const m = Math.round(Math.sqrt(n - 1));
  if (m * m !== n - 1) {
    throw new RangeError(
      `pos_embed has ${n - 1} patch positions, not a square grid`,
    );
  }
  const h0 = Math.floor(height / patchSize);
  const w0 = Math.floor(width / patchSize);
  if (h0 < 1 || w0 < 1) {
    throw new RangeError(
      `Input of ${height}x${width} px is smaller than one ${patchSize}px patch`,
    );
  }
  const data = posEmbed.data as Float32Array;
  if (h0 * w0 === m * m && h0 === w0) return posEmbed;
  const resized = bicubicResize(data.subarray(dim), m, m, dim, {
    height: h0,
    width: w0,
    scaleH: (h0 + INTERPOLATE_OFFSET) / m,
    scaleW: (w0 + INTERPOLATE_OFFSET) / m,
  });
  const out = new Float32Array((1 + h0 * w0) * dim);
  out.set(data.subarray(0, dim), 0);
  out.set(resized, dim);
  return { dtype: "F32", shape: [1, 1 + h0 * w0, dim], data: out };
}
