import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/backend.ts";
import { tf } from "../lib/backend/tf.ts";
import { Dinov2 } from "../lib/models/dinov2.ts";
import { Learner } from "../lib/train/learner.ts";
import { randomImages, tinyModel } from "./_tiny.ts";

await initBackend("wasm", { log: () => {} });

function nhwc(shape: number[], seed: number) {
  const t = randomImages(shape, seed);
  return tf.tensor(t.data as Float32Array, shape);
}

Deno.test("Dinov2.embed() rejects channel-first images naming the shape", () => {
  const { variant, backbone } = tinyModel({
    dim: 8,
    depth: 1,
    heads: 2,
    classes: 2,
  }, "linear");
  const model = new Dinov2(variant, backbone);
  const x = tf.zeros([1, 3, 28, 28]);
  assert.throws(
    () => model.embed(x),
    /must be \[B, H, W, 3\] \(NHWC\), got \[1,3,28,28\]/,
  );
  x.dispose();
  model.dispose();
});

Deno.test("Dinov2 returns the pre-trained position embeddings unchanged at the training size", () => {
  const { variant, backbone } = tinyModel(
    { dim: 8, depth: 1, heads: 2, classes: 2, grid: 4 },
    "linear",
  );
  const model = new Dinov2(variant, backbone);
  const pos = model.posEmbed(56, 56);
  assert.deepEqual(pos.shape, [1, 17, 8]);
  assert.deepEqual(
    Array.from(pos.dataSync()),
    Array.from(backbone.get("pos_embed")!.data as Float32Array),
  );
  assert.deepEqual(model.posEmbed(28, 28).shape, [1, 5, 8]);
  model.dispose();
});

Deno.test("Dinov2 ignores remainder pixels like a stride-14 conv", () => {
  const { variant, backbone } = tinyModel({
    dim: 8,
    depth: 1,
    heads: 2,
    classes: 2,
  }, "linear");
  const model = new Dinov2(variant, backbone);
  const x = nhwc([1, 30, 31, 3], 1);
  const cropped = tf.slice(x, [0, 0, 0, 0], [1, 28, 28, 3]);
  const a = model.forwardFeatures(x);
  const b = model.forwardFeatures(cropped);
  assert.deepEqual(a.shape, [1, 5, 8]);
  assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
  tf.dispose([x, cropped, a, b]);
  model.dispose();
});

for (const method of ["linear", "rein", "cufit"] as const) {
  Deno.test(`Learner.step() (${method}) leaks no tensors and changes only trainable parameters`, async () => {
    const { variant, backbone, groups } = tinyModel(
      { dim: 16, depth: 2, heads: 2, classes: 3 },
      method,
    );
    const model = new Dinov2(variant, backbone);
    const learner = new Learner(method, model, groups);
    const x = nhwc([4, 28, 28, 3], 2);
    const y = Int32Array.from([0, 1, 2, 1]);
    await learner.step(x, y); // Adam allocates its moments on the first step.
    const before = tf.memory().numTensors;
    const params0 = learner.groups[0].params.toHost();
    for (let i = 0; i < 3; i++) {
      const out = await learner.step(x, y);
      assert.ok(Object.values(out.losses).every(Number.isFinite));
    }
    await learner.predict(x);
    assert.equal(tf.memory().numTensors, before);
    const params1 = learner.groups[0].params.toHost();
    const moved = [...params1].filter(([k, t]) =>
      (t.data as Float32Array).some((v, i) =>
        v !== (params0.get(k)!.data as Float32Array)[i]
      )
    ).map(([k]) => k);
    const head = method === "linear" ? "linear" : "linear_rein";
    assert.ok(moved.includes(`${head}.weight`));
    assert.ok(
      !moved.includes("reins.transform.weight"),
      "Rein's unused transform never moves",
    );
    x.dispose();
    learner.dispose();
    model.dispose();
  });
}

Deno.test("Dinov2.toHost() of a trainable backbone gives back the weights it was built from", async () => {
  const { variant, backbone } = tinyModel({
    dim: 8,
    depth: 2,
    heads: 2,
    classes: 2,
  }, "linear");
  const model = new Dinov2(variant, backbone, { trainable: true });
  assert.equal(model.variables().length, 5 + 2 * 14);
  const before = tf.memory().numTensors;
  const back = await model.toHost();
  assert.equal(tf.memory().numTensors, before);
  for (const [k, t] of backbone) {
    if (k === "mask_token") continue;
    assert.deepEqual(back.get(k)?.shape, t.shape, k);
    assert.deepEqual(
      Array.from(back.get(k)!.data as Float32Array),
      Array.from(t.data as Float32Array),
      k,
    );
  }
  model.dispose();
  const frozen = new Dinov2(variant, backbone);
  assert.throws(() => frozen.variables(), /frozen/);
  frozen.dispose();
});

/** max |a - b| and max |b| of two tensors' values. */
function diff(a: tf.Tensor, b: tf.Tensor): { maxDiff: number; maxAbs: number } {
  const x = a.dataSync();
  const y = b.dataSync();
  assert.equal(x.length, y.length);
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < x.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
    maxAbs = Math.max(maxAbs, Math.abs(y[i]));
  }
  return { maxDiff, maxAbs };
}

for (const [dim, heads, depth, size] of [[24, 3, 3, 42], [32, 2, 2, 28]]) {
  Deno.test(`frozen blocks' hand-written backward matches autograd (D${dim}, ${heads} heads, ${depth} blocks)`, () => {
    const { variant, backbone } = tinyModel({
      dim,
      depth,
      heads,
      classes: 2,
      seed: 3,
    }, "linear");
    const frozen = new Dinov2(variant, backbone);
    const trainable = new Dinov2(variant, backbone, { trainable: true }); // plain tfjs autograd
    const x = nhwc([2, size, size, 3], 7);
    const tokens = frozen.embed(x);
    const r = tf.randomNormal(tokens.shape, 0, 1, "float32", 4);
    const grad = (m: Dinov2) =>
      tf.grad((t: tf.Tensor) => tf.sum(tf.mul(m.forwardTokens(t), r)))(tokens);
    const g = diff(grad(frozen), grad(trainable));
    assert.ok(
      g.maxDiff <= 1e-5 * Math.max(1, g.maxAbs),
      `gradient ${g.maxDiff} vs ${g.maxAbs}`,
    );
    const f = diff(
      frozen.forwardTokens(tokens),
      trainable.forwardTokens(tokens),
    );
    assert.ok(
      f.maxDiff <= 1e-5 * Math.max(1, f.maxAbs),
      `forward ${f.maxDiff}`,
    );
    // The CLS-only last block gives the CLS row of the full forward, with and without a hook.
    const c = diff(
      frozen.forwardCls(tokens),
      Dinov2.cls(frozen.forwardTokens(tokens)),
    );
    assert.ok(
      c.maxDiff <= 1e-5 * Math.max(1, c.maxAbs),
      `forwardCls ${c.maxDiff}`,
    );
    tf.dispose([x, tokens, r]);
    frozen.dispose();
    trainable.dispose();
  });
}

Deno.test("Dinov2.forwardCls() from block 1 over block 0's output equals the whole path, with and without a hook", () => {
  const { variant, backbone } = tinyModel(
    { dim: 16, depth: 3, heads: 2, classes: 2, seed: 5 },
    "linear",
  );
  const model = new Dinov2(variant, backbone);
  const x = nhwc([2, 28, 28, 3], 3);
  const tokens = model.embed(x);
  const block0 = model.block(0, tokens);
  const hook = {
    apply: (t: tf.Tensor, i: number) => tf.mul(t, 1 + 0.5 * (i + 1)),
  };
  for (const h of [undefined, hook]) {
    const whole = model.forwardCls(tokens, h);
    const shared = model.forwardCls(block0, h, { from: 1 });
    assert.deepEqual(
      Array.from(shared.dataSync()),
      Array.from(whole.dataSync()),
    );
    tf.dispose([whole, shared]);
  }
  assert.throws(
    () => model.forwardCls(tokens, undefined, { from: 3 }),
    /"from" must be an integer in \[0, 2\], got 3/,
  );
  tf.dispose([x, tokens, block0]);
  model.dispose();
});
