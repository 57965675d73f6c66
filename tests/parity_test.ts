import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/backend.ts";
import { parityPassed, runParity } from "../lib/parity/run.ts";
import { writeTinyFixtures } from "./_tiny.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const SHARED = FIXTURES_URL.pathname;
const hasShared = (() => {
  try {
    return Deno.statSync(SHARED + "rein_golden.safetensors").isFile;
  } catch {
    return false;
  }
})();

await initBackend("wasm", { log: () => {} });

Deno.test({
  name:
    "runParity() matches every reference golden within the README's tolerances",
  ignore: !hasShared,
  fn: async () => {
    const report = await runParity(SHARED);
    const failures = report.comparisons.filter((c) => !c.ok).map((c) =>
      `${c.key}: ${c.error} > ${c.bound}`
    );
    assert.deepEqual(failures, []);
    assert.deepEqual(report.missing, []);
    assert.deepEqual(report.problems, []);
    assert.ok(parityPassed(report));
    for (
      const section of [
        "rein",
        "backbone files",
        "cufit",
        "noise",
        "preprocess",
      ]
    ) {
      assert.ok(report.sections.includes(section), `section ${section} ran`);
    }
    // Every rein and CUFIT output key was computed and compared.
    const compared = new Set(report.comparisons.map((c) => c.key));
    for (
      const key of [
        "tokens_rein224",
        "grad.reins.scale",
        "adam1.reins.merge.weight",
      ]
    ) {
      assert.ok(compared.has(key), key);
    }
    assert.ok([...compared].some((k) => /^step2\.rein1_agrees$/.test(k)));
    assert.ok([...compared].some((k) => /^noise\.aptos\./.test(k)));
  },
});

Deno.test("runParity() reads every size from the files (width 24, depth 3, 3 heads, 4 classes)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeTinyFixtures(dir, {
      dim: 24,
      depth: 3,
      heads: 3,
      classes: 4,
      seed: 5,
    }, {
      batch: 3,
      size: 42,
      size2: 70,
      steps: 2,
    });
    const report = await runParity(dir);
    assert.deepEqual(report.sections, ["rein", "cufit"]);
    const shape = (k: string) => report.computed.get(k)?.shape;
    assert.deepEqual(shape("pos_embed"), [1, 10, 24]);
    assert.deepEqual(shape("pos_embed224"), [1, 26, 24]);
    assert.deepEqual(shape("tokens_rein"), [3, 10, 24]);
    assert.deepEqual(shape("norm_cls"), [3, 24]);
    assert.deepEqual(shape("rein_logits"), [3, 4]);
    assert.deepEqual(shape("grad.reins.learnable_tokens"), [3, 100, 24]);
    assert.deepEqual(shape("adam1.reins.merge.weight"), [256, 768]);
    assert.deepEqual(shape("step1.rein2_logits"), [3, 4]);
    assert.equal(report.computed.get("step1.linear_agrees")?.dtype, "U8");
    assert.ok(!report.computed.has("step2.inputs"));
    assert.deepEqual(shape("model2.linear_rein.weight"), [4, 24]);
    // No goldens: nothing compared, nothing missing.
    assert.equal(report.comparisons.length, 0);
    assert.deepEqual(report.missing, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parity task exits non-zero when a golden is off", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeTinyFixtures(dir, { dim: 16, depth: 2, heads: 2, classes: 3 }, {
      batch: 2,
      size: 28,
      size2: 28,
      steps: 1,
    });
    // First run: compute; then turn the output into a golden with one entry off.
    const { main } = await import("../tasks/parity.ts");
    const out = `${dir}/out.safetensors`;
    assert.equal(await main(["--fixtures", dir, "--out", out, "--quiet"]), 0);
    const { readSafetensors, writeSafetensors } = await import(
      "../lib/weights/safetensors.ts"
    );
    const { tensors } = await readSafetensors(out);
    const golden = await readSafetensors(`${dir}/rein_golden.safetensors`);
    const logits = tensors.get("rein_logits")!;
    (logits.data as Float32Array)[0] += 0.01;
    await writeSafetensors(
      `${dir}/rein_golden.safetensors`,
      new Map([...golden.tensors, ["rein_logits", logits]]),
    );
    assert.equal(await main(["--fixtures", dir, "--out", out, "--quiet"]), 1);
    // Without --out the same check runs and writes nothing.
    await Deno.remove(out);
    assert.equal(await main(["--fixtures", dir, "--quiet"]), 1);
    assert.throws(() => Deno.statSync(out), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "runParity() also holds on the pure wasm kernels (no OpenBLAS)",
  ignore: !hasShared,
  fn: async () => {
    const { registerNativeKernels, unregisterNativeKernels } = await import(
      "../lib/backend/native/kernels.ts"
    );
    const removed = unregisterNativeKernels("wasm");
    try {
      const report = await runParity(SHARED);
      const failures = report.comparisons.filter((c) => !c.ok).map((c) =>
        c.key
      );
      assert.deepEqual(failures, []);
      assert.ok(parityPassed(report));
    } finally {
      if (removed.length > 0) registerNativeKernels("wasm");
    }
  },
});

Deno.test("runParity() names a fixtures folder that is not there", async () => {
  await assert.rejects(
    runParity("tests/__no_such_fixtures__"),
    /^Error: Fixtures folder "tests\/__no_such_fixtures__" not found \(the reference fixtures are in tests\/fixtures\/reference\)$/,
  );
});
