/**
 * Measures OpenBLAS native kernels against the original tfjs ones: GFLOP/s of
 * the ViT-S matmuls (16 images at 112 px = 1040 tokens) and the time of a
 * ViT-S block forward + backward to its input (frozen weights, as in CUFIT).
 *
 *   deno run --allow-ffi --allow-env --allow-read tasks/bench_kernels.ts \
 *     [--backends wasm,cpu] [--threads 2] [--iters 5] [--tokens 1040] [--slow]
 *
 * `--slow` adds the pure-JS cpu backend without native kernels (minutes).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { tf } from "../lib/backend/tf.ts";
import {
  type NativeBackendName,
  registerNativeKernels,
  unregisterNativeKernels,
} from "../lib/backend/native/kernels.ts";

/** ViT-S/14: width, heads, MLP width. */
const D = 384;
const HEADS = 6;
const MLP = 1536;

interface BenchResult {
  label: string;
  gemm: { shape: string; gflops: number }[];
  blockMs?: number;
}

/** Mean ms of `fn`; `fn` must not return a typed array from `tf.tidy` (tidy walks it). */
function timeMs(fn: () => void, iters: number): number {
  fn(); // warm-up (kernel setup, heap growth)
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) fn();
  return (performance.now() - t0) / iters;
}

/** [m, k] @ op(W) for the matmuls of one block, forward and input-gradient. */
function gemmShapes(tokens: number) {
  return [
    // name, a shape, b shape, transposeA, transposeB
    {
      name: `qkv   [${tokens}x${D}]x[${D}x${3 * D}]`,
      a: [tokens, D],
      b: [3 * D, D],
      tb: true,
    },
    {
      name: `fc1   [${tokens}x${D}]x[${D}x${MLP}]`,
      a: [tokens, D],
      b: [MLP, D],
      tb: true,
    },
    {
      name: `fc2   [${tokens}x${MLP}]x[${MLP}x${D}]`,
      a: [tokens, MLP],
      b: [D, MLP],
      tb: true,
    },
    {
      name: `dfc1  [${tokens}x${MLP}]x[${MLP}x${D}]`,
      a: [tokens, MLP],
      b: [MLP, D],
      tb: false,
    },
  ];
}

function benchGemm(tokens: number, iters: number) {
  return gemmShapes(tokens).map(({ name, a, b, tb }) => {
    const [ta, tw] = [tf.randomNormal(a), tf.randomNormal(b)];
    const m = a[0], k = a[1], n = tb ? b[0] : b[1];
    const ms = timeMs(
      () => tf.tidy(() => void tf.matMul(ta, tw, false, tb).dataSync()),
      iters,
    );
    tf.dispose([ta, tw]);
    return { shape: name, gflops: (2 * m * n * k) / (ms * 1e6) };
  });
}

/** Weights of one ViT block in PyTorch layout ([out, in]). */
function blockWeights() {
  const w = (shape: number[]) => tf.randomNormal(shape, 0, 0.02);
  return {
    n1g: tf.ones([D]),
    n1b: tf.zeros([D]),
    qkvW: w([3 * D, D]),
    qkvB: w([3 * D]),
    projW: w([D, D]),
    projB: w([D]),
    ls1: tf.fill([D], 0.1),
    n2g: tf.ones([D]),
    n2b: tf.zeros([D]),
    fc1W: w([MLP, D]),
    fc1B: w([MLP]),
    fc2W: w([D, MLP]),
    fc2B: w([D]),
    ls2: tf.fill([D], 0.1),
  };
}

type BlockWeights = ReturnType<typeof blockWeights>;

function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).div(variance.add(1e-6).sqrt()).mul(g).add(b);
}

function linear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.fused.matMul({
    a: x as tf.Tensor2D,
    b: w as tf.Tensor2D,
    transposeB: true,
    bias: b,
  });
}

/** x + ls1*attn(norm1(x)), then + ls2*mlp(norm2(x)); x: [B*N, D]. */
function block(x: tf.Tensor, p: BlockWeights, batch: number): tf.Tensor {
  const n = x.shape[0] / batch;
  const hd = D / HEADS;
  const qkv = linear(layerNorm(x, p.n1g, p.n1b), p.qkvW, p.qkvB) // [B*N, 3D]
    .reshape([batch, n, 3, HEADS, hd])
    .transpose([2, 0, 3, 1, 4]) // [3, B, H, N, hd]
    .reshape([3, batch * HEADS, n, hd]);
  const [q, k, v] = tf.unstack(qkv);
  const att = tf.softmax(tf.matMul(q, k, false, true).mul(1 / Math.sqrt(hd))); // [BH, N, N]
  const o = tf.matMul(att, v) // [BH, N, hd]
    .reshape([batch, HEADS, n, hd])
    .transpose([0, 2, 1, 3])
    .reshape([batch * n, D]);
  const x1 = x.add(linear(o, p.projW, p.projB).mul(p.ls1));
  const h = linear(layerNorm(x1, p.n2g, p.n2b), p.fc1W, p.fc1B);
  const gelu = h.mul(0.5).mul(tf.erf(h.mul(Math.SQRT1_2)).add(1));
  return x1.add(linear(gelu, p.fc2W, p.fc2B).mul(p.ls2));
}

function benchBlock(tokens: number, iters: number): number {
  const batch = 16;
  const p = blockWeights();
  const x = tf.randomNormal([tokens, D]);
  const r = tf.randomNormal([tokens, D]);
  const grad = tf.grad((xx: tf.Tensor) => tf.sum(block(xx, p, batch).mul(r)));
  const before = tf.memory().numTensors;
  const ms = timeMs(() => tf.tidy(() => void grad(x).dataSync()), iters);
  if (tf.memory().numTensors !== before) {
    throw new Error(
      `Block benchmark leaked ${tf.memory().numTensors - before} tensors`,
    );
  }
  tf.dispose([x, r, ...Object.values(p)]);
  return ms;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backends: { type: "string", default: "wasm,cpu" },
      threads: {
        type: "string",
        default: String(navigator.hardwareConcurrency),
      },
      iters: { type: "string", default: "5" },
      tokens: { type: "string", default: "1040" },
      slow: { type: "boolean", default: false },
    },
  });
  const threads = Number(values.threads);
  const iters = Number(values.iters);
  const tokens = Number(values.tokens);
  if (tokens % 16 !== 0) {
    throw new Error(`--tokens must be a multiple of 16, got ${tokens}`);
  }
  const backends = values.backends.split(",") as NativeBackendName[];
  if (backends.includes("wasm")) await import("@tensorflow/tfjs-backend-wasm");

  const results: BenchResult[] = [];
  for (const name of backends) {
    if (!(await tf.setBackend(name))) {
      throw new Error(`Cannot set tfjs backend "${name}"`);
    }
    if (name !== "cpu" || values.slow) {
      const gemm = benchGemm(tokens, name === "cpu" ? 1 : iters);
      const blockMs = name === "cpu" ? undefined : benchBlock(tokens, iters);
      results.push({ label: `${name} (tfjs kernels)`, gemm, blockMs });
    }
    const reg = registerNativeKernels(name, { threads });
    if (reg.active.length === 0) {
      console.log(`${name}: no native kernels (${reg.reason})`);
      continue;
    }
    results.push({
      label: `${name} + OpenBLAS (${threads} threads)`,
      gemm: benchGemm(tokens, iters),
      blockMs: benchBlock(tokens, iters),
    });
    unregisterNativeKernels(name);
  }

  for (const r of results) {
    console.log(`\n${r.label}`);
    for (const g of r.gemm) {
      console.log(`  ${g.shape}  ${g.gflops.toFixed(1)} GFLOP/s`);
    }
    if (r.blockMs !== undefined) {
      console.log(
        `  ViT-S block fwd+bwd (${tokens} tokens)  ${r.blockMs.toFixed(1)} ms`,
      );
    }
  }
}

if (import.meta.main) await main();
