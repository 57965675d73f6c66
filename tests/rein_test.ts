import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/backend.ts";
import { tf } from "../lib/backend/tf.ts";
import type { Tensor } from "../lib/backend/tf.ts";
import { initRein } from "../lib/models/init.ts";
import { ParamSet } from "../lib/models/params.ts";
import { Rein } from "../lib/models/rein.ts";
import { RandomState } from "../lib/noise/random_state.ts";

await initBackend("wasm", { log: () => {} });

/** Rein written plainly from the reference's formula, differentiated by tfjs. */
function reference(p: ParamSet, x: Tensor, layer: number): Tensor {
  const [b, n, d] = x.shape as number[];
  const all = p.get("reins.learnable_tokens");
  const m = (all.shape as number[])[1];
  const t = tf.reshape(tf.slice(all, [layer, 0, 0], [1, m, d]), [m, d]);
  const cls = tf.slice(x, [0, 0, 0], [b, 1, d]);
  const f = tf.reshape(tf.slice(x, [0, 1, 0], [b, n - 1, d]), [-1, d]);
  const attn = tf.softmax(
    tf.mul(tf.matMul(f, t, false, true), 1 / Math.sqrt(d)),
    -1,
  );
  const lin = (h: Tensor, name: string) =>
    tf.add(
      tf.matMul(h, p.get(`reins.${name}.weight`), false, true),
      p.get(`reins.${name}.bias`),
    );
  const t2f = lin(tf.slice(t, [1, 0], [m - 1, d]), "mlp_token2feat");
  const delta = tf.matMul(tf.slice(attn, [0, 1], [-1, m - 1]), t2f);
  const out = tf.add(
    f,
    tf.mul(lin(tf.add(delta, f), "mlp_delta_f"), p.get("reins.scale")),
  );
  return tf.concat([cls, tf.reshape(out, [b, n - 1, d])], 1);
}

Deno.test("Rein.apply() and its hand-written backward match the plain formula under autograd", () => {
  const rs = new RandomState(2);
  const host = initRein(
    { depth: 3, embedDim: 48, patchSize: 14 },
    () => rs.rand(),
  );
  (host.get("reins.scale")!.data as Float32Array)[0] = 0.7; // large enough to matter
  const params = ParamSet.fromHost(host);
  const names = [...params.vars.keys()].filter((k) =>
    !/transform|merge/.test(k)
  );
  const vars = names.map((k) => params.get(k));
  const x = tf.randomNormal([3, 17, 48], 0, 1, "float32", 1);
  const r = tf.randomNormal([3, 17, 48], 0, 1, "float32", 2);
  const rein = new Rein(params);
  const run = (apply: (h: Tensor, l: number) => Tensor) =>
    tf.variableGrads(() => {
      let h = x;
      for (let l = 0; l < 3; l++) h = tf.tanh(apply(h, l));
      return tf.sum(tf.mul(h, r)) as tf.Scalar;
    }, vars);
  const ours = run((h, l) => rein.apply(h, l));
  const plain = run((h, l) => reference(params, h, l));
  assert.ok(
    Math.abs(ours.value.dataSync()[0] - plain.value.dataSync()[0]) < 1e-3,
  );
  for (const v of vars) {
    const a = ours.grads[v.name].dataSync();
    const b = plain.grads[v.name].dataSync();
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < a.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      maxAbs = Math.max(maxAbs, Math.abs(b[i]));
    }
    assert.ok(
      maxDiff <= 1e-4 * Math.max(1e-3, maxAbs),
      `${names[vars.indexOf(v)]}: ${maxDiff} vs ${maxAbs}`,
    );
  }
  // And the gradient to the input.
  const gx = (apply: (h: Tensor) => Tensor) =>
    tf.grad((t: Tensor) => tf.sum(tf.mul(apply(t), r)))(x);
  const a = gx((t) => rein.apply(t, 1)).dataSync();
  const b = gx((t) => reference(params, t, 1)).dataSync();
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
  }
  assert.ok(maxDiff < 1e-4, `input gradient ${maxDiff}`);
  params.dispose();
});

Deno.test("Rein.apply() leaves the CLS token unchanged", () => {
  const rs = new RandomState(4);
  const params = ParamSet.fromHost(
    initRein({ depth: 1, embedDim: 16, patchSize: 14 }, () => rs.rand()),
  );
  const x = tf.randomNormal([2, 5, 16], 0, 1, "float32", 5);
  const y = new Rein(params).apply(x, 0);
  assert.deepEqual(
    Array.from(tf.slice(y, [0, 0, 0], [2, 1, 16]).dataSync()),
    Array.from(tf.slice(x, [0, 0, 0], [2, 1, 16]).dataSync()),
  );
  params.dispose();
});
