/**
 * Measures OpenBLAS native kernels against the original tfjs ones: GFLOP/s of
 * the ViT-S matmuls (16 images at 112 px = 1040 tokens) and the time of a
 * ViT-S block forward + backward to its input (frozen weights, as in CUFIT).
 *
 *   deno task bench:kernels [--backends wasm,cpu] [--threads 2] [--iters 10] [--tokens 1040] \
 *     [--linear matmul|fused] [--slow]
 *
 * `--linear fused` builds the block's linear layers with `tf.fused.matMul`,
 * whose gradient also computes the (frozen) weights' gradient; `--slow` adds
 * the pure-JS cpu backend without native kernels (minutes).
 * Timings report the best and the median run: on a shared machine the best
 * is the one to compare.
 *
 * @module
 */
import { Command } from "commander";
import { tf } from "../lib/backend/tf.ts";
import { parseCommand, runTask } from "./_cli.ts";
import {
  type NativeBackendName,
  registerNativeKernels,
  unregisterNativeKernels,
} from "../lib/backend/native/kernels.ts";

/** ViT-S/14: width, heads, MLP width; CUFIT batches 16 images. */
const D = 384;
const HEADS = 6;
const MLP = 1536;
const BATCH = 16;

interface Timing {
  best: number;
  median: number;
}

/**
 * Best and median ms of `fn` over `iters` runs after one warm-up. `fn` must
 * not return a typed array from `tf.tidy`, which walks every element.
 */
function timeMs(fn: () => void, iters: number): Timing {
  fn();
  const ms: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { best: ms[0], median: ms[Math.floor(ms.length / 2)] };
}

/**
 * The block's matmuls as lib/models computes them: weights stored `[in, out]`,
 * so the forward is `x @ W` and the input gradient `dY @ W^T`.
 */
function gemmShapes(tokens: number) {
  return [
    {
      name: `qkv  [${tokens}x${D}] x [${D}x${3 * D}]`,
      a: [tokens, D],
      b: [D, 3 * D],
      tb: false,
    },
    {
      name: `fc1  [${tokens}x${D}] x [${D}x${MLP}]`,
      a: [tokens, D],
      b: [D, MLP],
      tb: false,
    },
    {
      name: `fc2  [${tokens}x${MLP}] x [${MLP}x${D}]`,
      a: [tokens, MLP],
      b: [MLP, D],
      tb: false,
    },
    {
      name: `dfc1 [${tokens}x${MLP}] x [${D}x${MLP}]^T`,
      a: [tokens, MLP],
      b: [D, MLP],
      tb: true,
    },
  ];
}

/** GFLOP/s of each block matmul: best and median. */
function benchGemm(tokens: number, iters: number) {
  return gemmShapes(tokens).map(({ name, a, b, tb }) => {
    const [ta, tw] = [tf.randomNormal(a), tf.randomNormal(b)];
    const gflop = (2 * a[0] * a[1] * (tb ? b[0] : b[1])) / 1e9;
    const t = timeMs(
      () => tf.tidy(() => void tf.matMul(ta, tw, false, tb).dataSync()),
      iters,
    );
    tf.dispose([ta, tw]);
    return {
      name,
      best: (gflop / t.best) * 1e3,
      median: (gflop / t.median) * 1e3,
    };
  });
}

/** Weights of one ViT block, linear weights as `[in, out]` (lib/models' layout). */
function blockWeights() {
  const w = (shape: number[]) => tf.randomNormal(shape, 0, 0.02);
  return {
    n1g: tf.ones([D]),
    n1b: tf.zeros([D]),
    qkvW: w([D, 3 * D]),
    qkvB: w([3 * D]),
    projW: w([D, D]),
    projB: w([D]),
    ls1: tf.fill([D], 0.1),
    n2g: tf.ones([D]),
    n2b: tf.zeros([D]),
    fc1W: w([D, MLP]),
    fc1B: w([MLP]),
    fc2W: w([MLP, D]),
    fc2B: w([D]),
    ls2: tf.fill([D], 0.1),
  };
}

type BlockWeights = ReturnType<typeof blockWeights>;
type Linear = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) => tf.Tensor;

const LINEARS: Record<string, Linear> = {
  matmul: (x, w, b) => tf.matMul(x, w).add(b),
  fused: (x, w, b) =>
    tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b }),
};

function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const { mean, variance } = tf.moments(x, -1, true);
  return x.sub(mean).div(variance.add(1e-6).sqrt()).mul(g).add(b);
}

/** x + ls1*attn(norm1(x)), then + ls2*mlp(norm2(x)), as DINOv2 writes it. */
function block(x: tf.Tensor, p: BlockWeights, linear: Linear): tf.Tensor {
  const n = x.shape[0] / BATCH;
  const hd = D / HEADS;
  const qkv = linear(layerNorm(x, p.n1g, p.n1b), p.qkvW, p.qkvB) // [B*N, 3D]
    .reshape([BATCH, n, 3, HEADS, hd])
    .transpose([2, 0, 3, 1, 4]) // [3, B, H, N, hd]
    .reshape([3, BATCH * HEADS, n, hd]);
  const [q, k, v] = tf.unstack(qkv);
  const att = tf.softmax(tf.matMul(q, k, false, true).mul(1 / Math.sqrt(hd))); // [BH, N, N]
  const o = tf.matMul(att, v) // [BH, N, hd]
    .reshape([BATCH, HEADS, n, hd])
    .transpose([0, 2, 1, 3])
    .reshape([BATCH * n, D]);
  const x1 = x.add(linear(o, p.projW, p.projB).mul(p.ls1));
  const h = linear(layerNorm(x1, p.n2g, p.n2b), p.fc1W, p.fc1B);
  const gelu = h.mul(0.5).mul(tf.erf(h.mul(Math.SQRT1_2)).add(1));
  return x1.add(linear(gelu, p.fc2W, p.fc2B).mul(p.ls2));
}

/** One block's forward + backward to its input (the frozen-backbone case). */
function benchBlock(tokens: number, iters: number, linear: Linear): Timing {
  const p = blockWeights();
  const x = tf.randomNormal([tokens, D]);
  const r = tf.randomNormal([tokens, D]);
  const grad = tf.grad((xx: tf.Tensor) => tf.sum(block(xx, p, linear).mul(r)));
  const before = tf.memory().numTensors;
  const t = timeMs(() => tf.tidy(() => void grad(x).dataSync()), iters);
  if (tf.memory().numTensors !== before) {
    throw new Error(
      `Block benchmark leaked ${tf.memory().numTensors - before} tensors`,
    );
  }
  tf.dispose([x, r, ...Object.values(p)]);
  return t;
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`--${flag} must be a positive integer, got "${value}"`);
  }
  return n;
}

/** Runs the benchmark; returns the exit code. */
export async function main(args: readonly string[]): Promise<number> {
  const program = new Command("bench:kernels")
    .description(
      "GFLOP/s of OpenBLAS vs tfjs matmul kernels and a ViT-S block forward+backward",
    )
    .option("--backends <list>", "wasm and/or cpu, comma-separated", "wasm,cpu")
    .option(
      "--threads <n>",
      "OpenBLAS threads",
      String(navigator.hardwareConcurrency),
    )
    .option("--iters <n>", "timed runs per measurement", "10")
    .option("--tokens <n>", "tokens per matmul", String(BATCH * 65))
    .option("--linear <kind>", "block linear layers: matmul or fused", "matmul")
    .option("--slow", "also the pure-JS cpu backend without native kernels")
    .allowExcessArguments(false);
  if (!parseCommand(program, args)) return 0;
  const values = program.opts<{
    backends: string;
    threads: string;
    iters: string;
    tokens: string;
    linear: string;
    slow?: boolean;
  }>();
  const threads = positiveInt("threads", values.threads);
  const iters = positiveInt("iters", values.iters);
  const tokens = positiveInt("tokens", values.tokens);
  if (tokens % BATCH !== 0) {
    throw new Error(`--tokens must be a multiple of ${BATCH}, got ${tokens}`);
  }
  const linear = LINEARS[values.linear];
  if (linear === undefined) {
    throw new Error(
      `--linear must be "matmul" or "fused", got "${values.linear}"`,
    );
  }
  const backends = values.backends.split(",");
  for (const b of backends) {
    if (b !== "wasm" && b !== "cpu") {
      throw new Error(`--backends takes "wasm" and/or "cpu", got "${b}"`);
    }
  }
  if (backends.includes("wasm")) await import("@tensorflow/tfjs-backend-wasm");

  const report = (
    label: string,
    gemm: ReturnType<typeof benchGemm>,
    blk?: Timing,
  ) => {
    console.log(`\n${label}`);
    for (const g of gemm) {
      console.log(
        `  ${g.name.padEnd(32)} ${
          g.best.toFixed(1).padStart(6)
        } GFLOP/s best, ` +
          `${g.median.toFixed(1)} median`,
      );
    }
    if (blk !== undefined) {
      console.log(
        `  ViT-S block fwd+bwd, ${tokens} tokens ${
          blk.best.toFixed(1).padStart(6)
        } ms best, ` +
          `${blk.median.toFixed(1)} median (linear: ${values.linear})`,
      );
    }
  };

  for (const name of backends as NativeBackendName[]) {
    if (!(await tf.setBackend(name))) {
      throw new Error(`Cannot set tfjs backend "${name}"`);
    }
    if (name !== "cpu" || values.slow === true) {
      const slowIters = name === "cpu" ? 1 : iters;
      report(
        `${name}, tfjs kernels`,
        benchGemm(tokens, slowIters),
        benchBlock(tokens, slowIters, linear),
      );
    }
    const reg = registerNativeKernels(name, { threads });
    if (reg.active.length === 0) {
      console.log(`\n${name}: no native kernels (${reg.reason})`);
      continue;
    }
    report(
      `${name} + native (${
        reg.active.join(", ")
      }; OpenBLAS ${threads} threads)`,
      benchGemm(tokens, iters),
      benchBlock(tokens, iters, linear),
    );
    unregisterNativeKernels(name);
  }
  return 0;
}

if (import.meta.main) {
  await runTask("bench:kernels", () => main(Deno.args));
}
