import assert from "node:assert/strict";
import { join } from "node:path";
import {
  loadDatasetConfig,
  resolveConfig,
  type TrainOverrides,
} from "../lib/train/config.ts";
import { planRerun } from "../lib/train/rerun.ts";
import { createRunDir } from "../lib/train/run_dir.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

interface Fixture {
  tmp: string;
  runDir: string;
  weights: string;
  labels: string;
  conf: string;
}

async function recordedRun(
  opts: {
    kind?: string;
    versions?: Record<string, string | string[]>;
    overrides?: TrainOverrides;
  } = {},
): Promise<Fixture> {
  const tmp = await Deno.makeTempDir();
  const conf = join(tmp, "toy.json");
  const kind = opts.kind ?? "synthetic";
  await Deno.writeTextFile(
    conf,
    JSON.stringify({
      epoch: 2,
      id_dataset: join(tmp, "data"),
      batch_size: 4,
      save_path: join(tmp, "checkpoints"),
      num_classes: 3,
      dataset: kind,
      image_size: 28,
      resize: 32,
      ...(kind === "synthetic"
        ? {
          synthetic: {
            train_per_class: 2,
            test_per_class: 1,
            size: 32,
            seed: 0,
          },
        }
        : {}),
    }),
  );
  await Deno.mkdir(join(tmp, "data"));
  const weights = join(tmp, "w.safetensors");
  await Deno.writeFile(weights, new Uint8Array([1, 2, 3]));
  const labels = join(tmp, "train.csv");
  await Deno.writeTextFile(labels, "id_code,diagnosis\na,1\n");
  const config = resolveConfig("cufit", loadDatasetConfig(conf), {
    save: "run1",
    weights,
    resume: false,
    ...opts.overrides,
  });
  const runDir = await createRunDir(config, {
    argv: [
      "-d",
      conf,
      "-s",
      "run1",
      "--weights",
      weights,
      "--resume",
      "-n",
      "0.4",
    ],
    versions: opts.versions ??
      { tfjs: "4.22.0", backend: "wasm", nativeKernels: [] },
    labelListFile: labels,
  });
  return { tmp, runDir, weights, labels, conf };
}

function flagValue(flags: string[], name: string): string[] | null {
  const f = flags.find((x) => x.startsWith(`${name}=`));
  return f === undefined ? null : f.slice(name.length + 1).split(",");
}

Deno.test("planRerun() limits reads to inputs, run folders and project files, writes to the new run", async () => {
  const fx = await recordedRun();
  const plan = await planRerun(fx.runDir);
  const newRunDir = join(fx.tmp, "checkpoints", "run1-rerun");
  assert.equal(plan.newRunDir, newRunDir);
  assert.equal(plan.config.saveName, "run1");
  const reads = flagValue(plan.permissions, "--allow-read")!;
  for (
    const p of [
      join(fx.tmp, "data"),
      fx.conf,
      fx.weights,
      fx.labels,
      fx.runDir,
      newRunDir,
      join(ROOT, "lib"),
      join(ROOT, "tasks"),
      join(ROOT, "conf"),
      join(ROOT, "node_modules"),
    ]
  ) {
    assert.ok(reads.includes(p), `reads ${p}`);
  }
  assert.ok(!reads.includes(fx.tmp), "not the whole temp folder");
  assert.deepEqual(flagValue(plan.permissions, "--allow-write"), [newRunDir]);
  assert.ok(
    !plan.permissions.some((f) => /^--allow-(net|ffi|run|env|sys|all)/.test(f)),
  );
  assert.ok(!plan.permissions.includes("-A"));
  assert.deepEqual(plan.denoArgs.slice(0, 2), ["run", "--no-prompt"]);
  assert.equal(plan.script, join(ROOT, "tasks", "train_cufit.ts"));
  assert.deepEqual(plan.denoArgs.slice(-plan.argv.length - 1), [
    plan.script,
    ...plan.argv,
  ]);
});

Deno.test("planRerun() re-uses the recorded argv without --resume, saving to the new run", async () => {
  const fx = await recordedRun();
  const plan = await planRerun(fx.runDir, { save: "again" });
  assert.deepEqual(plan.argv, [
    "-d",
    fx.conf,
    "-s",
    "run1",
    "--weights",
    fx.weights,
    "-n",
    "0.4",
    "--save",
    "again",
  ]);
  assert.equal(plan.newRunDir, join(fx.tmp, "checkpoints", "again"));
  assert.equal(plan.cwd, Deno.cwd());
});

Deno.test("planRerun() grants FFI only when the run needed a native addon", async () => {
  const cases: [Parameters<typeof recordedRun>[0], boolean][] = [
    [{ versions: { backend: "wasm", nativeKernels: [] } }, false],
    [{ versions: { backend: "cpu" } }, false],
    [{ versions: { backend: "tensorflow" } }, true],
    [{ versions: { backend: "wasm", nativeKernels: ["BatchMatMul"] } }, true],
    [{ kind: "image_folder", versions: { backend: "wasm" } }, true],
    [{ kind: "medmnist", versions: { backend: "wasm" } }, false],
  ];
  for (const [opts, ffi] of cases) {
    const plan = await planRerun((await recordedRun(opts)).runDir);
    assert.equal(
      plan.permissions.includes("--allow-ffi"),
      ffi,
      JSON.stringify(opts),
    );
  }
});

Deno.test("planRerun() refuses a weights file that changed, naming both digests", async () => {
  const fx = await recordedRun();
  await Deno.writeFile(fx.weights, new Uint8Array([9, 9, 9]));
  await assert.rejects(
    () => planRerun(fx.runDir),
    new RegExp(
      `Cannot re-run ".*run1": the weights file "${fx.weights}" changed since the run ` +
        `\\(recorded sha256 039058c6[0-9a-f]{56}, now [0-9a-f]{64}\\)`,
    ),
  );
});

Deno.test("planRerun() refuses a label list that changed or is gone", async () => {
  const fx = await recordedRun();
  await Deno.writeTextFile(fx.labels, "id_code,diagnosis\na,2\n");
  await assert.rejects(
    () => planRerun(fx.runDir),
    /the label list ".*train\.csv" changed since the run/,
  );
  await Deno.remove(fx.labels);
  await assert.rejects(
    () => planRerun(fx.runDir),
    /the label list ".*train\.csv" is gone \(recorded sha256 [0-9a-f]{64}\)/,
  );
});

Deno.test("planRerun() refuses a missing record and an occupied new run folder", async () => {
  const empty = await Deno.makeTempDir();
  await assert.rejects(
    () => planRerun(empty),
    /Cannot re-run ".*": ".*config\.json" not found/,
  );
  const fx = await recordedRun();
  const other = join(fx.tmp, "checkpoints", "taken");
  await Deno.mkdir(other);
  await Deno.writeTextFile(join(other, "config.json"), "{}");
  await assert.rejects(
    () => planRerun(fx.runDir, { save: "taken" }),
    /into ".*taken": it already holds a run; choose another name/,
  );
  await assert.rejects(
    () => planRerun(fx.runDir, { save: "../x" }),
    /Option "save" must be a folder name/,
  );
});

Deno.test("planRerun() permissions sandbox a real deno process", async () => {
  const fx = await recordedRun();
  const plan = await planRerun(fx.runDir);
  const probe = join(fx.tmp, "probe.ts");
  await Deno.writeTextFile(
    probe,
    `const q = (d) => Deno.permissions.querySync(d).state;
console.log(JSON.stringify({
  readData: q({ name: "read", path: ${JSON.stringify(join(fx.tmp, "data"))} }),
  readWeights: q({ name: "read", path: ${JSON.stringify(fx.weights)} }),
  readTmp: q({ name: "read", path: ${JSON.stringify(fx.tmp)} }),
  readEtc: q({ name: "read", path: "/etc/passwd" }),
  writeNew: q({ name: "write", path: ${
      JSON.stringify(join(plan.newRunDir, "config.json"))
    } }),
  writeOld: q({ name: "write", path: ${
      JSON.stringify(join(fx.runDir, "config.json"))
    } }),
  net: q({ name: "net" }),
  ffi: q({ name: "ffi" }),
  run: q({ name: "run" }),
}));`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", ...plan.permissions, probe],
    cwd: plan.cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), {
    readData: "granted",
    readWeights: "granted",
    readTmp: "prompt",
    readEtc: "prompt",
    writeNew: "granted",
    writeOld: "prompt",
    net: "prompt",
    ffi: "prompt",
    run: "prompt",
  });
});
