/**
 * GPU memory as tfjs's webgpu backend accounts for it.
 *
 * WebGPU does not report a device's memory use, so these are tfjs's own
 * figures: `inUse`, the bytes of live tensors on the GPU, and `pooled`, the
 * bytes of every GPU buffer tfjs holds (live tensors plus its reuse pool,
 * what the process really keeps on the device). A training loop is flat when
 * both, and the tensor count, are the same after every epoch.
 *
 * @module
 */
import { tf } from "../tf.ts";

/** One reading of {@linkcode gpuMemory}. */
export interface GpuMemory {
  /** Live tensors (every backend). */
  tensors: number;
  /** Bytes of live tensors' data (every backend). */
  bytes: number;
  /** Bytes of live tensors on the GPU (webgpu only, else null). */
  inUse: number | null;
  /** Bytes of all GPU buffers tfjs holds, pool included (webgpu only, else null). */
  pooled: number | null;
}

/** The current {@linkcode GpuMemory}. */
export function gpuMemory(): GpuMemory {
  const m = tf.memory() as tf.MemoryInfo & {
    numBytesInGPU?: number;
    numBytesAllocatedInGPU?: number;
  };
  const gpu = tf.getBackend() === "webgpu";
  return {
    tensors: m.numTensors,
    bytes: m.numBytes,
    inUse: gpu ? m.numBytesInGPU ?? null : null,
    pooled: gpu ? m.numBytesAllocatedInGPU ?? null : null,
  };
}

/** The largest `pooled` figure seen across {@linkcode PeakGpuMemory.sample} calls. */
export class PeakGpuMemory {
  #peak: number | null = null;

  /** Reads the current figures and keeps the peak; returns the reading. */
  sample(): GpuMemory {
    const m = gpuMemory();
    if (m.pooled !== null) this.#peak = Math.max(this.#peak ?? 0, m.pooled);
    return m;
  }

  /** Peak bytes of GPU buffers, or null where the backend reports none. */
  get bytes(): number | null {
    return this.#peak;
  }
}
