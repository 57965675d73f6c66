/**
 * Re-executing a recorded run in a Deno sandbox, safely enough to hand it a
 * run folder received from someone else.
 *
 * What {@linkcode planRerun} checks, before anything runs:
 *
 * 1. `config.json` parses against the strict schema of run_record.ts (one
 *    error naming the key), and records the digest of every input: weights,
 *    init (when used), the label-list file (APTOS, MedMNIST), the clean and
 *    noisy training labels.
 * 2. The script is one of three fixed files, `tasks/train_{linear,rein,cufit}.ts`
 *    of this project, picked by the checked `method`; no recorded string is
 *    ever part of a module path.
 * 3. Every recorded path (working directory, dataset file and root, weights,
 *    init, label list, noise matrix, save path) is resolved, symlinks
 *    followed, and must lie inside the project folder, or inside a folder
 *    the person running the re-run names with `allowOutside`
 *    (`--allow-outside DIR`).
 * 4. The weights, init and label-list files have their recorded SHA-256.
 * 5. The command line is rebuilt from the checked config (not taken from the
 *    record), and the config it resolves to must equal the recorded one.
 *
 * {@linkcode checkRerunLabels} then computes the clean and noisy label
 * digests in a sandboxed child with the re-run's read permissions and no
 * write, and compares them with the record.
 *
 * The permissions of the re-run: read its inputs, the recorded run folder,
 * the new run folder and the project's code (`lib`, `tasks`, `node_modules`,
 * `deno.json`, `deno.lock`); write only the new run folder; FFI only for
 * sharp's native addon files and, when the run used them, the resolved
 * OpenBLAS library and the project's built C kernels; env only
 * `npm_package_config_libvips` (read by sharp as it loads),
 * `CUFIT_OPENBLAS` (set by the plan to the resolved library) and
 * `OPENBLAS_THREAD_TIMEOUT` (set by the project before OpenBLAS loads);
 * sys only `cpus`, `networkInterfaces` and `hostname` (sharp's libc check
 * asks for a process report); no net, no run, and `--no-prompt`. Native code
 * (sharp, OpenBLAS) runs outside Deno's sandbox: the confinement holds only
 * as far as those libraries are trusted.
 *
 * @module
 */
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { sha256File } from "../io/digest.ts";
import { openBlasCandidates } from "../backend/native/openblas.ts";
import { cKernelsFileName } from "../backend/native/c_kernels.ts";
import {
  loadDatasetConfig,
  resolveConfig,
  type TrainConfig,
  type TrainOverrides,
} from "./config.ts";
import {
  changedInput,
  type FileDigest,
  readRunRecord,
  type RunRecord,
} from "./run_dir.ts";
import { firstDifference } from "../io/json_diff.ts";

/** One permission the re-run gets, with the reason it needs it. */
export interface RerunGrant {
  /** `read`, `write`, `ffi`, `env` or `sys`. */
  kind: "read" | "write" | "ffi" | "env" | "sys";
  /** The path, variable or sys call. */
  value: string;
  /** Why: `weights file`, `project code`, `sharp addon`, ... */
  why: string;
}

/** What {@linkcode planRerun} returns. */
export interface RerunPlan {
  /** The recorded run, as parsed. */
  record: RunRecord;
  /** The config the re-run resolves to (the recorded one, saving elsewhere). */
  config: TrainConfig;
  /** Arguments for the training task, rebuilt from the config. */
  argv: string[];
  /** Everything after `deno` to spawn the re-run. */
  denoArgs: string[];
  /** Just the permission flags. */
  permissions: string[];
  /** Every permission, with its reason. */
  grants: RerunGrant[];
  /** Environment variables to set for the child. */
  env: Record<string, string>;
  /** Working directory to spawn in: the recorded one (relative paths need it). */
  cwd: string;
  /** The recorded run folder (absolute). */
  runDir: string;
  /** The run folder the re-run creates (absolute). */
  newRunDir: string;
  /** The task script (absolute): one of three fixed files. */
  script: string;
  /** Lines saying what was checked (digests) and anything to know. */
  notes: string[];
}

/** Options of {@linkcode planRerun}. */
export interface PlanRerunOptions {
  /**
   * Name of the new run (a sibling folder of the recorded one).
   * @default "<recorded name>-rerun"
   */
  save?: string;
  /**
   * The project whose `tasks/train_<method>.ts`, lib/ and node_modules/ the
   * re-run uses, and inside which every recorded path must lie.
   * @default this project's root
   */
  projectRoot?: string;
  /**
   * Folders outside the project that recorded paths may also point into.
   * @default []
   */
  allowOutside?: string[];
  /**
   * The OpenBLAS library for a run that used native kernels; `null` for none.
   * @default `CUFIT_OPENBLAS` when set and readable, else the first of the
   * system paths of lib/backend/native/openblas.ts that exists
   */
  openBlas?: string | null;
}

/** This project's root folder. */
function defaultProjectRoot(): string {
  return fileURLToPath(new URL("../../", import.meta.url));
}

/** The training script of each method: a fixed table, never a recorded string. */
const SCRIPTS: Record<TrainConfig["method"], string> = {
  linear: "tasks/train_linear.ts",
  rein: "tasks/train_rein.ts",
  cufit: "tasks/train_cufit.ts",
};

/** Env variables sharp reads while loading, that throw without permission. */
const SHARP_ENV = ["npm_package_config_libvips"];
/** Sys calls of sharp's libc detection (a process report). */
const SHARP_SYS = ["cpus", "networkInterfaces", "hostname"];
/** Kinds whose training labels come from one file, whose digest is required. */
const LABEL_LIST_KINDS = new Set(["aptos", "medmnist"]);

/**
 * Reads a run folder and plans its sandboxed re-execution (see the module
 * doc). Throws one error naming the key, path or file that is refused.
 */
export async function planRerun(
  runDir: string,
  options: PlanRerunOptions = {},
): Promise<RerunPlan> {
  const refuse = (why: string): never => {
    throw new Error(`Cannot re-run "${runDir}": ${why}`);
  };
  const recordFile = join(runDir, "config.json");
  const record = await readRunRecord(runDir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) {
      refuse(`"${recordFile}" not found`);
    }
    throw e;
  });
  const { config, digests } = record;
  const root = await realDir(
    options.projectRoot ?? defaultProjectRoot(),
    "project folder",
  );
  const allowed = [root];
  for (const dir of options.allowOutside ?? []) {
    allowed.push(await realDir(dir, "--allow-outside folder"));
  }
  const grants: RerunGrant[] = [];
  const grant = (kind: RerunGrant["kind"], value: string, why: string) => {
    if (!grants.some((g) => g.kind === kind && g.value === value)) {
      grants.push({ kind, value, why });
    }
  };
  const notes: string[] = [];

  // 1. Every digest a re-run checks must be recorded.
  const need = (key: keyof RunRecord["digests"], why: string) => {
    if (digests[key] === null) {
      refuse(
        `"${recordFile}" key "digests.${key}" is null, but ${why}: a re-run checks every input's digest`,
      );
    }
  };
  need("weights", "the run loaded weights");
  need("trainLabels", "the run trained on labels");
  need("noisyLabels", "the run trained on noisy labels");
  if (config.init !== null) {
    need("init", `the run started from "${config.init}"`);
  }
  if (config.init === null && digests.init !== null) {
    refuse(`"${recordFile}" records an init digest but "config.init" is null`);
  }
  if (LABEL_LIST_KINDS.has(config.dataset.kind)) {
    need("labelList", `its ${config.dataset.kind} labels come from a file`);
  }
  const weights = digests.weights as FileDigest;
  if (config.weights !== null && config.weights !== weights.path) {
    refuse(
      `"${recordFile}" key "config.weights" is ${
        JSON.stringify(config.weights)
      } but "digests.weights.path" is ${JSON.stringify(weights.path)}`,
    );
  }
  if (config.init !== null && config.init !== digests.init!.path) {
    refuse(
      `"${recordFile}" key "config.init" is ${
        JSON.stringify(config.init)
      } but "digests.init.path" is ${JSON.stringify(digests.init!.path)}`,
    );
  }
  const backend = String(record.versions.backend ?? config.backend);
  if (
    ["tensorflow", "tensorflow-gpu"].includes(config.backend) ||
    ["tensorflow", "tensorflow-gpu"].includes(backend)
  ) {
    refuse(
      `it ran on the "${backend}" backend, whose native libtensorflow the sandbox cannot scope; re-run it by hand with --backend wasm`,
    );
  }

  // 2. Paths: resolved with symlinks followed, inside the allowed folders.
  const inside = (real: string) =>
    allowed.some((dir) => real === dir || real.startsWith(dir + sep));
  const place = async (path: string, role: string): Promise<string> => {
    const lexical = resolve(cwd, path);
    let real: string;
    try {
      real = await Deno.realPath(lexical);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        refuse(`the ${role} "${lexical}" does not exist`);
      }
      throw e;
    }
    if (!inside(real)) {
      refuse(
        `the ${role} "${lexical}"${
          real === lexical ? "" : ` (real path "${real}")`
        } is outside the project "${root}"; pass --allow-outside DIR to allow a folder`,
      );
    }
    return lexical;
  };
  const readInput = async (path: string, role: string) => {
    const lexical = await place(path, role);
    grant("read", lexical, role);
    const real = await Deno.realPath(lexical);
    if (real !== lexical) grant("read", real, `${role} (real path)`);
    return lexical;
  };
  if (!record.cwd.startsWith("/") && !/^[A-Za-z]:[\\/]/.test(record.cwd)) {
    refuse(`"${recordFile}" key "cwd" must be an absolute path`);
  }
  const cwd = resolve(record.cwd);
  {
    const real = await Deno.realPath(cwd).catch(() =>
      refuse(`its working directory "${cwd}" does not exist`)
    );
    if (!inside(real)) {
      refuse(
        `its working directory "${cwd}" is outside the project "${root}"; pass --allow-outside DIR to allow a folder`,
      );
    }
  }
  if (!isPathArgument(config.dataset.file)) {
    refuse(
      `"${recordFile}" key "config.dataset.file" must be a path to a .json file, got ${
        JSON.stringify(config.dataset.file)
      }`,
    );
  }
  const confFile = await readInput(config.dataset.file, "dataset file");
  if (config.dataset.kind !== "synthetic") {
    await readInput(config.dataset.root, "dataset root");
  }
  const inputs: [string, string, FileDigest][] = [
    ["weights file", await readInput(weights.path, "weights file"), weights],
  ];
  if (digests.init) {
    inputs.push([
      "init file",
      await readInput(digests.init.path, "init file"),
      digests.init,
    ]);
  }
  if (digests.labelList) {
    inputs.push([
      "label list",
      await readInput(digests.labelList.path, "label list"),
      digests.labelList,
    ]);
  }
  let matrixFile: string | null = null;
  if (config.noise.mode === "matrix") {
    const given = lastFlagValue(record.argv, "--noise-matrix");
    if (given === null) {
      refuse(
        `it used a noise matrix but its recorded argv names no --noise-matrix file`,
      );
    }
    matrixFile = given;
    await readInput(given!, "noise matrix file");
  }
  const runDirAbs = resolve(runDir);
  grant("read", runDirAbs, "recorded run folder");

  // 3. The inputs must be the bytes the run used.
  for (const [role, path, digest] of inputs) {
    await verify(runDir, role, path, digest);
    notes.push(`checked: ${role} "${path}" sha256 ${digest.sha256}`);
  }

  // 4. The new run folder: a sibling under the recorded save path.
  const save = options.save ?? `${config.saveName}-rerun`;
  if (
    save.length === 0 || /[\\/]/.test(save) || save === "." || save === ".."
  ) {
    throw new TypeError(
      `Option "save" must be a folder name without slashes, got ${
        JSON.stringify(save)
      }`,
    );
  }
  const savePath = await place(config.savePath, "save path");
  const newRunDir = join(savePath, save);
  const taken = await Deno.lstat(newRunDir).then(() => true, () => false);
  if (taken) {
    const holdsRun = await Deno.lstat(join(newRunDir, "config.json")).then(
      () => true,
      () => false,
    );
    throw new Error(
      `Cannot re-run "${runDir}" into "${newRunDir}": it already ${
        holdsRun ? "holds a run" : "exists"
      }; choose another name`,
    );
  }
  grant("read", newRunDir, "new run folder");
  grant("write", newRunDir, "new run folder");

  // 5. The command line, rebuilt from the checked config; it must resolve to
  //    the recorded config (the dataset file or a default may have changed).
  const overrides: TrainOverrides = {
    noise: config.noise.rate,
    noiseMode: config.noise.mode,
    noiseSeed: config.noise.seed,
    ...(config.noise.matrix ? { noiseMatrix: config.noise.matrix } : {}),
    save,
    gpu: config.gpu,
    netsize: config.netsize,
    weights: weights.path,
    epochs: config.epochs,
    batchSize: config.batchSize,
    lr: config.lr,
    seed: config.seed,
    backend: config.backend,
    ...(config.init !== null ? { init: config.init } : {}),
    augment: config.augment,
    shuffle: config.shuffle,
    cacheFeatures: config.cacheFeatures,
    skipBad: config.skipBad,
    dataRoot: config.dataset.root,
    savePath: config.savePath,
    ...(config.maxBatches !== null ? { maxBatches: config.maxBatches } : {}),
    ...(config.threads !== null ? { threads: config.threads } : {}),
  };
  let expected: TrainConfig;
  try {
    if (matrixFile !== null) {
      overrides.noiseMatrix = JSON.parse(
        await Deno.readTextFile(resolve(cwd, matrixFile)),
      );
    }
    expected = resolveConfig(
      config.method,
      loadDatasetConfig(confFile),
      overrides,
    );
  } catch (e) {
    return refuse((e as Error).message);
  }
  expected.dataset.file = config.dataset.file;
  const diff = firstDifference(
    { ...config, saveName: save, resume: false, weights: weights.path },
    expected,
    { path: "config" },
  );
  if (diff !== null) {
    refuse(
      `"${recordFile}" key "${diff.key}" is ${
        JSON.stringify(diff.was)
      }, but a re-run would use ${
        JSON.stringify(diff.now)
      } (from "${confFile}" and the defaults)`,
    );
  }
  const argv = trainArgv(config, {
    save,
    weights: weights.path,
    matrixFile,
  });

  // 6. Code and native libraries.
  const script = join(root, SCRIPTS[config.method]);
  for (const p of ["lib", "tasks", "node_modules", "deno.json", "deno.lock"]) {
    const path = join(root, p);
    if (await Deno.lstat(path).then(() => true, () => false)) {
      grant("read", path, "project code");
    }
  }
  const addons = await sharpAddons(root);
  if (addons.length === 0) {
    refuse(
      `sharp's native addon is not installed under "${
        join(root, "node_modules")
      }" (run \`deno install\`)`,
    );
  }
  for (const a of addons) grant("ffi", a, "sharp addon (image decoding)");
  for (const v of SHARP_ENV) grant("env", v, "read by sharp as it loads");
  for (const s of SHARP_SYS) grant("sys", s, "sharp's libc detection");
  const env: Record<string, string> = {};
  const kernels = record.versions.nativeKernels;
  if (Array.isArray(kernels) && kernels.length > 0) {
    const blas = options.openBlas === undefined
      ? await findOpenBlas()
      : options.openBlas === null
      ? null
      : await Deno.realPath(options.openBlas);
    if (blas === null) {
      notes.push(
        `note: the run used OpenBLAS kernels (${
          kernels.join(", ")
        }), which are not installed here; the re-run uses the plain ones, so its last digits may differ`,
      );
    } else {
      grant("ffi", blas, "OpenBLAS (the run used native kernels)");
      grant("env", "CUFIT_OPENBLAS", "names the OpenBLAS library");
      grant(
        "env",
        "OPENBLAS_THREAD_TIMEOUT",
        "lets idle OpenBLAS threads sleep",
      );
      env.CUFIT_OPENBLAS = blas;
      // The C kernels' LayerNorm rounds differently from the op-by-op one:
      // a re-run uses them exactly when the run did.
      if (record.versions.cKernels === "on") {
        const built = join(
          root,
          "lib/backend/native/build",
          cKernelsFileName(),
        );
        if (await Deno.lstat(built).then((s) => s.isFile, () => false)) {
          grant("ffi", built, "the C kernels (the run used them)");
        } else {
          notes.push(
            "note: the run used the C kernels, which are not built here (`deno task build:native`); the re-run uses the TypeScript ones, so its last digits may differ",
          );
        }
      }
    }
  }

  const list = (kind: RerunGrant["kind"]) =>
    grants.filter((g) => g.kind === kind).map((g) => g.value);
  const permissions = [
    `--allow-read=${joinPaths(list("read"), "read")}`,
    `--allow-write=${joinPaths(list("write"), "write")}`,
    `--allow-ffi=${joinPaths(list("ffi"), "FFI")}`,
    `--allow-env=${list("env").join(",")}`,
    `--allow-sys=${list("sys").join(",")}`,
  ];
  const hasLock = await Deno.lstat(join(root, "deno.lock")).then(
    () => true,
    () => false,
  );
  return {
    record,
    config: expected,
    argv,
    denoArgs: [
      "run",
      "--no-prompt",
      "--cached-only",
      ...(hasLock ? ["--frozen"] : []),
      `--config=${join(root, "deno.json")}`,
      ...permissions,
      script,
      ...argv,
    ],
    permissions,
    grants,
    env,
    cwd,
    runDir: runDirAbs,
    newRunDir,
    script,
    notes,
  };
}

/** Options of {@linkcode checkRerunLabels}. */
export interface CheckRerunLabelsOptions {
  /** The Deno executable. @default "deno" (from PATH) */
  deno?: string;
}

/**
 * Computes the clean and noisy training-label digests of a planned re-run in
 * a sandboxed child (the plan's read, FFI, env and sys permissions, no
 * write), and throws, naming the labels and both digests, unless they equal
 * the recorded ones. Returns the line to print.
 */
export async function checkRerunLabels(
  plan: RerunPlan,
  options: CheckRerunLabelsOptions = {},
): Promise<string> {
  const root = dirname(dirname(plan.script));
  const script = join(root, "lib", "train", "_label_digests.ts");
  const perms = plan.permissions.filter((p) => !p.startsWith("--allow-write="));
  const child = new Deno.Command(options.deno ?? "deno", {
    args: [
      ...plan.denoArgs.slice(0, plan.denoArgs.indexOf(plan.permissions[0])),
      ...perms,
      script,
    ],
    cwd: plan.cwd,
    env: plan.env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(plan.config)));
  await writer.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (out.code !== 0) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n")
      .filter((l) => l.trim() !== "").slice(-1)[0] ?? `exit code ${out.code}`;
    throw new Error(
      `Cannot re-run "${plan.runDir}": computing its label digests failed: ${err}`,
    );
  }
  const now = JSON.parse(text) as { trainLabels: string; noisyLabels: string };
  const changed = changedInput(
    { ...plan.record.digests, weights: null, init: null, labelList: null },
    { ...plan.record.digests, ...now },
  );
  if (changed !== null) {
    throw new Error(`Cannot re-run "${plan.runDir}": ${changed}`);
  }
  return `checked: clean and noisy training labels sha256 ${now.trainLabels} / ${now.noisyLabels}`;
}

async function verify(
  runDir: string,
  role: string,
  path: string,
  digest: FileDigest,
): Promise<void> {
  let now: string;
  try {
    now = await sha256File(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot re-run "${runDir}": the ${role} "${path}" is gone (recorded sha256 ${digest.sha256})`,
      );
    }
    throw e;
  }
  if (now !== digest.sha256) {
    throw new Error(
      `Cannot re-run "${runDir}": the ${role} "${path}" changed since the run (recorded sha256 ${digest.sha256}, now ${now})`,
    );
  }
}

/** The real path of a folder that must exist. */
async function realDir(path: string, what: string): Promise<string> {
  try {
    const real = await Deno.realPath(path);
    if (!(await Deno.stat(real)).isDirectory) {
      throw new Error(`The ${what} "${path}" is not a folder`);
    }
    return real;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`The ${what} "${path}" does not exist`);
    }
    throw e;
  }
}

/** Whether `-d <value>` reads `value` as a path (see loadDatasetConfig). */
function isPathArgument(value: string): boolean {
  return /[\\/]/.test(value) || value.endsWith(".json");
}

/** The last value of `--flag value` or `--flag=value` in an argv. */
function lastFlagValue(argv: readonly string[], flag: string): string | null {
  let value: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag && i + 1 < argv.length) value = argv[++i];
    else if (argv[i].startsWith(`${flag}=`)) {
      value = argv[i].slice(flag.length + 1);
    }
  }
  return value;
}

/**
 * The training task's arguments for a config: every setting the command
 * line can carry, each as `--flag=value` (so a value starting with `-` stays
 * a value).
 */
export function trainArgv(
  config: TrainConfig,
  options: { save: string; weights: string; matrixFile: string | null },
): string[] {
  const a = (flag: string, v: string | number) => `--${flag}=${v}`;
  return [
    a("data", config.dataset.file),
    a("data-root", config.dataset.root),
    a("noise", config.noise.rate),
    a("noise-mode", config.noise.mode),
    a("noise-seed", config.noise.seed),
    ...(options.matrixFile !== null
      ? [a("noise-matrix", options.matrixFile)]
      : []),
    a("save", options.save),
    a("save-path", config.savePath),
    a("gpu", config.gpu),
    a("netsize", config.netsize),
    a("weights", options.weights),
    a("epochs", config.epochs),
    a("batch-size", config.batchSize),
    a("lr", config.lr),
    a("seed", config.seed),
    a("backend", config.backend),
    ...(config.init !== null ? [a("init", config.init)] : []),
    ...(config.augment ? [] : ["--no-augment"]),
    ...(config.shuffle ? [] : ["--no-shuffle"]),
    ...(config.cacheFeatures ? ["--cache-features"] : []),
    ...(config.skipBad ? ["--skip-bad"] : []),
    ...(config.maxBatches !== null
      ? [a("max-batches", config.maxBatches)]
      : []),
    ...(config.threads !== null ? [a("threads", config.threads)] : []),
  ];
}

/**
 * sharp's native addon files for this OS and CPU, as real paths: the
 * prebuilt `@img/sharp-<os>[musl]-<arch>` packages (both libc flavours; sharp
 * picks one at load) and a source build, when present.
 */
async function sharpAddons(root: string): Promise<string[]> {
  const os = { linux: "linux", darwin: "darwin", windows: "win32" }[
    Deno.build.os as string
  ] ?? Deno.build.os;
  const arch = { x86_64: "x64", aarch64: "arm64" }[Deno.build.arch] ??
    Deno.build.arch;
  const platforms = os === "linux"
    ? [`linux-${arch}`, `linuxmusl-${arch}`]
    : [`${os}-${arch}`];
  const found = new Set<string>();
  const addFrom = async (dir: string) => {
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.name.endsWith(".node")) {
          found.add(await Deno.realPath(join(dir, e.name)));
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  };
  const store = join(root, "node_modules", ".deno");
  let entries: string[] = [];
  try {
    for await (const e of Deno.readDir(store)) entries.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  entries = entries.sort();
  for (const p of platforms) {
    for (const e of entries.filter((n) => n.startsWith(`@img+sharp-${p}@`))) {
      await addFrom(
        join(store, e, "node_modules", "@img", `sharp-${p}`, "lib"),
      );
    }
    await addFrom(join(root, "node_modules", "@img", `sharp-${p}`, "lib"));
  }
  for (const e of entries.filter((n) => n.startsWith("sharp@"))) {
    await addFrom(
      join(store, e, "node_modules", "sharp", "src", "build", "Release"),
    );
  }
  return [...found].sort();
}

/**
 * The OpenBLAS library the native kernels would open, as a real path:
 * `CUFIT_OPENBLAS` when readable and set, else the first absolute system
 * path that exists; `null` when there is none.
 */
async function findOpenBlas(): Promise<string | null> {
  for (const path of openBlasCandidates()) {
    if (!path.startsWith("/")) continue;
    try {
      const real = await Deno.realPath(path);
      if ((await Deno.stat(real)).isFile) return real;
    } catch {
      // Not there: next one.
    }
  }
  return null;
}

function joinPaths(paths: string[], what: string): string {
  for (const p of paths) {
    if (p.includes(",")) {
      throw new Error(
        `Cannot grant ${what} access to "${p}": Deno permission lists cannot hold a path with a comma`,
      );
    }
  }
  return paths.join(",");
}

/** The fixed script of a method, relative to the project root. */
export function rerunScript(method: TrainConfig["method"]): string {
  return SCRIPTS[method];
}
