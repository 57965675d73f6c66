/**
 * The `webgpu` backend: TensorFlow.js on a GPU through Deno's built-in
 * WebGPU (wgpu over Vulkan on Linux, Metal on macOS, D3D12 on Windows), with
 * nothing to download and no CUDA version to match.
 *
 * Read in this order:
 * - `adapter.ts`: what the adapter is (vendor, architecture, device), and
 *   whether it is a real GPU. `--backend auto` takes WebGPU only on a real
 *   one: software adapters such as Mesa's lavapipe are correct but slower
 *   than wasm + OpenBLAS.
 * - `device.ts`: loading tfjs-backend-webgpu, and watching its device. A
 *   lost device, a buffer over the adapter's limits and GPU out-of-memory
 *   become {@linkcode GpuLostError} / {@linkcode GpuOutOfMemoryError} with
 *   what to do (the trainer keeps its last good checkpoint, as for a NaN
 *   loss; out of memory names the batch size and a smaller one).
 * - `memory.ts`: tfjs's GPU memory figures, for flat-memory tests and the
 *   peak in `gpu:check`.
 *
 * What the backend computes is what the wasm and cpu backends compute: the
 * model's hand-written backward passes (frozen blocks, the CLS-only last
 * block) are made of tfjs ops, and the OpenBLAS kernels of
 * `../native/` replace wasm/cpu kernels only, so on webgpu every op is
 * tfjs-backend-webgpu's own. The one difference a caller sees: webgpu has
 * no synchronous read under Deno (tfjs reads through an OffscreenCanvas
 * 2d context, which Deno lacks), so host reads are `await t.data()`; the
 * learner and the trainer read that way on every backend.
 *
 * @module
 */
export {
  adapterLine,
  type AdapterReport,
  autoReason,
  isRealGpu,
  probeAdapter,
} from "./adapter.ts";
export {
  checkGpu,
  type GpuContext,
  gpuFailure,
  GpuLostError,
  GpuOutOfMemoryError,
  loadWebGpuBackend,
  webGpuAdapter,
} from "./device.ts";
export { type GpuMemory, gpuMemory, PeakGpuMemory } from "./memory.ts";
