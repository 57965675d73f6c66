/**
 * Float32 views of tensor data inside the tfjs `wasm` and `cpu` backends, so
 * that sgemm reads inputs and writes outputs in place, without copies.
 *
 * These reach into backend internals (tfjs 4.x): the wasm backend keeps each
 * tensor at `dataIdMap.get(dataId).memoryOffset` in its heap, the cpu backend
 * keeps a typed array at `data.get(dataId).values`.
 *
 * @module
 */
import type { tf } from "../tf.ts";

type TensorInfo = tf.TensorInfo;

/** Allocation and access to float32 tensor memory of one backend. */
export interface TensorMemory {
  /** A new float32 output tensor (contents undefined). */
  alloc(shape: number[]): TensorInfo;
  /**
   * The float32 data of a tensor, or undefined when it cannot be viewed.
   * Wasm views die when the heap grows: take them after every `alloc`.
   */
  view(info: TensorInfo): Float32Array | undefined;
  /** Frees a tensor made by `alloc` that is not returned. */
  free(info: TensorInfo): void;
}

interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(id: unknown): { memoryOffset: number | null } | undefined };
  makeOutput(shape: number[], dtype: "float32"): TensorInfo;
  disposeData(id: unknown): boolean;
}

interface CpuBackendLike {
  data: { get(id: unknown): { values?: unknown } | undefined };
  makeTensorInfo(
    shape: number[],
    dtype: "float32",
    values: Float32Array,
  ): TensorInfo;
  disposeIntermediateTensorInfo(info: TensorInfo): void;
}

/** Number of values of a tensor of `shape`. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Memory access for the backend a kernel was called with. */
export function tensorMemory(
  backendName: "wasm" | "cpu",
  backend: unknown,
): TensorMemory {
  if (backendName === "wasm") {
    const b = backend as WasmBackendLike;
    return {
      alloc: (shape) => b.makeOutput(shape, "float32"),
      view(info) {
        const offset = b.dataIdMap.get(info.dataId)?.memoryOffset;
        if (offset == null || info.dtype !== "float32") return undefined;
        return new Float32Array(
          b.wasm.HEAPU8.buffer,
          offset,
          sizeOf(info.shape),
        );
      },
      free: (info) => void b.disposeData(info.dataId),
    };
  }
  const b = backend as CpuBackendLike;
  return {
    alloc: (shape) =>
      b.makeTensorInfo(shape, "float32", new Float32Array(sizeOf(shape))),
    view(info) {
      const values = b.data.get(info.dataId)?.values;
      if (!(values instanceof Float32Array) || info.dtype !== "float32") {
        return undefined;
      }
      return values.length === sizeOf(info.shape) ? values : undefined;
    },
    free: (info) => b.disposeIntermediateTensorInfo(info),
  };
}
