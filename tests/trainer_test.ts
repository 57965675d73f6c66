import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/backend.ts";
import { tf } from "../lib/backend/tf.ts";
import {
  loadDatasetConfig,
  resolveConfig,
  type TrainOverrides,
} from "../lib/train/config.ts";
import { trainTask } from "../lib/train/task.ts";
import { NonFiniteLossError, train } from "../lib/train/trainer.ts";
import { writeSafetensors } from "../lib/weights/safetensors.ts";
import { tinyModel } from "./_tiny.ts";

await initBackend("wasm", { log: () => {} });

/** A temp folder with tiny backbone weights and a synthetic dataset file saving runs inside it. */
async function workspace(extra: Record<string, unknown> = {}) {
  const dir = await Deno.makeTempDir();
  const { backbone } = tinyModel({
    dim: 16,
    depth: 2,
    heads: 2,
    classes: 3,
    seed: 1,
  }, "linear");
  await writeSafetensors(`${dir}/w.safetensors`, backbone, {
    metadata: { variant: JSON.stringify({ num_heads: 2 }) },
  });
  const conf = {
    epoch: "3",
    id_dataset: `${dir}/data`,
    batch_size: 8,
    save_path: `${dir}/runs/`,
    num_classes: 3,
    dataset: "synthetic",
    resize: 32,
    image_size: 28,
    synthetic: { train_per_class: 8, test_per_class: 4, size: 32, seed: 0 },
    ...extra,
  };
  await Deno.writeTextFile(`${dir}/synthetic.json`, JSON.stringify(conf));
  return dir;
}

const quiet = { log: () => {}, progress: false };

/**
 * An ImageFolder of classes a, b, c (two small PNGs each, per split) under
 * `dir/folder`, and `dir/folder.json` describing it with `numClasses`.
 */
async function imageFolder(dir: string, numClasses: number, batchSize: number) {
  const sharp = (await import("sharp")).default;
  for (const split of ["train", "test"]) {
    for (const [i, cls] of ["a", "b", "c"].entries()) {
      await Deno.mkdir(`${dir}/folder/${split}/${cls}`, { recursive: true });
      for (const n of [0, 1]) {
        await sharp({
          create: {
            width: 8,
            height: 8,
            channels: 3,
            background: { r: 80 * i, g: 40 * n, b: 9 },
          },
        }).png().toFile(`${dir}/folder/${split}/${cls}/${n}.png`);
      }
    }
  }
  const conf = {
    epoch: 1,
    id_dataset: `${dir}/folder`,
    batch_size: batchSize,
    save_path: `${dir}/runs/`,
    num_classes: numClasses,
    dataset: "image_folder",
    resize: 32,
    image_size: 28,
  };
  await Deno.writeTextFile(`${dir}/folder.json`, JSON.stringify(conf));
  return (o: TrainOverrides = {}) =>
    resolveConfig("linear", loadDatasetConfig(`${dir}/folder.json`), {
      weights: `${dir}/w.safetensors`,
      backend: "wasm",
      ...o,
    });
}

function config(
  dir: string,
  method: "linear" | "rein" | "cufit",
  o: TrainOverrides = {},
) {
  return resolveConfig(method, loadDatasetConfig(`${dir}/synthetic.json`), {
    weights: `${dir}/w.safetensors`,
    backend: "wasm",
    save: method,
    ...o,
  });
}

for (const method of ["linear", "rein", "cufit"] as const) {
  Deno.test(`train:${method} runs end to end on synthetic data and writes its run folder`, async () => {
    const dir = await workspace();
    try {
      const lines: string[] = [];
      const code = await trainTask(method, [
        "-d",
        `${dir}/synthetic.json`,
        "-n",
        "0.4",
        "--weights",
        `${dir}/w.safetensors`,
        "--backend",
        "wasm",
        "-s",
        "e2e",
      ], { log: (l) => lines.push(l), progress: false });
      assert.equal(code, 0, lines.join("\n"));
      const run = `${dir}/runs/e2e`;
      const files = [...Deno.readDirSync(run)].map((e) => e.name).sort();
      assert.deepEqual(files, [
        "avgacc.txt",
        "best.json",
        "best.safetensors",
        "config.json",
        "last.json",
        "last.safetensors",
        "metrics.jsonl",
      ]);
      const metrics = Deno.readTextFileSync(`${run}/metrics.jsonl`).trim()
        .split("\n").map((l) => JSON.parse(l));
      assert.equal(metrics.length, 3);
      assert.equal(metrics[2].lr, 1e-3 * 0.1 ** 3);
      if (method === "cufit") {
        assert.ok(metrics[0].selection.lpm.total === 24);
        assert.ok("iam" in metrics[0].selection);
        assert.deepEqual(Object.keys(metrics[0].heads).sort(), [
          "iam",
          "lam",
          "lpm",
        ]);
      }
      assert.match(lines.at(-1)!, /^done: .* last-10 mean test accuracy/);
      const recorded = JSON.parse(Deno.readTextFileSync(`${run}/config.json`));
      assert.equal(recorded.config.noise.rate, 0.4);
      assert.match(recorded.digests.weights.sha256, /^[0-9a-f]{64}$/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("train() killed after an epoch and resumed ends with the same metrics and weights", async () => {
  const dir = await workspace();
  try {
    const full = await train(config(dir, "cufit", { save: "full" }), quiet);
    await train(config(dir, "cufit", { save: "cut" }), {
      ...quiet,
      stopAfterEpochs: 1,
    });
    const resumed = await train(
      config(dir, "cufit", { save: "cut", resume: true }),
      quiet,
    );
    const strip = (m: { seconds?: number; imagesPerSecond?: number }[]) =>
      m.map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);
    assert.deepEqual(strip(resumed.metrics), strip(full.metrics));
    const a = await Deno.readFile(`${dir}/runs/full/last.safetensors`);
    const b = await Deno.readFile(`${dir}/runs/cut/last.safetensors`);
    assert.deepEqual(b, a);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train() keeps the tensor count flat across epochs", async () => {
  const dir = await workspace();
  try {
    const counts: number[] = [];
    await train(config(dir, "cufit"), {
      ...quiet,
      onEpoch: () => counts.push(tf.memory().numTensors),
    });
    assert.equal(counts.length, 3);
    assert.equal(counts[2], counts[1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train() stops on a non-finite loss naming epoch and batch, writing no checkpoint", async () => {
  const dir = await workspace();
  try {
    const { tensors } = await import("../lib/weights/safetensors.ts").then((
      m,
    ) => m.readSafetensors(`${dir}/w.safetensors`));
    const bad = new Map([
      ["linear.weight", {
        dtype: "F32" as const,
        shape: [3, 16],
        data: new Float32Array(48).fill(NaN),
      }],
      ["linear.bias", {
        dtype: "F32" as const,
        shape: [3],
        data: new Float32Array(3),
      }],
    ]);
    void tensors;
    await writeSafetensors(`${dir}/init.safetensors`, bad);
    await assert.rejects(
      () =>
        train(
          config(dir, "linear", { init: `${dir}/init.safetensors` }),
          quiet,
        ),
      (e: Error) => {
        assert.ok(e instanceof NonFiniteLossError);
        assert.match(e.message, /Loss "linear" is NaN at epoch 0, batch 0/);
        return true;
      },
    );
    assert.throws(
      () => Deno.statSync(`${dir}/runs/linear/last.json`),
      Deno.errors.NotFound,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train() refuses a label >= num_classes before training", async () => {
  const dir = await workspace();
  try {
    // An ImageFolder with three classes under a dataset file that says two.
    const cfg = (await imageFolder(dir, 2, 2))();
    await assert.rejects(
      () => train(cfg, quiet),
      /has label 2, but num_classes is 2/,
    );
    assert.throws(() => Deno.statSync(`${dir}/runs`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rerun re-executes a recorded run into a new folder with the same results", async () => {
  const dir = await workspace();
  try {
    const argv = [
      "-d",
      `${dir}/synthetic.json`,
      "--weights",
      `${dir}/w.safetensors`,
    ];
    assert.equal(
      await trainTask(
        "rein",
        [...argv, "--backend", "wasm", "-s", "orig"],
        quiet,
      ),
      0,
    );
    const { main } = await import("../tasks/rerun.ts");
    const code = await main([`${dir}/runs/orig`], () => {});
    assert.equal(code, 0);
    const read = (name: string) =>
      Deno.readTextFileSync(`${dir}/runs/${name}/metrics.jsonl`).trim().split(
        "\n",
      ).map((l) => {
        const { seconds: _s, imagesPerSecond: _i, ...rest } = JSON.parse(l);
        return rest;
      });
    assert.deepEqual(read("orig-rerun"), read("orig"));
    // A changed weights file is refused.
    await Deno.writeTextFile(`${dir}/w.safetensors`, "x", { append: true });
    await assert.rejects(
      () => main([`${dir}/runs/orig`, "--save", "again"], () => {}),
      /digest|sha256|changed/i,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("evaluate and predict read a finished run", async () => {
  const dir = await workspace();
  try {
    const argv = [
      "-d",
      `${dir}/synthetic.json`,
      "--weights",
      `${dir}/w.safetensors`,
    ];
    assert.equal(
      await trainTask(
        "cufit",
        [...argv, "--backend", "wasm", "-s", "ev"],
        quiet,
      ),
      0,
    );
    const evaluate = await import("../tasks/evaluate.ts");
    const out: string[] = [];
    assert.equal(
      await evaluate.main([
        "--run",
        `${dir}/runs/ev`,
        "--backend",
        "wasm",
        "--json",
      ], (l) => out.push(l)),
      0,
    );
    const ev = JSON.parse(out[0]);
    assert.equal(ev.predictor, "lam");
    assert.equal(ev.summary.total, 12);
    assert.equal(ev.summary.confusion.length, 3);
    assert.deepEqual(Object.keys(ev.modules).sort(), ["iam", "lam", "lpm"]);
    const sharp = (await import("sharp")).default;
    await sharp({
      create: { width: 40, height: 30, channels: 3, background: "#a05030" },
    })
      .png().toFile(`${dir}/x.png`);
    const predict = await import("../tasks/predict.ts");
    const lines: string[] = [];
    assert.equal(
      await predict.main([
        "--run",
        `${dir}/runs/ev`,
        "--backend",
        "wasm",
        `${dir}/x.png`,
      ], (l) => lines.push(l)),
      0,
    );
    const p = JSON.parse(lines[0]);
    assert.equal(p.image, `${dir}/x.png`);
    const total = Object.values(p.probabilities as Record<string, number>)
      .reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1) < 1e-6);
    await assert.rejects(
      () => evaluate.main(["--run", dir], () => {}),
      /is not a run folder/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train() names an unreadable image, or skips and reports it with skipBad", async () => {
  const dir = await workspace();
  try {
    const cfg = await imageFolder(dir, 3, 4);
    await Deno.writeTextFile(`${dir}/folder/train/b/broken.png`, "not a png");
    await assert.rejects(
      () => train(cfg({ save: "strict" }), quiet),
      /broken\.png/,
    );
    const lines: string[] = [];
    await train(cfg({ save: "lenient", skipBad: true }), {
      ...quiet,
      log: (l) => lines.push(l),
    });
    assert.ok(
      lines.some((l) => /skipped 1 unreadable image\(s\).*broken\.png/.test(l)),
      lines.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train:cufit killed with SIGKILL mid-run and resumed ends like an uninterrupted run", async () => {
  const dir = await workspace({ epoch: "8" });
  try {
    const root = new URL("..", import.meta.url).pathname;
    const args = (save: string, ...extra: string[]) => [
      "run",
      "-A",
      `${root}tasks/train_cufit.ts`,
      "-d",
      `${dir}/synthetic.json`,
      "--weights",
      `${dir}/w.safetensors`,
      "--backend",
      "wasm",
      "-s",
      save,
      ...extra,
    ];
    const quietly = { stdout: "null", stderr: "null" } as const;
    // 1. Kill as soon as the first epoch's checkpoint is in place.
    const child = new Deno.Command("deno", { args: args("killed"), ...quietly })
      .spawn();
    const last = `${dir}/runs/killed/last.json`;
    for (let i = 0; i < 600; i++) {
      try {
        await Deno.stat(last);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    child.kill("SIGKILL");
    await child.status;
    const linesAtKill = Deno.readTextFileSync(
      `${dir}/runs/killed/metrics.jsonl`,
    ).trim().split("\n");
    assert.ok(linesAtKill.length < 8, "the run was killed before it finished");
    // 2. Resume it, and run the same config uninterrupted.
    const resumed = await new Deno.Command("deno", {
      args: args("killed", "--resume"),
      ...quietly,
    })
      .output();
    assert.equal(resumed.code, 0);
    const full = await new Deno.Command("deno", {
      args: args("full"),
      ...quietly,
    }).output();
    assert.equal(full.code, 0);
    const metrics = (name: string) =>
      Deno.readTextFileSync(`${dir}/runs/${name}/metrics.jsonl`).trim().split(
        "\n",
      ).map((l) => {
        const { seconds: _s, imagesPerSecond: _i, ...rest } = JSON.parse(l);
        return rest;
      });
    assert.equal(metrics("killed").length, 8);
    assert.deepEqual(metrics("killed"), metrics("full"));
    assert.deepEqual(
      await Deno.readFile(`${dir}/runs/killed/last.safetensors`),
      await Deno.readFile(`${dir}/runs/full/last.safetensors`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
