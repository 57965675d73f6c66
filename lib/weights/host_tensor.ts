/**
 * Plain typed-array tensors: what weight files, fixtures and parity outputs
 * hold before (or instead of) becoming tfjs tensors.
 *
 * @module
 */

/** Element types a {@linkcode HostTensor} can hold (safetensors spelling). */
export type HostDType = "F32" | "I64" | "I32" | "U8";

/** A dense row-major tensor in host memory. */
export interface HostTensor {
  dtype: HostDType;
  shape: number[];
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
}

/** Number of elements of a shape (1 for a scalar `[]`). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A float32 host tensor; checks that `data` fills `shape`. */
export function f32(shape: number[], data: Float32Array): HostTensor {
  if (data.length !== sizeOf(shape)) {
    throw new RangeError(
      `Float32 data of length ${data.length} does not fill shape [${shape}]`,
    );
  }
  return { dtype: "F32", shape, data };
}

/** The values of a host tensor as float32 (integers converted). */
export function toFloat32(t: HostTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  const out = new Float32Array(t.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Number(t.data[i]);
  return out;
}
