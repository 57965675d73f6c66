import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cKernelsFileName } from "../lib/backend/native/c_kernels.ts";
import { parseTrainArgs } from "../lib/train/cli.ts";
import {
  loadDatasetConfig,
  resolveConfig,
  type TrainOverrides,
} from "../lib/train/config.ts";
import { noisyTrainLabels, openDatasets } from "../lib/train/data.ts";
import {
  checkRerunLabels,
  planRerun,
  type PlanRerunOptions,
} from "../lib/train/rerun.ts";
import { createRunDir } from "../lib/train/run_dir.ts";

const ROOT = await Deno.realPath(
  new URL("../", import.meta.url).pathname.replace(/\/$/, ""),
);

/** A parsed config.json, edited freely by the tests (any shape goes). */
// deno-lint-ignore no-explicit-any
type RecordJson = Record<string, any>;

interface Fixture {
  tmp: string;
  runDir: string;
  weights: string;
  labels: string;
  conf: string;
  /** planRerun options that allow the temp folder. */
  allow: PlanRerunOptions;
}

/** A run recorded under a temp folder (outside the project). */
async function recordedRun(
  opts: {
    kind?: string;
    versions?: Record<string, string | string[]>;
    overrides?: TrainOverrides;
    argv?: string[];
  } = {},
): Promise<Fixture> {
  const tmp = await Deno.realPath(await Deno.makeTempDir());
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
  await Deno.mkdir(join(tmp, "checkpoints"));
  const weights = join(tmp, "w.safetensors");
  await Deno.writeFile(weights, new Uint8Array([1, 2, 3]));
  const labels = join(tmp, "train.csv");
  await Deno.writeTextFile(labels, "id_code,diagnosis\na,1\n");
  const config = resolveConfig("cufit", loadDatasetConfig(conf), {
    save: "run1",
    weights,
    resume: false,
    noise: 0.4,
    ...opts.overrides,
  });
  // Real label digests where the data can be made (synthetic), else stand-ins.
  let trainLabels: ArrayLike<number> = [0, 1, 2];
  let noisyLabels: ArrayLike<number> = [0, 2, 2];
  if (kind === "synthetic") {
    const { train } = await openDatasets(config);
    trainLabels = train.labels;
    noisyLabels = noisyTrainLabels(config, train).noisy;
  }
  const runDir = await createRunDir(config, {
    argv: opts.argv ?? ["-d", conf, "-s", "run1", "--weights", weights],
    versions: opts.versions ??
      { tfjs: "4.22.0", backend: "wasm", nativeKernels: [] },
    labelListFile: labels,
    trainLabels,
    noisyLabels,
  });
  return {
    tmp,
    runDir,
    weights,
    labels,
    conf,
    allow: { allowOutside: [tmp] },
  };
}

/** Rewrites the run's config.json through `edit`. */
async function editRecord(
  runDir: string,
  edit: (r: RecordJson) => void,
): Promise<void> {
  const file = join(runDir, "config.json");
  const r = JSON.parse(await Deno.readTextFile(file));
  edit(r);
  await Deno.writeTextFile(file, JSON.stringify(r));
}

function flagValue(flags: string[], name: string): string[] | null {
  const f = flags.find((x) => x.startsWith(`${name}=`));
  return f === undefined ? null : f.slice(name.length + 1).split(",");
}

Deno.test("planRerun() grants read of the inputs, run folders and project code, write of the new run only", async () => {
  const fx = await recordedRun();
  const plan = await planRerun(fx.runDir, fx.allow);
  const newRunDir = join(fx.tmp, "checkpoints", "run1-rerun");
  assert.equal(plan.newRunDir, newRunDir);
  const reads = flagValue(plan.permissions, "--allow-read")!;
  assert.deepEqual(
    reads.sort(),
    [
      fx.conf,
      fx.weights,
      fx.labels,
      fx.runDir,
      newRunDir,
      join(ROOT, "lib"),
      join(ROOT, "tasks"),
      join(ROOT, "node_modules"),
      join(ROOT, "deno.json"),
      join(ROOT, "deno.lock"),
    ].sort(),
  );
  assert.deepEqual(flagValue(plan.permissions, "--allow-write"), [newRunDir]);
  assert.ok(
    !plan.permissions.some((f) => /^--allow-(net|run|all|import)/.test(f)),
  );
  assert.ok(!plan.permissions.includes("-A"));
  // Every permission is scoped: no bare --allow-ffi / --allow-env / --allow-sys.
  for (const f of plan.permissions) assert.match(f, /^--allow-\w+=./);
  assert.deepEqual(plan.denoArgs.slice(0, 2), ["run", "--no-prompt"]);
  assert.equal(plan.script, join(ROOT, "tasks", "train_cufit.ts"));
  assert.deepEqual(plan.denoArgs.slice(-plan.argv.length - 1), [
    plan.script,
    ...plan.argv,
  ]);
  // The plan names every grant with its reason.
  assert.deepEqual(
    plan.grants.filter((g) => g.kind === "read").map((g) => g.value).sort(),
    reads.sort(),
  );
  assert.ok(plan.grants.every((g) => g.why.length > 0));
});

Deno.test("planRerun() rebuilds the command line from the checked config, not the recorded argv", async () => {
  const fx = await recordedRun({
    // A hand-edited argv trying to widen what the child reads.
    argv: ["-d", "/etc/x.json", "--data-root", "/etc", "--init", "/etc/passwd"],
  });
  const plan = await planRerun(fx.runDir, { ...fx.allow, save: "again" });
  assert.ok(!plan.argv.some((a) => a.includes("/etc")), plan.argv.join(" "));
  assert.ok(!plan.permissions.some((a) => a.includes("/etc")));
  // The child parses that argv into the recorded config, saving elsewhere.
  const recorded = plan.record.config;
  assert.deepEqual(parseTrainArgs("cufit", plan.argv), {
    ...recorded,
    saveName: "again",
    resume: false,
  });
  assert.equal(plan.cwd, Deno.cwd());
});

Deno.test("planRerun() runs one of three fixed scripts: a method naming a path is refused", async () => {
  const fx = await recordedRun();
  const payload = join(fx.runDir, "payload.ts");
  await Deno.writeTextFile(payload, "console.log('pwned');");
  await editRecord(fx.runDir, (r) => {
    r.config.method = `x/../../${payload.slice(1, -3)}`;
  });
  await assert.rejects(
    () => planRerun(fx.runDir, fx.allow),
    /Run record ".*config\.json": key "config\.method" must be one of "linear", "rein", "cufit", got "x\/\.\.\//,
  );
});

Deno.test("planRerun() refuses a record with an unknown key, a wrong type or a missing digest, naming the key", async () => {
  const cases: [(r: RecordJson) => void, RegExp][] = [
    [(r) => (r.config.extra = 1), /unknown key "config\.extra"/],
    [
      (r) => (r.argv = "rm -rf /"),
      /key "argv" must be a list, got "rm -rf \/"/,
    ],
    [
      (r) => (r.config.epochs = "3"),
      /key "config\.epochs" must be an integer >= 1, got "3"/,
    ],
    [(r) => delete r.config.threads, /missing key "config\.threads"/],
    [
      (r) => (r.config.threads = 0),
      /key "config\.threads" must be an integer >= 1, got 0/,
    ],
    [
      (r) => (r.digests.weights.sha256 = "x"),
      /key "digests\.weights\.sha256" must be a SHA-256/,
    ],
    [
      (r) => (r.digests.weights = null),
      /key "digests\.weights" is null, but the run loaded weights: a re-run checks every input's digest/,
    ],
    [
      (r) => (r.digests.noisyLabels = null),
      /key "digests\.noisyLabels" is null/,
    ],
  ];
  for (const [edit, error] of cases) {
    const fx = await recordedRun();
    await editRecord(fx.runDir, edit);
    await assert.rejects(() => planRerun(fx.runDir, fx.allow), error);
  }
});

Deno.test("planRerun() refuses paths outside the project unless --allow-outside names their folder", async () => {
  const fx = await recordedRun();
  // Without --allow-outside, the temp folder is outside the project.
  await assert.rejects(
    () => planRerun(fx.runDir),
    /the dataset file ".*toy\.json" is outside the project ".*"; pass --allow-outside DIR/,
  );
  await editRecord(fx.runDir, (r) => (r.cwd = fx.tmp));
  await assert.rejects(
    () => planRerun(fx.runDir),
    /its working directory ".*" is outside the project ".*"; pass --allow-outside DIR/,
  );
  const cases: [(r: RecordJson) => void, RegExp][] = [
    [
      (r) => {
        r.config.dataset.kind = "image_folder";
        r.config.dataset.root = "/";
      },
      /the dataset root "\/" is outside the project/,
    ],
    [
      (r) => (r.config.savePath = "/etc"),
      /the save path "\/etc" is outside the project/,
    ],
  ];
  for (const [edit, error] of cases) {
    const f = await recordedRun();
    await editRecord(f.runDir, edit);
    await assert.rejects(() => planRerun(f.runDir, f.allow), error);
  }
  // A symlink inside an allowed folder to a file outside it.
  const other = await Deno.realPath(await Deno.makeTempDir());
  const f = await recordedRun();
  await Deno.rename(f.weights, join(other, "w.safetensors"));
  await Deno.symlink(join(other, "w.safetensors"), f.weights);
  await assert.rejects(
    () => planRerun(f.runDir, f.allow),
    new RegExp(
      `the weights file "${f.weights}" \\(real path "${other}/w.safetensors"\\) is outside the project`,
    ),
  );
  // Named on the command line, it is allowed, and both paths are granted.
  const plan = await planRerun(f.runDir, {
    allowOutside: [f.tmp, other],
  });
  const reads = flagValue(plan.permissions, "--allow-read")!;
  assert.ok(
    reads.includes(f.weights) && reads.includes(join(other, "w.safetensors")),
  );
});

Deno.test("planRerun() refuses a weights file that changed, naming both digests", async () => {
  const fx = await recordedRun();
  await Deno.writeFile(fx.weights, new Uint8Array([9, 9, 9]));
  await assert.rejects(
    () => planRerun(fx.runDir, fx.allow),
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
    () => planRerun(fx.runDir, fx.allow),
    /the label list ".*train\.csv" changed since the run/,
  );
  await Deno.remove(fx.labels);
  await assert.rejects(
    () => planRerun(fx.runDir, fx.allow),
    /the label list ".*train\.csv" does not exist/,
  );
});

Deno.test("planRerun() refuses a dataset file that no longer gives the recorded config", async () => {
  const fx = await recordedRun();
  const conf = JSON.parse(await Deno.readTextFile(fx.conf));
  await Deno.writeTextFile(fx.conf, JSON.stringify({ ...conf, resize: 42 }));
  await assert.rejects(
    () => planRerun(fx.runDir, fx.allow),
    /key "config\.resize" is 32, but a re-run would use 42/,
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
    () => planRerun(fx.runDir, { ...fx.allow, save: "taken" }),
    /into ".*taken": it already holds a run; choose another name/,
  );
  await assert.rejects(
    () => planRerun(fx.runDir, { ...fx.allow, save: "../x" }),
    /Option "save" must be a folder name/,
  );
});

Deno.test("planRerun() grants FFI only for sharp's addon and, for a run that used them, the OpenBLAS library", async () => {
  const fx = await recordedRun();
  const plain = await planRerun(fx.runDir, fx.allow);
  const ffi = flagValue(plain.permissions, "--allow-ffi")!;
  assert.ok(ffi.length > 0);
  for (const f of ffi) {
    assert.match(f, /node_modules\/.*sharp.*\.node$/);
    assert.equal(f, await Deno.realPath(f));
  }
  assert.deepEqual(flagValue(plain.permissions, "--allow-env"), [
    "npm_package_config_libvips",
  ]);
  assert.deepEqual(flagValue(plain.permissions, "--allow-sys"), [
    "cpus",
    "networkInterfaces",
    "hostname",
  ]);
  assert.deepEqual(plain.env, {});

  const native = await recordedRun({
    versions: { backend: "wasm", nativeKernels: ["BatchMatMul"] },
  });
  const lib = join(native.tmp, "libopenblas.so.0");
  await Deno.writeFile(lib, new Uint8Array(1));
  const plan = await planRerun(native.runDir, {
    ...native.allow,
    openBlas: lib,
  });
  assert.deepEqual(flagValue(plan.permissions, "--allow-ffi"), [...ffi, lib]);
  assert.deepEqual(flagValue(plan.permissions, "--allow-env"), [
    "npm_package_config_libvips",
    "CUFIT_OPENBLAS",
    "OPENBLAS_THREAD_TIMEOUT",
  ]);
  assert.deepEqual(plan.env, { CUFIT_OPENBLAS: lib });
  // A run that used the C kernels gets exactly the built library, when
  // this checkout has one, and a note otherwise.
  const withC = await recordedRun({
    versions: {
      backend: "wasm",
      nativeKernels: ["BatchMatMul"],
      cKernels: "on",
    },
  });
  const cPlan = await planRerun(withC.runDir, {
    ...withC.allow,
    openBlas: lib,
  });
  const built = join(
    fileURLToPath(new URL("..", import.meta.url)),
    "lib/backend/native/build",
    cKernelsFileName(),
  );
  if (await Deno.lstat(built).then(() => true, () => false)) {
    assert.deepEqual(flagValue(cPlan.permissions, "--allow-ffi"), [
      ...ffi,
      lib,
      built,
    ]);
  } else {
    assert.deepEqual(flagValue(cPlan.permissions, "--allow-ffi"), [
      ...ffi,
      lib,
    ]);
    assert.ok(
      cPlan.notes.some((n) => /not built here/.test(n)),
      cPlan.notes.join("\n"),
    );
  }
  const tf = await recordedRun({ versions: { backend: "tensorflow" } });
  await assert.rejects(
    () => planRerun(tf.runDir, tf.allow),
    /it ran on the "tensorflow" backend, whose native libtensorflow the sandbox cannot scope/,
  );
});

Deno.test("planRerun() permissions sandbox a real deno process", async () => {
  const fx = await recordedRun();
  const plan = await planRerun(fx.runDir, fx.allow);
  const probe = join(plan.newRunDir, "probe.ts");
  await Deno.mkdir(plan.newRunDir);
  await Deno.writeTextFile(
    probe,
    `const q = (d) => Deno.permissions.querySync(d).state;
console.log(JSON.stringify({
  readConf: q({ name: "read", path: ${JSON.stringify(fx.conf)} }),
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
  ffiLibc: q({ name: "ffi", path: "/lib/x86_64-linux-gnu/libc.so.6" }),
  envHome: q({ name: "env", variable: "HOME" }),
  sysUid: q({ name: "sys", kind: "uid" }),
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
    readConf: "granted",
    readWeights: "granted",
    readTmp: "prompt",
    readEtc: "prompt",
    writeNew: "granted",
    writeOld: "prompt",
    net: "prompt",
    ffiLibc: "prompt",
    envHome: "prompt",
    sysUid: "prompt",
    run: "prompt",
  });
});

Deno.test("checkRerunLabels() recomputes the label digests in a sandbox and refuses a mismatch", async () => {
  const fx = await recordedRun();
  const plan = await planRerun(fx.runDir, fx.allow);
  assert.match(
    await checkRerunLabels(plan),
    /^checked: clean and noisy training labels sha256 [0-9a-f]{64} \/ [0-9a-f]{64}$/,
  );
  // A record whose noisy labels are not the ones this config makes.
  await editRecord(fx.runDir, (r) => (r.digests.noisyLabels = "0".repeat(64)));
  await assert.rejects(
    async () => checkRerunLabels(await planRerun(fx.runDir, fx.allow)),
    /Cannot re-run ".*run1": the noisy training labels changed since the run started \(recorded sha256 0{64}, now [0-9a-f]{64}\)/,
  );
  // The check child writes nothing.
  assert.equal(
    await Deno.stat(plan.newRunDir).then(() => true, () => false),
    false,
  );
});
