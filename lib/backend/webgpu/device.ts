/**
 * The tfjs `webgpu` backend on Deno's WebGPU, and the watch kept on its
 * device: a lost device, and the errors WebGPU reports out of band.
 *
 * tfjs-backend-webgpu does not check the device's errors: a buffer larger
 * than the adapter allows, or one that does not fit in GPU memory, becomes a
 * `GPUValidationError` / `GPUOutOfMemoryError` event and the op silently
 * yields zeros. A lost device makes reads reject. So the trainer calls
 * {@linkcode checkGpu} after every step and before every checkpoint, and
 * passes any exception through {@linkcode gpuFailure}: both turn what
 * happened into an error a user can act on.
 *
 * @module
 */
import { tf } from "../tf.ts";
import { type AdapterReport, describe } from "./adapter.ts";

/** The GPU device stopped (driver reset, device removed, destroyed). */
export class GpuLostError extends Error {
  override name = "GpuLostError";
}

/** A tensor did not fit in GPU memory or in one WebGPU buffer. */
export class GpuOutOfMemoryError extends Error {
  override name = "GpuOutOfMemoryError";
}

interface Watch {
  device: GPUDevice;
  adapter: AdapterReport;
  lost: { reason: string; message: string } | null;
  errors: GPUError[];
}

let watch: Watch | null = null;

/** The device tfjs's `webgpu` backend runs on, when that backend exists. */
function backendDevice(): GPUDevice | null {
  try {
    const b = tf.findBackend("webgpu") as unknown as { device?: GPUDevice };
    return b?.device ?? null;
  } catch {
    return null;
  }
}

/**
 * Registers and selects tfjs's `webgpu` backend (the package registers it
 * on import when `navigator.gpu` exists) and starts watching its device.
 * Returns the adapter's report, or throws with the reason it failed.
 */
export async function loadWebGpuBackend(): Promise<AdapterReport> {
  if (!(globalThis.navigator as Navigator | undefined)?.gpu) {
    throw new Error("this Deno has no navigator.gpu");
  }
  const adapter = await navigator.gpu.requestAdapter({
    powerPreference: "high-performance",
  });
  if (!adapter) {
    throw new Error(
      "no WebGPU adapter (no Vulkan, Metal or D3D12 driver found)",
    );
  }
  const report = describe(adapter);
  await import("@tensorflow/tfjs-backend-webgpu");
  if (!(await tf.setBackend("webgpu"))) {
    throw new Error("tfjs's webgpu backend did not initialize");
  }
  const device = backendDevice();
  if (device && watch?.device !== device) {
    const w: Watch = { device, adapter: report, lost: null, errors: [] };
    device.addEventListener("uncapturederror", (e) => {
      w.errors.push((e as GPUUncapturedErrorEvent).error);
    });
    device.lost.then((info) => {
      w.lost = { reason: String(info.reason), message: info.message };
    });
    watch = w;
  }
  return report;
}

/** The adapter of the running webgpu backend, if any. */
export function webGpuAdapter(): AdapterReport | null {
  return watch?.adapter ?? null;
}

/** Where a GPU failure happened, for the message. */
export interface GpuContext {
  /** Images per step. */
  batchSize?: number;
  /**
   * The flag that sets the batch size, for the hint; null when the task has
   * none (the hint then names the size only).
   * @default "--batch-size"
   */
  batchFlag?: string | null;
  /** Where it happened, e.g. `epoch 3, batch 12`. */
  where?: string;
  /** Run folder whose last good checkpoint is kept. */
  runDir?: string;
}

function lostError(ctx: GpuContext): GpuLostError {
  const lost = watch!.lost!;
  const at = ctx.where ? ` at ${ctx.where}` : "";
  const kept = ctx.runDir
    ? `; the last good checkpoint is kept in ${ctx.runDir} (continue with --resume)`
    : "";
  return new GpuLostError(
    `The GPU device was lost${at} (${lost.reason}: ${
      lost.message || "no detail"
    })${kept}`,
  );
}

const MEMORY =
  /out of memory|exceeds .*limit|greater than the maximum buffer size|allocation failed/i;

/** Whether a WebGPU error (or its message) says a buffer did not fit. */
export function isMemoryError(
  error: { name?: string; message?: string },
): boolean {
  return error.name === "GPUOutOfMemoryError" ||
    error.constructor?.name === "GPUOutOfMemoryError" ||
    MEMORY.test(error.message ?? "");
}

/** The out-of-memory message: the batch size, and a smaller one to try. */
export function outOfMemoryMessage(detail: string, ctx: GpuContext): string {
  const at = ctx.where ? ` at ${ctx.where}` : "";
  const kept = ctx.runDir
    ? `; the last good checkpoint is kept in ${ctx.runDir}`
    : "";
  if (ctx.batchSize === undefined) {
    return `Out of GPU memory${at} (${detail}): use a smaller input or model${kept}`;
  }
  const smaller = Math.max(1, Math.floor(ctx.batchSize / 2));
  const flag = ctx.batchFlag === undefined ? "--batch-size" : ctx.batchFlag;
  const hint = ctx.batchSize <= 1
    ? "use a smaller input or model"
    : flag === null
    ? `try a batch size of ${smaller}`
    : `try ${flag} ${smaller}`;
  return `Out of GPU memory at batch size ${ctx.batchSize}${at} (${detail}): ${hint}${kept}`;
}

/**
 * Throws when the webgpu device was lost ({@linkcode GpuLostError}) or
 * reported an error since the last check ({@linkcode GpuOutOfMemoryError}
 * for memory, Error otherwise). A no-op on other backends.
 */
export function checkGpu(ctx: GpuContext = {}): void {
  if (!watch || tf.getBackend() !== "webgpu") return;
  if (watch.lost) throw lostError(ctx);
  const errors = watch.errors.splice(0);
  if (errors.length === 0) return;
  const first = errors.find(isMemoryError) ?? errors[0];
  const detail = first.message.split("\n")[0];
  if (isMemoryError(first)) {
    throw new GpuOutOfMemoryError(outOfMemoryMessage(detail, ctx));
  }
  const at = ctx.where ? ` at ${ctx.where}` : "";
  throw new Error(`WebGPU error${at}: ${detail}`);
}

/**
 * The error to raise for an exception thrown while the webgpu backend ran:
 * a {@linkcode GpuLostError} when the device is gone, the error the device
 * reported when it reported one, else `err` unchanged. A read rejects before
 * the device's `lost` promise settles, so this waits for it briefly.
 */
export async function gpuFailure(
  err: unknown,
  ctx: GpuContext = {},
): Promise<unknown> {
  if (!watch || tf.getBackend() !== "webgpu") return err;
  if (err instanceof GpuLostError || err instanceof GpuOutOfMemoryError) {
    return err;
  }
  if (!watch.lost) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      watch.device.lost,
      new Promise((r) => (timer = setTimeout(r, 250))),
    ]);
    clearTimeout(timer);
    // The lost handler registered first has run once `lost` settled.
    await Promise.resolve();
  }
  try {
    checkGpu(ctx);
  } catch (e) {
    return e;
  }
  const e = err as Error;
  if (e && typeof e.message === "string" && isMemoryError(e)) {
    return new GpuOutOfMemoryError(
      outOfMemoryMessage(e.message.split("\n")[0], ctx),
    );
  }
  return err;
}
