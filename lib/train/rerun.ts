/**
 * Planning the re-execution of a recorded run in a Deno sandbox: read the run
 * folder's `config.json`, check that the weights, init and label-list files
 * are still the ones the run used, and build `deno run` permission flags that
 * let the new run read only its inputs and this project's files, and write
 * only its own new run folder.
 *
 * Native code: `--allow-ffi` (with `--allow-env` and `--allow-sys`, which
 * Node-API addons such as sharp query) is granted only when the run needs a
 * native addon: the `tensorflow`/`tensorflow-gpu` backends, OpenBLAS kernels
 * recorded as active, or a dataset of JPEG/PNG files (decoded by sharp).
 * FFI code is outside Deno's sandbox, so such a re-run is confined only as far
 * as the addon itself is trusted.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { sha256File } from "../io/digest.ts";
import type { TrainConfig } from "./config.ts";
import { type FileDigest, readRunRecord, type RunRecord } from "./run_dir.ts";

/** What {@linkcode planRerun} returns. */
export interface RerunPlan {
  /** The recorded config. */
  config: TrainConfig;
  /** Arguments for the training task: the recorded ones, saving to the new run folder. */
  argv: string[];
  /** Everything after `deno` to spawn the re-run (`run`, permissions, script, argv). */
  denoArgs: string[];
  /** Just the permission flags. */
  permissions: string[];
  /** Working directory to spawn in: the recorded one, as relative paths need. */
  cwd: string;
  /** The recorded run folder (absolute). */
  runDir: string;
  /** The run folder the re-run creates (absolute). */
  newRunDir: string;
  /** The task script (absolute). */
  script: string;
}

/** Options of {@linkcode planRerun}. */
export interface PlanRerunOptions {
  /**
   * Name of the new run (a sibling folder of the recorded one).
   * @default "<recorded name>-rerun"
   */
  save?: string;
  /**
   * The project whose `tasks/train_<method>.ts`, lib/, conf/ and node_modules/
   * the re-run uses.
   * @default this project's root
   */
  projectRoot?: string;
}

/** This project's root folder. */
function defaultProjectRoot(): string {
  return fileURLToPath(new URL("../../", import.meta.url));
}

// Flags of lib/train/cli.ts whose values are paths the task reads.
const PATH_FLAGS = new Set([
  "-d",
  "--data",
  "--weights",
  "--init",
  "--data-root",
  "--noise-matrix",
]);

const NATIVE_BACKENDS = new Set(["tensorflow", "tensorflow-gpu"]);
const IMAGE_DATASETS = new Set(["image_folder", "aptos"]);

/**
 * Reads a run folder and plans its sandboxed re-execution. Refuses (naming
 * the file and both digests) when a recorded input file has changed or is
 * gone, and when the new run folder already holds a run.
 */
export async function planRerun(
  runDir: string,
  options: PlanRerunOptions = {},
): Promise<RerunPlan> {
  const record = await readRunRecord(runDir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot re-run "${runDir}": "${join(runDir, "config.json")}" not found`,
      );
    }
    throw e;
  });
  const { config } = record;
  const abs = (p: string) => resolve(record.cwd, p);

  // 1. The inputs must be the bytes the run used.
  const checks: [string, FileDigest | null][] = [
    ["weights file", record.digests.weights],
    ["init file", record.digests.init],
    ["label list", record.digests.labelList],
  ];
  for (const [role, digest] of checks) {
    if (digest !== null) await verify(runDir, role, abs(digest.path), digest);
  }

  // 2. The new run folder: a sibling under the same save_path.
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
  const newRunDir = abs(join(config.savePath, save));
  try {
    await Deno.stat(join(newRunDir, "config.json"));
    throw new Error(
      `Cannot re-run "${runDir}" into "${newRunDir}": it already holds a run; choose another name`,
    );
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }

  // 3. The arguments: the recorded ones, minus --resume, saving elsewhere
  //    (commander keeps the last value of a repeated option).
  const argv = record.argv.filter((a) => a !== "--resume");
  if (!argv.some((a) => /^(-d|--data)(=|$)/.test(a) || /^-d./.test(a))) {
    argv.push("--data", config.dataset.file);
  }
  argv.push("--save", save);

  // 4. Permissions.
  const root = options.projectRoot ?? defaultProjectRoot();
  const reads = new Set<string>([
    abs(config.dataset.root),
    abs(config.dataset.file),
    abs(runDir),
    newRunDir,
    ...["lib", "tasks", "conf", "node_modules", "deno.json", "deno.lock"].map(
      (p) => join(root, p),
    ),
  ]);
  for (const [, digest] of checks) if (digest) reads.add(abs(digest.path));
  for (const path of pathArguments(argv)) reads.add(abs(path));
  const permissions = [
    `--allow-read=${joinPaths([...reads], "read")}`,
    `--allow-write=${joinPaths([newRunDir], "write")}`,
  ];
  if (needsNative(record)) {
    permissions.push("--allow-ffi", "--allow-env", "--allow-sys");
  }
  const script = join(root, "tasks", `train_${config.method}.ts`);
  return {
    config,
    argv,
    denoArgs: ["run", "--no-prompt", ...permissions, script, ...argv],
    permissions,
    cwd: record.cwd,
    runDir: abs(runDir),
    newRunDir,
    script,
  };
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

/** Values of path flags in an argv (`--flag value`, `--flag=value`, `-dvalue`). */
function pathArguments(argv: readonly string[]): string[] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf("=");
    if (a.startsWith("--") && eq > 0 && PATH_FLAGS.has(a.slice(0, eq))) {
      pairs.push([a.slice(0, eq), a.slice(eq + 1)]);
    } else if (PATH_FLAGS.has(a) && i + 1 < argv.length) {
      pairs.push([a, argv[++i]]);
    } else if (/^-d./.test(a)) {
      pairs.push(["-d", a.slice(2)]);
    }
  }
  // A bare dataset name (`-d ham10000`) is looked up in conf/, readable anyway.
  return pairs
    .filter(([flag, v]) =>
      !(flag === "-d" || flag === "--data") || /[\\/]|\.json$/.test(v)
    )
    .map(([, v]) => v);
}

function needsNative(record: RunRecord): boolean {
  const backend = String(record.versions.backend ?? record.config.backend);
  const kernels = record.versions.nativeKernels;
  return NATIVE_BACKENDS.has(backend) ||
    (Array.isArray(kernels) && kernels.length > 0) ||
    IMAGE_DATASETS.has(record.config.dataset.kind);
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
