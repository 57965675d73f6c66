import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/backend.ts";
import { tf } from "../lib/backend/tf.ts";
import {
  loadDatasetConfig,
  resolveConfig,
  type TrainOverrides,
} from "../lib/train/config.ts";
import { SelectionHistory } from "../lib/label_issues/history.ts";
import { loadCheckpoint } from "../lib/train/checkpoint.ts";
import { trainTask } from "../lib/train/task.ts";
import { NonFiniteLossError, train } from "../lib/train/trainer.ts";
import { writeSafetensors } from "../lib/weights/safetensors.ts";
import { tinyWorkspace } from "./_tiny.ts";

await initBackend("wasm", { log: () => {} });

/** A temp folder with tiny weights and a synthetic dataset file saving runs inside it. */
function workspace(conf: Record<string, unknown> = {}): Promise<string> {
  return tinyWorkspace({ conf });
}

const quiet = { log: () => {}, progress: false };

/**
 * The tensors of a checkpoint (parameters, Adam moments), without its header,
 * whose state records the time of the save and of each epoch.
 */
async function tensorsOf(path: string) {
  const { readSafetensors } = await import("../lib/weights/safetensors.ts");
  return (await readSafetensors(path)).tensors;
}

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
        "train_probabilities.safetensors",
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
      assert.match(lines.at(-1)!, /^done: .* last-3 mean test accuracy/);
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
    assert.deepEqual(
      await tensorsOf(`${dir}/runs/cut/last.safetensors`),
      await tensorsOf(`${dir}/runs/full/last.safetensors`),
    );
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
    // The temp folder is outside the project: it must be named to be used.
    await assert.rejects(
      () => main([`${dir}/runs/orig`], () => {}),
      /is outside the project .*; pass --allow-outside DIR/,
    );
    const planned: string[] = [];
    assert.equal(
      await main(
        [`${dir}/runs/orig`, "--allow-outside", dir, "--dry-run"],
        (l) => planned.push(l),
      ),
      0,
    );
    assert.ok(planned.some((l) => /^rerun: grant write .*orig-rerun/.test(l)));
    assert.ok(planned.some((l) => /^rerun: checked: weights file/.test(l)));
    assert.ok(planned.some((l) => /^rerun: checked: clean and noisy/.test(l)));
    assert.throws(
      () => Deno.statSync(`${dir}/runs/orig-rerun`),
      Deno.errors.NotFound,
    );
    const code = await main(
      [`${dir}/runs/orig`, "--allow-outside", dir],
      () => {},
    );
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
      () =>
        main([
          `${dir}/runs/orig`,
          "--save",
          "again",
          "--allow-outside",
          dir,
        ], () => {}),
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
    // On the training split it says which labels it scores against.
    const train: string[] = [];
    await evaluate.main(
      ["--run", `${dir}/runs/ev`, "--backend", "wasm", "--split", "train"],
      (l) => train.push(l),
    );
    assert.match(
      train[1],
      /^scored against the clean training labels \(the run trained on labels with symmetric noise at rate 0\.2/,
    );
    assert.equal(evaluate.pct(0.5), " 50.00%");
    assert.equal(evaluate.pct(1), "100.00%");
    assert.equal(evaluate.pct(null), "    n/a"); // a class never predicted
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
    // Class names, as evaluate prints them, not indices.
    assert.ok(ev.summary.classNames.length === 3);
    assert.deepEqual(Object.keys(p.probabilities), ev.summary.classNames);
    assert.ok(ev.summary.classNames.includes(p.predicted));
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
      /broken\.png.*; the run folder ".*strict" holds no finished epoch: start it over with --resume \(add --skip-bad to skip unreadable images\), or choose another save name \(-s\)/,
    );
    // The folder left behind says the same, and --resume --skip-bad goes on.
    await assert.rejects(
      () => train(cfg({ save: "strict" }), quiet),
      /holds a run that stopped before its first epoch ended: start it over with --resume/,
    );
    const resumed = await train(
      cfg({ save: "strict", resume: true, skipBad: true }),
      quiet,
    );
    assert.ok(resumed.metrics.length > 0);
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

Deno.test("train:cufit killed with SIGKILL again and again, resumed each time, ends like an uninterrupted run", async () => {
  const dir = await workspace({ epoch: "6" });
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
    const run = `${dir}/runs/killed`;
    // What the run folder looks like: names, sizes and times of its files.
    const look = () => {
      try {
        return [...Deno.readDirSync(run)].map((e) => {
          const st = Deno.lstatSync(`${run}/${e.name}`);
          return `${e.name}:${st.size}:${st.mtime?.getTime()}`;
        }).sort().join("|");
      } catch {
        return "";
      }
    };
    // 1. Kill each attempt at its k-th change of the folder (k = 1, 3, 6,
    //    ...), so the kills land in different phases: before the record
    //    exists, amid checkpoint writes, between a checkpoint and its line.
    let kills = 0;
    let finished = false;
    for (let attempt = 0; attempt < 6 && !finished; attempt++) {
      const child = new Deno.Command("deno", {
        args: args("killed", ...(attempt === 0 ? [] : ["--resume"])),
        ...quietly,
      }).spawn();
      let exited = false;
      const status = child.status.then((s) => {
        exited = true;
        return s;
      });
      let seen = look();
      let changes = 0;
      while (!exited && changes < [1, 3, 6, 10, 15, 21][attempt]) {
        await new Promise((r) => setTimeout(r, 2));
        const now = look();
        if (now !== seen) {
          changes++;
          seen = now;
        }
      }
      if (!exited) {
        child.kill("SIGKILL");
        kills++;
      }
      const s = await status;
      finished = s.success;
    }
    assert.ok(kills >= 3, `killed ${kills} times`);
    // 2. Resume to the end, and run the same config uninterrupted.
    if (!finished) {
      const resumed = await new Deno.Command("deno", {
        args: args("killed", "--resume"),
        ...quietly,
      }).output();
      assert.equal(resumed.code, 0);
    }
    const full = await new Deno.Command("deno", {
      args: args("full"),
      ...quietly,
    }).output();
    assert.equal(full.code, 0);
    assert.equal(metricsFile(run).length, 6);
    assert.deepEqual(metricsFile(run), metricsFile(`${dir}/runs/full`));
    for (const tag of ["last", "best"]) {
      assert.deepEqual(
        await tensorsOf(`${run}/${tag}.safetensors`),
        await tensorsOf(`${dir}/runs/full/${tag}.safetensors`),
      );
    }
    assert.equal(
      Deno.readTextFileSync(`${run}/avgacc.txt`),
      Deno.readTextFileSync(`${dir}/runs/full/avgacc.txt`),
    );
    // No lock or temporary file is left behind.
    assert.deepEqual(
      [...Deno.readDirSync(run)].map((e) => e.name).sort(),
      [
        "avgacc.txt",
        "best.json",
        "best.safetensors",
        "config.json",
        "last.json",
        "last.safetensors",
        "metrics.jsonl",
        "train_probabilities.safetensors",
      ],
    );
    // The label-issue record survives too: every epoch's selection bits, and
    // the final training-set probabilities.
    const history = async (name: string) =>
      SelectionHistory.fromState(
        ((await loadCheckpoint(`${dir}/runs/${name}`, "last"))
          .metrics as Record<string, unknown>).selectionHistory,
        name,
        { samples: 24, modules: ["lpm", "iam"] },
      );
    const killed = await history("killed");
    assert.equal(killed.epochs, 6);
    for (let e = 0; e < 6; e++) {
      for (let i = 0; i < 24; i++) assert.ok(killed.seen(e, i));
    }
    assert.deepEqual(killed.toState(), (await history("full")).toState());
    assert.deepEqual(
      await Deno.readFile(
        `${run}/train_probabilities.safetensors`,
      ),
      await Deno.readFile(`${dir}/runs/full/train_probabilities.safetensors`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rerun re-executes an ImageFolder run: sharp decodes inside the sandbox", async () => {
  const dir = await workspace();
  try {
    await imageFolder(dir, 3, 4);
    const argv = [
      "-d",
      `${dir}/folder.json`,
      "--weights",
      `${dir}/w.safetensors`,
      "--backend",
      "wasm",
      "-s",
      "img",
    ];
    assert.equal(await trainTask("linear", argv, quiet), 0);
    const { main } = await import("../tasks/rerun.ts");
    assert.equal(
      await main([`${dir}/runs/img`, "--allow-outside", dir], () => {}),
      0,
    );
    const read = (name: string) =>
      Deno.readTextFileSync(`${dir}/runs/${name}/metrics.jsonl`).trim().split(
        "\n",
      ).map((l) => {
        const { seconds: _s, imagesPerSecond: _i, ...rest } = JSON.parse(l);
        return rest;
      });
    assert.deepEqual(read("img-rerun"), read("img"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Metrics without the timing fields, which differ between runs. */
function timeless(
  m: { seconds?: number; imagesPerSecond?: number }[],
): unknown[] {
  return m.map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);
}

function metricsFile(run: string): unknown[] {
  return timeless(
    Deno.readTextFileSync(`${run}/metrics.jsonl`).trim().split("\n").map((
      l,
    ) => JSON.parse(l)),
  );
}

Deno.test("train() resumes a run killed between renaming a checkpoint's two files", async () => {
  const dir = await workspace();
  try {
    await train(config(dir, "cufit", { save: "full" }), quiet);
    const run = `${dir}/runs/cut`;
    let oldJson: Uint8Array | null = null;
    await train(config(dir, "cufit", { save: "cut" }), {
      ...quiet,
      stopAfterEpochs: 2,
      onEpoch: (m) => {
        if (m.epoch === 0) oldJson = Deno.readFileSync(`${run}/last.json`);
      },
    });
    // Epoch 1's tensors are in place; its JSON rename never happened.
    Deno.writeFileSync(`${run}/last.json`, oldJson!);
    const resumed = await train(
      config(dir, "cufit", { save: "cut", resume: true }),
      quiet,
    );
    assert.equal(resumed.metrics.length, 3);
    assert.deepEqual(metricsFile(run), metricsFile(`${dir}/runs/full`));
    assert.deepEqual(
      await tensorsOf(`${run}/last.safetensors`),
      await tensorsOf(`${dir}/runs/full/last.safetensors`),
    );
    assert.equal(
      Deno.readTextFileSync(`${run}/avgacc.txt`),
      Deno.readTextFileSync(`${dir}/runs/full/avgacc.txt`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train() resumes a run killed after a checkpoint but before its metrics line", async () => {
  const dir = await workspace();
  try {
    await train(config(dir, "cufit", { save: "full" }), quiet);
    const run = `${dir}/runs/cut`;
    await train(config(dir, "cufit", { save: "cut" }), {
      ...quiet,
      stopAfterEpochs: 2,
    });
    // The checkpoint of epoch 1 is written; its line and avgacc.txt are not.
    const lines = Deno.readTextFileSync(`${run}/metrics.jsonl`).split("\n");
    Deno.writeTextFileSync(`${run}/metrics.jsonl`, lines[0] + "\n");
    Deno.writeTextFileSync(`${run}/avgacc.txt`, "stale");
    const resumed = await train(
      config(dir, "cufit", { save: "cut", resume: true }),
      quiet,
    );
    assert.deepEqual(
      timeless(resumed.metrics),
      metricsFile(`${dir}/runs/full`),
    );
    assert.deepEqual(metricsFile(run), metricsFile(`${dir}/runs/full`));
    assert.equal(
      Deno.readTextFileSync(`${run}/avgacc.txt`),
      Deno.readTextFileSync(`${dir}/runs/full/avgacc.txt`),
    );
    assert.deepEqual(
      await tensorsOf(`${run}/best.safetensors`),
      await tensorsOf(`${dir}/runs/full/best.safetensors`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train() removes temporary files of killed writes when it starts", async () => {
  const dir = await workspace();
  try {
    const run = `${dir}/runs/linear`;
    await train(config(dir, "linear"), { ...quiet, stopAfterEpochs: 1 });
    const stale = [
      ".last.safetensors.tmp-4242-abc",
      ".metrics.jsonl.tmp-4242-x9",
      ".last.json.tmp-1-0",
      ".best.safetensors.tmp-4242-yihbk8.tmp-5fe2b981",
    ];
    for (const f of stale) Deno.writeTextFileSync(`${run}/${f}`, "partial");
    const lines: string[] = [];
    await train(config(dir, "linear", { resume: true }), {
      ...quiet,
      log: (l) => lines.push(l),
    });
    const left = [...Deno.readDirSync(run)].map((e) => e.name);
    for (const f of stale) assert.ok(!left.includes(f), `${f} removed`);
    assert.ok(
      lines.some((l) =>
        /removed 4 temporary file\(s\) of interrupted writes/.test(l)
      ),
      lines.join("\n"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train() refuses a second run with the same name while the first holds the folder", async () => {
  const dir = await workspace();
  try {
    const run = `${dir}/runs/linear`;
    const { acquireRunLock } = await import("../lib/train/run_lock.ts");
    Deno.mkdirSync(run, { recursive: true });
    const first = await acquireRunLock(run);
    try {
      await assert.rejects(
        () => train(config(dir, "linear"), quiet),
        new RegExp(
          `Run folder ".*runs/linear" is in use by process ${Deno.pid} \\(lock file ".*run\\.lock"\\)`,
        ),
      );
      assert.throws(
        () => Deno.statSync(`${run}/metrics.jsonl`),
        Deno.errors.NotFound,
      );
    } finally {
      await first.release();
    }
    await train(config(dir, "linear"), quiet);
    assert.equal(metricsFile(run).length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train() on a full disk names the file it could not write", async () => {
  const dir = await workspace();
  try {
    const run = `${dir}/runs/linear`;
    Deno.mkdirSync(run, { recursive: true });
    // Every write to /dev/full fails with ENOSPC.
    Deno.symlinkSync("/dev/full", `${run}/metrics.jsonl`);
    await assert.rejects(
      () => train(config(dir, "linear"), quiet),
      new RegExp(
        `Cannot write ".*runs/linear/metrics\\.jsonl": No space left on device`,
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train() --resume refuses weights or an init file whose contents changed, naming the file", async () => {
  const dir = await workspace();
  try {
    const { tensors } = await import("../lib/weights/safetensors.ts").then((
      m,
    ) => m.readSafetensors(`${dir}/w.safetensors`));
    void tensors;
    await train(config(dir, "linear"), { ...quiet, stopAfterEpochs: 1 });
    // Same path, other bytes.
    const w = Deno.readFileSync(`${dir}/w.safetensors`);
    const changed = w.slice();
    changed[changed.length - 1] ^= 1;
    Deno.writeFileSync(`${dir}/w.safetensors`, changed);
    await assert.rejects(
      () => train(config(dir, "linear", { resume: true }), quiet),
      new RegExp(
        `Cannot resume run ".*runs/linear": the weights file ".*w\\.safetensors" changed since the run started \\(recorded sha256 [0-9a-f]{64}, now [0-9a-f]{64}\\)`,
      ),
    );
    Deno.writeFileSync(`${dir}/w.safetensors`, w);
    assert.equal(
      (await train(config(dir, "linear", { resume: true }), quiet)).metrics
        .length,
      3,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
