/**
 * The one TensorFlow.js build this project uses.
 *
 * Every module imports `tf` from here, never from a tfjs package directly:
 * - tfjs packages resolve to their CommonJS builds under Deno; importing an
 *   ESM entry point anywhere would create a second engine, and a backend
 *   registered in one engine is missing from the other.
 * - `@tensorflow/tfjs-core` alone registers no gradients; the union package
 *   `@tensorflow/tfjs` registers them all (and the chained-op prototypes).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs";

export { tf };
export type {
  Scalar,
  Tensor,
  Tensor1D,
  Tensor2D,
  Tensor3D,
  Tensor4D,
  Variable,
} from "@tensorflow/tfjs";

/**
 * Like `tf.tidy` for functions that return host values (numbers, typed
 * arrays): every tensor made inside `fn` is disposed when it returns.
 */
export function tidyHost<T>(fn: () => T): T {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}

/**
 * {@linkcode tidyHost} for async functions: every tensor made inside `fn`,
 * across its awaits, is disposed when it settles. Nothing else may make
 * tensors while `fn` awaits (the scope is the engine's, not the caller's).
 */
export async function tidyHostAsync<T>(fn: () => Promise<T>): Promise<T> {
  tf.engine().startScope();
  try {
    return await fn();
  } finally {
    tf.engine().endScope();
  }
}

/** A float tensor's values on the host, read without blocking (webgpu has no sync read under Deno). */
export async function readFloats(t: tf.Tensor): Promise<Float32Array> {
  return await t.data() as Float32Array;
}

/**
 * Reads tensors to the host so that `dataSync()` on them afterwards returns
 * the backend's cached copy: synchronous readers (checkpoints, parity) then
 * work on webgpu too.
 */
export async function download(tensors: Iterable<tf.Tensor>): Promise<void> {
  await Promise.all([...tensors].map((t) => t.data()));
}
