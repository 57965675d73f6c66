/**
 * Training on the webgpu backend (Mesa's lavapipe in CI): the same
 * computation as wasm, and flat GPU memory. Tiny sizes: lavapipe is slow.
 */
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/backend.ts";
import { type GpuMemory, gpuMemory } from "../lib/backend/webgpu/memory.ts";
import { loadDatasetConfig, resolveConfig } from "../lib/train/config.ts";
import { evaluateRun, loadRun } from "../lib/train/evaluate.ts";
import type { StepOutputs } from "../lib/train/learner.ts";
import { train } from "../lib/train/trainer.ts";
import { randomImages, tinyModel, tinyWorkspace } from "./_tiny.ts";
import { readFloats, tf } from "../lib/backend/tf.ts";
import { Dinov2 } from "../lib/models/dinov2.ts";
import { NO_WEBGPU } from "./_webgpu.ts";

/** A temp folder with tiny backbone weights and a synthetic dataset file. */
function workspace(epochs: number): Promise<string> {
  return tinyWorkspace({ conf: { epoch: String(epochs) } });
}

function config(
  dir: string,
  backend: "wasm" | "webgpu",
  o: Record<string, unknown> = {},
) {
  return resolveConfig("cufit", loadDatasetConfig(`${dir}/synthetic.json`), {
    weights: `${dir}/w.safetensors`,
    backend,
    save: backend,
    ...o,
  });
}

const quiet = { log: () => {}, progress: false };

Deno.test({
  name:
    "train:cufit on webgpu ends its first step with the same selection masks as wasm",
  ignore: NO_WEBGPU,
  fn: async () => {
    const dir = await workspace(1);
    try {
      const first: Record<string, StepOutputs> = {};
      const testAcc: Record<string, number> = {};
      for (const backend of ["wasm", "webgpu"] as const) {
        const info = await initBackend(backend, { log: () => {} });
        assert.equal(info.name, backend);
        const r = await train(config(dir, backend, { maxBatches: 1 }), {
          ...quiet,
          backend: info,
          onStep: (out, at) => {
            if (at.batch === 0) first[backend] = out;
          },
        });
        testAcc[backend] = r.metrics[0].testAcc;
      }
      assert.equal(testAcc.webgpu, testAcc.wasm);
      // evaluate reads the webgpu run back on webgpu.
      const run = await loadRun(`${dir}/runs/webgpu`);
      try {
        const ev = await evaluateRun(run);
        assert.equal(ev.summary.accuracy, testAcc.webgpu);
      } finally {
        run.dispose();
      }
      const [w, g] = [first.wasm, first.webgpu];
      assert.equal(w.masks.lpm!.length, 8);
      assert.deepEqual(g.masks.lpm, w.masks.lpm);
      assert.deepEqual(g.masks.iam, w.masks.iam);
      // The masks come from logits that agree closely, not by luck.
      for (const m of ["lpm", "iam", "lam"] as const) {
        const a = w.logits[m]!, b = g.logits[m]!;
        const err = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
        assert.ok(err < 1e-4, `${m} logits differ by ${err}`);
      }
      for (const [k, v] of Object.entries(w.losses)) {
        assert.ok(Math.abs(v - g.losses[k]) < 1e-4, `loss ${k}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "train() on webgpu keeps GPU memory and the tensor count flat across epochs",
  ignore: NO_WEBGPU,
  fn: async () => {
    const dir = await workspace(4);
    try {
      const info = await initBackend("webgpu", { log: () => {} });
      const seen: GpuMemory[] = [];
      await train(config(dir, "webgpu"), {
        ...quiet,
        backend: info,
        onEpoch: () => seen.push(gpuMemory()),
      });
      assert.equal(seen.length, 4);
      assert.ok(seen[0].inUse! > 0 && seen[0].pooled! >= seen[0].inUse!);
      // Epoch 0 warms tfjs's buffer pool; after it nothing may grow.
      for (const m of seen.slice(2)) {
        assert.deepEqual(m, seen[1]);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "on webgpu the frozen blocks' hand-written backward and the CLS-only last block match autograd and wasm",
  ignore: NO_WEBGPU,
  fn: async () => {
    const { variant, backbone } = tinyModel(
      { dim: 24, depth: 2, heads: 3, classes: 2, seed: 3 },
      "linear",
    );
    const img = randomImages([2, 42, 42, 3], 7);
    // Per backend: [gradient of the hand-written backward, of autograd,
    // forwardCls, CLS row of the full forward].
    const results: Record<string, Float32Array[]> = {};
    for (const backend of ["wasm", "webgpu"] as const) {
      await initBackend(backend, { log: () => {} });
      const frozen = new Dinov2(variant, backbone);
      const trainable = new Dinov2(variant, backbone, { trainable: true });
      const outs = tf.tidy(() => {
        const x = tf.tensor(img.data as Float32Array, img.shape);
        const tokens = frozen.embed(x);
        const r = tf.randomNormal(tokens.shape, 0, 1, "float32", 4);
        const grad = (m: Dinov2) =>
          tf.grad((t: tf.Tensor) => tf.sum(tf.mul(m.forwardTokens(t), r)))(
            tokens,
          );
        return [
          grad(frozen),
          grad(trainable),
          frozen.forwardCls(tokens),
          Dinov2.cls(frozen.forwardTokens(tokens)),
        ];
      });
      results[backend] = await Promise.all(outs.map(readFloats));
      tf.dispose(outs);
      frozen.dispose();
      trainable.dispose();
    }
    const close = (a: Float32Array, b: Float32Array, what: string) => {
      const maxAbs = Math.max(...b.map(Math.abs));
      const maxDiff = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
      assert.ok(maxDiff <= 1e-5 * Math.max(1, maxAbs), `${what}: ${maxDiff}`);
    };
    const [g, auto, cls, full] = results.webgpu;
    close(g, auto, "hand-written vs autograd gradient on webgpu");
    close(cls, full, "forwardCls vs full forward on webgpu");
    results.wasm.forEach((w, i) =>
      close(results.webgpu[i], w, `output ${i} vs wasm`)
    );
  },
});
