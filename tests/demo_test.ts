import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ConfirmationNeededError,
  DEMO_WEIGHTS,
  demoConfigs,
  runDemo,
} from "../lib/demo/demo.ts";
import { estimateRuns } from "../lib/demo/estimate.ts";
import { formatSeconds, formatTable, verdict } from "../lib/demo/summary.ts";
import { initBackend } from "../lib/backend/backend.ts";
import { writeSafetensors } from "../lib/weights/safetensors.ts";
import { main, parseDemoArgs } from "../tasks/demo.ts";
import { tinyModel } from "./_tiny.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

await initBackend("wasm", { log: () => {} });

/** A temp folder with a tiny synthetic dataset config and a tiny backbone. */
async function fixture() {
  const dir = await Deno.makeTempDir();
  const conf = join(dir, "tinydemo.json");
  await Deno.writeTextFile(
    conf,
    JSON.stringify({
      epoch: "2",
      id_dataset: join(dir, "data"),
      batch_size: 8,
      save_path: join(dir, "elsewhere"),
      num_classes: 3,
      dataset: "synthetic",
      resize: 32,
      image_size: 28,
      synthetic: {
        train_per_class: 6,
        test_per_class: 3,
        size: 32,
        seed: 0,
        difficulty: 0.1,
      },
    }),
  );
  const { backbone } = tinyModel(
    { dim: 16, depth: 1, heads: 2, classes: 3, grid: 2 },
    "linear",
  );
  const weights = join(dir, "tiny.safetensors");
  await writeSafetensors(weights, backbone, {
    metadata: { variant: JSON.stringify({ num_heads: 2, patch_size: 14 }) },
  });
  return { dir, conf, weights };
}

Deno.test("runDemo() trains the three methods on the same noisy labels and writes the report", async () => {
  const { dir, conf, weights } = await fixture();
  try {
    const out = join(dir, "out");
    const lines: string[] = [];
    const result = await runDemo({
      out,
      data: conf,
      weights,
      noise: 0.4,
      backend: "wasm",
      png: false,
      progress: false,
      argv: [],
      log: (l) => lines.push(l),
    });
    // 1. Files of the issue, and the runs inside the output folder.
    for (const f of ["summary.json", "report.html"]) {
      assert.ok(result.files.includes(join(out, f)), f);
    }
    for (const m of ["linear", "rein", "cufit"]) {
      const rec = JSON.parse(
        await Deno.readTextFile(join(out, "runs", m, "config.json")),
      );
      assert.equal(rec.config.method, m);
    }
    // 2. One set of noisy labels for all three runs (their recorded digests).
    const noisy = await Promise.all(
      ["linear", "rein", "cufit"].map(async (m) =>
        JSON.parse(
          await Deno.readTextFile(join(out, "runs", m, "config.json")),
        ).digests.noisyLabels
      ),
    );
    assert.match(noisy[0], /^[0-9a-f]{64}$/);
    assert.equal(new Set(noisy).size, 1);
    // 3. summary.json as the issue spells it.
    const summary = JSON.parse(
      await Deno.readTextFile(join(out, "summary.json")),
    );
    assert.deepEqual(Object.keys(summary), [
      "noise_rate",
      "backend",
      "seconds",
      "methods",
    ]);
    assert.equal(summary.noise_rate, 0.4);
    assert.deepEqual(Object.keys(summary.methods), ["linear", "rein", "cufit"]);
    assert.deepEqual(Object.keys(summary.methods.cufit.selection), [
      "lpm",
      "iam",
    ]);
    for (
      const m of Object.values(summary.methods) as { last10_acc: number }[]
    ) {
      assert.ok(m.last10_acc >= 0 && m.last10_acc <= 1);
    }
    // 4. Confusion matrices count every test image once.
    for (const m of result.outcome.methods) {
      const total = m.confusion.flat().reduce((a, b) => a + b, 0);
      assert.equal(total, 9, m.method);
      const acc = m.confusion.reduce((s, row, i) => s + row[i], 0) / total;
      assert.ok(
        Math.abs(acc - m.metrics[m.metrics.length - 1].testAcc) < 1e-9,
        `${m.method}: confusion matrix disagrees with the last epoch`,
      );
    }
    // 5. The report names CUFIT's likely mislabeled images.
    const html = await Deno.readTextFile(join(out, "report.html"));
    assert.match(html, /Likely mislabeled training images/);
    assert.equal(result.outcome.labelIssues?.method, "cufit");
    assert.ok(
      lines.some((l) => /^likely mislabeled \(cufit\): \d+ flagged/.test(l)),
    );
    // 6. The estimate came first, the table names every method.
    assert.match(lines.find((l) => l.startsWith("estimate:")) ?? "", /s \(/);
    assert.match(result.table, /Linear probing[\s\S]*Rein[\s\S]*CUFIT/);
    // 7. A second demo into the same folder replaces the first one's runs.
    await runDemo({
      out,
      data: conf,
      weights,
      methods: ["linear"],
      epochs: 1,
      backend: "wasm",
      png: false,
      progress: false,
      argv: [],
      log: (l) => lines.push(l),
    });
    assert.ok(lines.some((l) => l.startsWith("replacing the earlier run")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runDemo() runs a real dataset config with reference weights and says so in the report", async () => {
  const fixtures = FIXTURES_URL;
  const dir = await Deno.makeTempDir();
  try {
    // The reference's MedMNIST layout: <root>/bloodmnist.npz, 8 classes.
    await Deno.copyFile(
      new URL("bloodmnist_tiny.npz", fixtures),
      join(dir, "bloodmnist.npz"),
    );
    const conf = join(dir, "bloodmnist.json");
    await Deno.writeTextFile(
      conf,
      JSON.stringify({
        epoch: "1",
        id_dataset: dir,
        batch_size: 4,
        save_path: join(dir, "unused"),
        num_classes: 8,
        resize: 32,
        image_size: 28,
      }),
    );
    const out = join(dir, "out");
    const result = await runDemo({
      out,
      data: conf,
      weights: new URL("rein_model.safetensors", fixtures).pathname,
      noise: 0.2,
      backend: "wasm",
      png: false,
      progress: false,
      argv: [],
      log: () => {},
    });
    assert.equal(result.outcome.dataset.synthetic, false);
    assert.equal(result.outcome.dataset.train, 12);
    assert.equal(result.outcome.weightsNote, null);
    const html = await Deno.readTextFile(join(out, "report.html"));
    assert.doesNotMatch(html, /built-in synthetic demo/);
    assert.match(html, /rein_model\.safetensors/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runDemo() stops with the estimate before a long run unless told yes", async () => {
  const { dir, conf, weights } = await fixture();
  try {
    const out = join(dir, "out");
    const attempt = () =>
      runDemo({
        out,
        data: conf,
        weights,
        backend: "wasm",
        confirmAbove: 0,
        log: () => {},
      });
    await assert.rejects(attempt, ConfirmationNeededError);
    await assert.rejects(
      attempt,
      /would take about .* pass --yes to run it anyway/,
    );
    // Nothing was trained or written.
    await assert.rejects(() => Deno.stat(out), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runDemo() rejects a noise rate outside [0, 1] and unknown methods", async () => {
  await assert.rejects(
    () => runDemo({ noise: 1.5, log: () => {} }),
    /Demo option "noise" must be between 0 and 1, got 1.5/,
  );
  await assert.rejects(
    () => demoConfigs({ methods: ["coteach" as never] }),
    /Demo option "methods" has "coteach": expected linear, rein, cufit/,
  );
});

Deno.test("demoConfigs() puts the runs under <out>/runs and uses the committed backbone for the demo data", async () => {
  const configs = await demoConfigs({ out: "somewhere" });
  assert.deepEqual(configs.map((c) => c.method), ["linear", "rein", "cufit"]);
  for (const c of configs) {
    assert.equal(c.savePath, join("somewhere", "runs"));
    assert.equal(c.saveName, c.method);
    assert.equal(c.noise.rate, 0.4);
    assert.equal(c.dataset.kind, "synthetic");
    assert.ok(
      DEMO_WEIGHTS.endsWith(c.weights!),
      `${c.weights} is not the committed backbone`,
    );
  }
});

Deno.test("estimateRuns() scales measured steps by the run's batches and epochs", async () => {
  const { dir, conf, weights } = await fixture();
  try {
    const configs = await demoConfigs({
      data: conf,
      weights,
      out: dir,
      methods: ["linear", "cufit"],
      epochs: 5,
    });
    const e = await estimateRuns(configs, { steps: 1 });
    assert.deepEqual(e.methods.map((m) => m.method), ["linear", "cufit"]);
    for (const m of e.methods) {
      // 18 training images in batches of 8, 9 test images: 3 and 2 batches.
      assert.equal(m.steps, 3 * 5);
      assert.equal(m.evalBatches, 2 * 5);
      assert.ok(m.stepSeconds > 0);
      assert.ok(
        Math.abs(
          m.seconds - (m.steps * m.stepSeconds + m.evalBatches * m.evalSeconds),
        ) < 1e-9,
      );
    }
    assert.ok(
      Math.abs(e.seconds - e.methods[0].seconds - e.methods[1].seconds) < 1e-9,
    );
    await assert.rejects(
      () => estimateRuns(configs, { steps: 0 }),
      /Estimate option "steps" must be a positive integer, got 0/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseDemoArgs() reads the flags and names a bad value", () => {
  assert.deepEqual(parseDemoArgs([]), {
    out: "runs/demo",
    noise: 0.4,
    backend: "auto",
    yes: false,
    png: true,
  });
  const o = parseDemoArgs([
    "--out",
    "x",
    "--noise",
    "0.2",
    "--data",
    "bloodmnist",
    "--weights",
    "w.pth",
    "--yes",
    "--epochs",
    "3",
    "--no-png",
  ]);
  assert.equal(o.noise, 0.2);
  assert.equal(o.data, "bloodmnist");
  assert.equal(o.weights, "w.pth");
  assert.equal(o.epochs, 3);
  assert.equal(o.yes, true);
  assert.equal(o.png, false);
  assert.throws(
    () => parseDemoArgs(["--noise", "2"]),
    /Option --noise must be a number from 0 to 1, got "2"/,
  );
  assert.throws(
    () => parseDemoArgs(["--epochs", "0"]),
    /Option --epochs must be a positive integer, got "0"/,
  );
  assert.throws(() => parseDemoArgs(["--bogus"]), /unknown option '--bogus'/);
});

Deno.test("formatTable(), formatSeconds() and verdict() say who won and by how much", () => {
  assert.equal(formatSeconds(42.4), "42 s");
  assert.equal(formatSeconds(185), "3 min 05 s");
  assert.equal(formatSeconds(7800), "2 h 10 min");
  const m = (method: "rein" | "cufit", acc: number) => ({
    method,
    metrics: [{
      epoch: 0,
      lr: 1e-3,
      trainLoss: 1,
      trainAcc: 0.9,
      testAcc: acc,
    }],
    last10: acc,
    best: { epoch: 0, value: acc },
    confusion: [[1]],
    runDir: "",
    seconds: 1,
    config: {} as never,
  });
  const outcome = {
    noiseRate: 0.4,
    actualNoiseRate: 0.35,
    backend: "wasm",
    seconds: 2,
    dataset: {
      name: "demo",
      classes: ["a"],
      train: 1,
      test: 1,
      synthetic: true,
    },
    weights: "w",
    weightsNote: null,
    methods: [m("rein", 0.6), m("cufit", 0.7)],
  };
  assert.match(verdict(outcome), /beats Rein's by 10\.0 points/);
  assert.match(
    verdict(outcome),
    /fits 90\.0% of the noisy training labels, more than the 65\.0% that are clean: it memorized/,
  );
  assert.doesNotMatch(verdict(outcome), /Linear probing/);
  const withLinear = {
    ...outcome,
    methods: [
      { ...m("rein", 0.8), method: "linear" as const },
      ...outcome.methods,
    ],
  };
  assert.match(
    verdict(withLinear),
    /Linear probing scored higher still \(80\.0%\)/,
  );
  assert.match(
    verdict({ ...outcome, methods: [m("rein", 0.7), m("cufit", 0.6)] }),
    /does not beat Rein's \(-10\.0 points\)/,
  );
  const table = formatTable(outcome).split("\n");
  assert.match(table[0], /demo \(synthetic\), 40% symmetric label noise/);
  assert.match(table[3], /^Rein\s+60\.0\s+60\.0/);
  assert.match(table[4], /^CUFIT\s+70\.0\s+70\.0/);
});

Deno.test("the demo task exits 2 on a bad flag, naming it", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (line: string) => errors.push(line);
  try {
    assert.equal(await main(["--noise", "7"]), 2);
    assert.match(errors.join("\n"), /--noise must be a number from 0 to 1/);
  } finally {
    console.error = original;
  }
});
