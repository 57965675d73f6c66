import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/backend.ts";
import { tf } from "../lib/backend/tf.ts";
import { ParamSet } from "../lib/models/params.ts";
import { Adam } from "../lib/optim/adam.ts";
import { multiStepLr, referenceMilestones } from "../lib/optim/multistep_lr.ts";

await initBackend("wasm", { log: () => {} });

Deno.test("Adam.step() follows torch's update with L2 weight decay added to the gradient", () => {
  const params = ParamSet.fromHost([["w", {
    dtype: "F32",
    shape: [2],
    data: Float32Array.from([1, -2]),
  }]]);
  const adam = new Adam(params, { lr: 0.1, weightDecay: 0.5 });
  const grads = [Float32Array.from([0.3, 0.1]), Float32Array.from([-0.2, 0.4])];
  // Reference arithmetic in float64.
  let p = [1, -2];
  let m = [0, 0];
  let v = [0, 0];
  for (let t = 1; t <= 2; t++) {
    const g = grads[t - 1].map((x, i) => x + 0.5 * p[i]);
    m = m.map((mi, i) => 0.9 * mi + 0.1 * g[i]);
    v = v.map((vi, i) => 0.999 * vi + 0.001 * g[i] * g[i]);
    const denom = v.map((vi) =>
      Math.sqrt(vi) / Math.sqrt(1 - 0.999 ** t) + 1e-8
    );
    p = p.map((pi, i) => pi - (0.1 / (1 - 0.9 ** t)) * m[i] / denom[i]);
    const gt = tf.tensor(grads[t - 1]);
    adam.step({ w: gt });
    gt.dispose();
  }
  const got = params.get("w").dataSync();
  p.forEach((x, i) =>
    assert.ok(Math.abs(got[i] - x) < 1e-6, `${got[i]} vs ${x}`)
  );
  const state = adam.state();
  assert.deepEqual(state.steps, { w: 2 });
  const other = new Adam(params, { lr: 0.1 });
  other.loadState(state);
  assert.deepEqual(other.state().steps, { w: 2 });
  other.disposeSlots();
  adam.disposeSlots();
  params.dispose();
});

Deno.test("Adam.step() leaves parameters without a gradient untouched", () => {
  const params = ParamSet.fromHost([
    ["a", { dtype: "F32", shape: [1], data: Float32Array.from([1]) }],
    ["b", { dtype: "F32", shape: [1], data: Float32Array.from([1]) }],
  ]);
  const adam = new Adam(params, { weightDecay: 1e-5 });
  const g = tf.tensor([1]);
  adam.step(new Map([["a", g]]));
  assert.notEqual(params.get("a").dataSync()[0], 1);
  assert.equal(params.get("b").dataSync()[0], 1);
  assert.deepEqual(Object.keys(adam.state().steps), ["a"]);
  g.dispose();
  adam.disposeSlots();
  params.dispose();
});

Deno.test("multiStepLr() decays by gamma at int(0.5E), int(0.75E), int(0.9E)", () => {
  assert.deepEqual(referenceMilestones(100), [50, 75, 90]);
  assert.deepEqual(referenceMilestones(15), [7, 11, 13]);
  const lr = (e: number) =>
    multiStepLr(e, { lr: 1e-3, milestones: [50, 75, 90] });
  assert.equal(lr(0), 1e-3);
  assert.equal(lr(49), 1e-3);
  assert.ok(Math.abs(lr(50) - 1e-4) < 1e-12);
  assert.ok(Math.abs(lr(89) - 1e-5) < 1e-13);
  assert.equal(lr(99), 1e-3 * 0.1 * 0.1 * 0.1);
  assert.equal(multiStepLr(0, { lr: 1, milestones: [0, 0, 1] }), 0.1 ** 2);
});
