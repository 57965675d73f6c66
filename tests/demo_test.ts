import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ConfirmationNeededError,
  defaultOut,
  DEMO_WEIGHTS,
  demoConfigs,
  runDemo,
} from "../lib/demo/demo.ts";
import { estimateRuns } from "../lib/demo/estimate.ts";
import {
  type DemoOutcome,
  formatPercent,
  formatSeconds,
  formatTable,
  type MethodOutcome,
  pretextNote,
  verdict,
} from "../lib/demo/summary.ts";
import { initBackend } from "../lib/backend/backend.ts";
import { writeSafetensors } from "../lib/weights/safetensors.ts";
import { demoCommand, main, parseDemoArgs } from "../tasks/demo.ts";
import { parseTrainArgs } from "../lib/train/cli.ts";
import { planRerun } from "../lib/train/rerun.ts";
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
      "dataset",
      "synthetic",
      "noise_rate",
      "actual_noise_rate",
      "epochs",
      "seed",
      "noise_seed",
      "backend",
      "weights",
      "seconds",
      "methods",
    ]);
    assert.equal(summary.noise_rate, 0.4);
    assert.equal(summary.dataset, "tinydemo");
    assert.equal(summary.epochs, 2);
    assert.equal(summary.seed, 0);
    assert.match(summary.backend, /^wasm/);
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
    // 7. Each run records the train:<method> argv that resolves to its
    //    config, so `deno task rerun` repeats it exactly.
    for (const m of ["linear", "rein", "cufit"] as const) {
      const rec = JSON.parse(
        await Deno.readTextFile(join(out, "runs", m, "config.json")),
      );
      assert.deepEqual(parseTrainArgs(m, rec.argv), rec.config, m);
      assert.ok(rec.argv.includes("--save-path"));
      // The sandboxed re-run accepts it and writes beside it.
      const plan = await planRerun(join(out, "runs", m), {
        allowOutside: [dir],
      });
      assert.ok(
        plan.argv.includes(`--save-path=${join(out, "runs")}`),
        plan.argv.join(" "),
      );
    }
    // 8. Every per-epoch line is in the run folder, none on the console.
    const log = await Deno.readTextFile(
      join(out, "runs", "cufit", "train.log"),
    );
    assert.equal(log.match(/^EPOCH /gm)?.length, 2);
    assert.ok(!lines.some((l) => l.startsWith("EPOCH")));
    assert.equal(lines.filter((l) => l.startsWith("CUFIT ")).length, 1);
    // 9. Other noise into the same folder: refused without force.
    await assert.rejects(
      () =>
        runDemo({
          out,
          data: conf,
          weights,
          noise: 0.2,
          methods: ["linear"],
          epochs: 1,
          backend: "wasm",
          png: false,
          progress: false,
          log: () => {},
        }),
      /holds a demo of tinydemo at noise 0.4, not tinydemo at 0.2: pass --force to replace it, or choose another --out/,
    );
    // 10. The same settings again replace the first one's runs.
    await runDemo({
      out,
      data: conf,
      weights,
      noise: 0.4,
      methods: ["linear"],
      epochs: 1,
      backend: "wasm",
      png: false,
      progress: false,
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

Deno.test("defaultOut() names the folder after the data and the noise rate", () => {
  assert.equal(defaultOut(), "runs/demo-noise40");
  assert.equal(defaultOut("bloodmnist", 0.2), "runs/bloodmnist-noise20");
  assert.equal(defaultOut("conf/x y.json", 0.125), "runs/x_y-noise12.5");
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
    noise: 0.4,
    backend: "auto",
    yes: false,
    png: true,
    force: false,
    resume: false,
    skipBad: false,
  });
  const flags = parseDemoArgs(["--force", "--resume", "--skip-bad", "-n=0.1"]);
  assert.equal(flags.force, true);
  assert.equal(flags.resume, true);
  assert.equal(flags.skipBad, true);
  assert.equal(flags.noise, 0.1);
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
    /^TypeError: Option --noise must be a number in \[0, 1\], got 2$/,
  );
  assert.throws(
    () => parseDemoArgs(["--noise", "0x1"]),
    /^TypeError: Option --noise must be a number, got "0x1"$/,
  );
  assert.throws(
    () => parseDemoArgs(["--epochs", "0"]),
    /^TypeError: Option --epochs must be a positive integer, got 0$/,
  );
  assert.throws(() => parseDemoArgs(["--bogus"]), /unknown option '--bogus'/);
});

type Sel = { precision: number | null; recall: number | null };
function outcomeOf(
  accs: Partial<Record<"linear" | "rein" | "cufit", number>>,
  options: {
    actualNoiseRate?: number;
    trainAcc?: number;
    epochs?: number;
    selection?: { lpm: Sel; iam: Sel };
  } = {},
): DemoOutcome {
  const epochs = options.epochs ?? 1;
  const m = (method: "linear" | "rein" | "cufit", acc: number) => ({
    method,
    metrics: Array.from({ length: epochs }, (_, epoch) => ({
      epoch,
      lr: 1e-3,
      trainLoss: 1,
      trainAcc: options.trainAcc ?? 0.9,
      testAcc: acc,
      ...(method === "cufit" && options.selection
        ? {
          selection: {
            lpm: { selected: 1, total: 2, ...options.selection.lpm },
            iam: { selected: 1, total: 2, ...options.selection.iam },
          },
        }
        : {}),
    })) as unknown as MethodOutcome["metrics"],
    last10: acc,
    best: { epoch: 0, value: acc },
    confusion: [[1]],
    runDir: "",
    seconds: 1,
    config: {} as never,
  });
  return {
    noiseRate: 0.4,
    actualNoiseRate: options.actualNoiseRate ?? 0.35,
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
    methods: (["linear", "rein", "cufit"] as const)
      .filter((k) => accs[k] !== undefined)
      .map((k) => m(k, accs[k]!)),
  };
}

Deno.test("formatSeconds() and formatTable() print the figures, last-N for short runs", () => {
  assert.equal(formatPercent(0.1234), "12.3%");
  assert.equal(formatPercent(null), "-");
  assert.equal(formatPercent(Number.NaN), "-");
  assert.equal(formatSeconds(42.4), "42 s");
  assert.equal(formatSeconds(185), "3 min 05 s");
  assert.equal(formatSeconds(7800), "2 h 10 min");
  // Rounding never shows 60 seconds or 60 minutes.
  assert.equal(formatSeconds(59.6), "1 min 00 s");
  assert.equal(formatSeconds(119.6), "2 min 00 s");
  assert.equal(formatSeconds(3599.6), "1 h 00 min");
  assert.equal(formatSeconds(7170), "2 h 00 min");
  const table = formatTable(outcomeOf({ rein: 0.6, cufit: 0.7 }, { epochs: 3 }))
    .split("\n");
  assert.match(table[0], /demo \(synthetic\), 40% symmetric label noise/);
  assert.match(table[1], /last-3 acc %/);
  assert.match(table[3], /^Rein\s+60\.0\s+60\.0/);
  assert.match(table[4], /^CUFIT\s+70\.0\s+70\.0/);
  assert.match(
    formatTable(outcomeOf({ cufit: 0.7 }, { epochs: 12 })),
    /last-10 acc %/,
  );
});

Deno.test("pretextNote() words the backbone's pretext record, never as raw JSON", () => {
  assert.equal(
    pretextNote(
      '{"task":"shape (4) and texture (3) of synthetic lesions","classes":12,"per_class":600,"image_size":32,"crop":28,"epochs":40,"seed":0}',
    ),
    "pre-trained on shape (4) and texture (3) of synthetic lesions (12 classes x 600 generated images, 32 px, 40 epochs, seed 0)",
  );
  assert.equal(pretextNote('{"task":"shapes"}'), "pre-trained on shapes");
  assert.equal(pretextNote("shapes"), "pre-trained on shapes");
  assert.equal(pretextNote("[1,2]"), "pre-trained on [1,2]");
});

Deno.test("verdict() ranks the methods and says who beats whom by how much", () => {
  const v = verdict(outcomeOf({ linear: 0.65, rein: 0.6, cufit: 0.7 }));
  assert.match(
    v,
    /By last-1 test accuracy: CUFIT 70\.0% > Linear probing 65\.0% > Rein 60\.0%\./,
  );
  assert.match(v, /CUFIT beats Rein by 10\.0 points \(70\.0% vs 60\.0%\)\./);
  assert.match(v, /CUFIT beats Linear probing by 5\.0 points/);
  assert.doesNotMatch(v, /no gain|lowest/);
  assert.match(
    v,
    /fits 90\.0% of the noisy training labels, more than the 65\.0% that are clean: it memorized/,
  );
});

Deno.test("verdict() calls equal printed figures a tie, never 'higher'", () => {
  // Noise 1: every label flipped, linear probing and Rein equal, CUFIT lowest.
  const v = verdict(
    outcomeOf({ linear: 0.0125, rein: 0.0125, cufit: 0.005 }, {
      actualNoiseRate: 1,
      trainAcc: 0,
      selection: {
        lpm: { precision: 0, recall: null },
        iam: { precision: null, recall: null },
      },
    }),
  );
  assert.match(
    v,
    /By last-1 test accuracy: Linear probing 1\.3% = Rein 1\.3% > CUFIT 0\.5%\./,
  );
  assert.match(v, /Rein beats CUFIT by 0\.8 points/);
  assert.match(
    v,
    /Linear probing beats CUFIT by 0\.8 points .*: here adapting the backbone brought no gain/,
  );
  assert.match(v, /CUFIT scored lowest of the three/);
  assert.doesNotMatch(v, /higher still|CUFIT wins|beats Rein/);
  assert.match(v, /fits 0\.0% .*, as many as are clean \(0\.0%\)/);
  assert.match(
    v,
    /IAM trained on samples 0\.0% clean \(as clean as the 0\.0% of all labels\); IAM selected no samples for LAM\./,
  );
  const tie = verdict(outcomeOf({ rein: 0.70004, cufit: 0.7 }));
  assert.match(tie, /CUFIT and Rein tie at 70\.0%/);
  assert.match(tie, /Rein 70\.0% = CUFIT 70\.0%|CUFIT 70\.0% = Rein 70\.0%/);
});

Deno.test("verdict() compares selection precision with the share of clean labels", () => {
  const v = verdict(
    outcomeOf({ rein: 0.6, cufit: 0.7 }, {
      trainAcc: 0.5,
      selection: {
        lpm: { precision: 0.97, recall: 0.8 },
        iam: { precision: 0.5, recall: 0.8 },
      },
    }),
  );
  assert.match(v, /fewer than the 65\.0% that are clean/);
  assert.match(
    v,
    /IAM trained on samples 97\.0% clean \(cleaner than the 65\.0% of all labels\); LAM trained on samples 50\.0% clean \(less clean than/,
  );
});

Deno.test("the demo task exits 2 on a bad flag, naming it", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (line: string) => errors.push(line);
  try {
    assert.equal(await main(["--noise", "7"]), 2);
    assert.equal(
      errors.at(-1),
      "demo: Option --noise must be a number in [0, 1], got 7; see `deno task demo --help`",
    );
    assert.equal(await main(["-n=-0.1"]), 2);
    assert.equal(
      errors.at(-1),
      "demo: Option --noise must be a number in [0, 1], got -0.1; see `deno task demo --help`",
    );
    assert.equal(await main(["--data", "nosuch"]), 2);
    assert.match(
      errors.at(-1)!,
      /^demo: Dataset config "nosuch" not found: .*; known datasets: .*demo.*; see `deno task demo --help`$/,
    );
    assert.equal(await main(["--nois", "0.2"]), 2);
    assert.equal(
      errors.at(-1),
      "demo: Unknown option '--nois' (did you mean --noise?); see `deno task demo --help`",
    );
  } finally {
    console.error = original;
  }
});

Deno.test("demo --help lists every dataset file in conf/, demo included", async () => {
  const help = demoCommand().helpInformation();
  for await (const e of Deno.readDir(new URL("../conf/", import.meta.url))) {
    if (!e.name.endsWith(".json")) continue;
    assert.match(help, new RegExp(`\\b${e.name.slice(0, -5)}\\b`), e.name);
  }
});

Deno.test("runDemo() with resume continues the runs in its folder instead of replacing them", async () => {
  const { dir, conf, weights } = await fixture();
  try {
    const out = join(dir, "out");
    const base = {
      out,
      data: conf,
      weights,
      methods: ["linear" as const],
      backend: "wasm" as const,
      png: false,
      progress: false,
    };
    const lines: string[] = [];
    const first = await runDemo({
      ...base,
      epochs: 2,
      log: (l) => lines.push(l),
    });
    const runDir = join(out, "runs", "linear");
    // A finished run resumes with nothing left to train.
    const again = await runDemo({
      ...base,
      epochs: 2,
      resume: true,
      log: (l) => lines.push(l),
    });
    assert.ok(!lines.some((l) => l.startsWith("replacing")));
    assert.equal(again.outcome.methods[0].metrics.length, 2);
    const log = await Deno.readTextFile(join(runDir, "train.log"));
    assert.match(log, /resume: from epoch 1 of /);
    assert.deepEqual(
      again.outcome.methods[0].metrics.map((m) => m.testAcc),
      first.outcome.methods[0].metrics.map((m) => m.testAcc),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
