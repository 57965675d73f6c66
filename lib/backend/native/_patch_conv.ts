/**
 * A convolution whose stride equals its kernel size and that has no padding
 * or dilation (the ViT patch embedding, or any 1x1 conv) is a matmul:
 * `[B*oh*ow, kh*kw*C] @ [kh*kw*C, O]`, the left side gathered from NHWC input.
 *
 * @module
 */

/** Geometry of a non-overlapping NHWC patch convolution. */
export interface PatchConvPlan {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  kh: number;
  kw: number;
  outH: number;
  outW: number;
  outC: number;
}

/** The fields of tfjs's `Conv2DInfo` that decide eligibility. */
export interface ConvGeometry {
  batchSize: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  dataFormat: string;
  padInfo: { top: number; left: number; bottom: number; right: number };
}

/** The plan for a convolution, or undefined when it is not a patch conv. */
export function planPatchConv(info: ConvGeometry): PatchConvPlan | undefined {
  const p = info.padInfo;
  const eligible = info.dataFormat === "channelsLast" &&
    info.dilationHeight === 1 && info.dilationWidth === 1 &&
    info.strideHeight === info.filterHeight &&
    info.strideWidth === info.filterWidth &&
    p.top === 0 && p.left === 0 && p.bottom === 0 && p.right === 0 &&
    info.outHeight * info.filterHeight <= info.inHeight &&
    info.outWidth * info.filterWidth <= info.inWidth;
  if (!eligible) return undefined;
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
  };
}

/** Rows of the patch matrix: `batch * outH * outW`. */
export function patchRows(plan: PatchConvPlan): number {
  return plan.batch * plan.outH * plan.outW;
}

/** Columns of the patch matrix: `kh * kw * inC` (the filter's `[kh, kw, C]`). */
export function patchCols(plan: PatchConvPlan): number {
  return plan.kh * plan.kw * plan.inC;
}

/**
 * The patch matrix of NHWC `x`, or `x` itself when it already is one
 * (a 1x1 conv over the whole image).
 */
export function gatherPatches(
  x: Float32Array,
  plan: PatchConvPlan,
): Float32Array {
  const { batch, inH, inW, inC, kh, kw, outH, outW } = plan;
  if (kh === 1 && kw === 1 && outH === inH && outW === inW) return x;
  const rowLen = kw * inC; // one patch row is contiguous in NHWC
  const out = new Float32Array(patchRows(plan) * patchCols(plan));
  let o = 0;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < outH; i++) {
      for (let j = 0; j < outW; j++) {
        for (let r = 0; r < kh; r++) {
          const src = ((b * inH + i * kh + r) * inW + j * kw) * inC;
          out.set(x.subarray(src, src + rowLen), o);
          o += rowLen;
        }
      }
    }
  }
  return out;
}
