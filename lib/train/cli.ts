/**
 * The command line shared by `train:linear`, `train:rein` and `train:cufit`:
 * the reference's flags (`-d`, `-n`, `-s`, `-g`, `--netsize`) plus ours,
 * parsed into a resolved {@linkcode TrainConfig}. No training happens here.
 *
 * ```ts
 * try {
 *   const config = parseTrainArgs("cufit", Deno.args);
 * } catch (e) {
 *   if (!(e instanceof CliExit)) throw e;
 *   (e.exitCode === 0 ? console.log : console.error)(e.message);
 *   Deno.exit(e.exitCode);
 * }
 * ```
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import {
  BACKEND_NAMES,
  defaults,
  loadDatasetConfig,
  type Method,
  METHODS,
  NET_SIZES,
  NOISE_MODES,
  resolveConfig,
  type TrainConfig,
  type TrainOverrides,
} from "./config.ts";
import {
  integerAtLeast,
  nonEmptyString,
  numberIn,
  oneOf,
  parseNumber,
  positiveNumber,
  seed,
} from "./_checks.ts";
import { splitShortEquals, usageMessage } from "../cli/usage.ts";

/**
 * Thrown by {@linkcode parseTrainArgs} to end the program: `exitCode` 0 with
 * the help text as message for `--help`, 2 with the reason for bad input
 * (one clause; the task adds its name and a `--help` hint).
 */
export class CliExit extends Error {
  override name = "CliExit";
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

const list = (xs: readonly string[]) => xs.join("|");

/** The commander definition of `train:<method>` (options only, no action). */
export function trainCommand(method: Method): Command {
  oneOf(method, METHODS, "Method");
  const d = defaults;
  return new Command(`train:${method}`)
    .description(
      {
        linear:
          "Linear probing of a frozen DINOv2 under label noise (train_linear.py).",
        rein:
          "Rein adapters on a frozen DINOv2 under label noise (train_rein.py).",
        cufit:
          "CUFIT curriculum fine-tuning: LPM -> IAM -> LAM (train_cufit.py).",
      }[method],
    )
    .requiredOption(
      "-d, --data <name|path>",
      "dataset: a name (conf/<name>.json: ham10000, aptos, bloodmnist, organcmnist, demo, synthetic) or a path to such a file",
    )
    .option(
      "-n, --noise <rate>",
      `label-noise rate in [0, 1] (default: ${d.noise.rate})`,
    )
    .option(
      "-s, --save <name>",
      "run name: the run goes to <save_path>/<name>/ (default: <method>-noise<rate>)",
    )
    .option("-g, --gpu <index>", `accelerator index (default: ${d.gpu})`)
    .option(
      "--netsize <size>",
      `DINOv2 size, ${list(NET_SIZES)} (default: ${d.netsize})`,
    )
    .option(
      "--weights <path>",
      "backbone weights (.pth or .safetensors; default: the one for --netsize)",
    )
    .option("--epochs <n>", "epochs (default: the dataset file's epoch)")
    .option(
      "--batch-size <n>",
      "batch size (default: the dataset file's batch_size)",
    )
    .option("--lr <x>", `base learning rate of Adam (default: ${d.lr})`)
    .option(
      "--seed <n>",
      `seed of shuffling, augmentation and init (default: ${d.seed})`,
    )
    .option(
      "--noise-mode <mode>",
      `label-noise model, ${list(NOISE_MODES)} (default: ${d.noise.mode})`,
    )
    .option(
      "--noise-matrix <path>",
      "JSON file of a K x K row-stochastic transition matrix (with --noise-mode matrix)",
    )
    .option(
      "--noise-seed <n>",
      `seed of the label noise (default: ${d.noise.seed})`,
    )
    .option(
      "--backend <name>",
      `compute backend, ${list(BACKEND_NAMES)} (default: ${d.backend})`,
    )
    .option(
      "--init <path>",
      "safetensors file of trainable parameters to start from (default: fresh init)",
    )
    .option(
      "--no-augment",
      "center-crop training images instead of random flip + crop",
    )
    .option("--no-shuffle", "keep the training order fixed across epochs")
    .option("--resume", "continue the run from its last checkpoint")
    .option(
      "--cache-features",
      "center-crop features computed once, much faster, not the reference's augmented behaviour; linear only",
    )
    .option(
      "--skip-bad",
      "skip unreadable images (counted and reported) instead of stopping",
    )
    .option("--data-root <dir>", "dataset folder, instead of id_dataset")
    .option(
      "--save-path <dir>",
      "folder of the run folders, instead of save_path",
    )
    .option(
      "--threads <n>",
      "CPU threads of the native matmul kernels (default: every core)",
    )
    .option(
      "--max-batches <n>",
      "stop each epoch after n batches (tests, smoke runs)",
    )
    .exitOverride()
    .allowExcessArguments(false);
}

/** Options of {@linkcode parseTrainArgs}. */
export interface ParseTrainArgsOptions {
  /**
   * Folder where `-d <name>` is looked up as `<name>.json`.
   * @default this project's conf/ folder
   */
  confDir?: string;
}

type Converter = (text: string, what: string) => unknown;

const num = (check: (v: unknown, what: string) => unknown): Converter =>
(
  text,
  what,
) => check(parseNumber(text, what), what);

// Flag -> override key and how its text becomes a value.
const CONVERT: Record<string, [keyof TrainOverrides, Converter]> = {
  noise: ["noise", num((v, w) => numberIn(v, 0, 1, w))],
  save: ["save", nonEmptyString],
  gpu: ["gpu", num((v, w) => integerAtLeast(v, 0, w))],
  netsize: ["netsize", (v, w) => oneOf(v, NET_SIZES, w)],
  weights: ["weights", nonEmptyString],
  epochs: ["epochs", num((v, w) => integerAtLeast(v, 1, w))],
  batchSize: ["batchSize", num((v, w) => integerAtLeast(v, 1, w))],
  lr: ["lr", num(positiveNumber)],
  seed: ["seed", num(seed)],
  noiseMode: ["noiseMode", (v, w) => oneOf(v, NOISE_MODES, w)],
  noiseSeed: ["noiseSeed", num(seed)],
  noiseMatrix: ["noiseMatrix", readMatrixFile],
  backend: ["backend", (v, w) => oneOf(v, BACKEND_NAMES, w)],
  init: ["init", nonEmptyString],
  dataRoot: ["dataRoot", nonEmptyString],
  savePath: ["savePath", nonEmptyString],
  maxBatches: ["maxBatches", num((v, w) => integerAtLeast(v, 1, w))],
  threads: ["threads", num((v, w) => integerAtLeast(v, 1, w))],
};
function readMatrixFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`${what}: cannot read "${path}" (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(
      `${what}: "${path}" is not JSON (${(e as Error).message})`,
    );
  }
}

const SWITCHES = [
  "augment",
  "shuffle",
  "resume",
  "cacheFeatures",
  "skipBad",
] as const;

/**
 * Parses `train:<method>` arguments (without the program name) into a
 * resolved config: flags over `conf/<data>.json` over defaults. Throws
 * {@linkcode CliExit} for `--help` and for any bad input, naming the option
 * and the value.
 */
export function parseTrainArgs(
  method: Method,
  argv: readonly string[],
  options: ParseTrainArgsOptions = {},
): TrainConfig {
  const cmd = trainCommand(method);
  let out = "";
  cmd.configureOutput({
    writeOut: (s) => (out += s),
    writeErr: (s) => (out += s),
    outputError: () => {},
    // Commander's colour check reads FORCE_COLOR/CLICOLOR_FORCE on a
    // terminal, which the tasks' scoped --allow-env refuses.
    getOutHasColors: () => false,
    getErrHasColors: () => false,
  });
  try {
    cmd.parse(splitShortEquals(argv), { from: "user" });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === "commander.helpDisplayed" || e.code === "commander.help") {
      throw new CliExit(out.trimEnd(), 0);
    }
    // Commander says "error: unknown option '--x'"; keep its words, our case.
    throw new CliExit(usageMessage(e.message), 2);
  }
  const opts = cmd.opts();
  const flag = (key: string) =>
    cmd.options.find((o) => o.attributeName() === key)!.long!;
  try {
    const overrides: Record<string, unknown> = {};
    for (const [key, [target, convert]] of Object.entries(CONVERT)) {
      if (opts[key] === undefined) continue;
      overrides[target] = convert(opts[key], `Option ${flag(key)}`);
    }
    for (const key of SWITCHES) {
      if (cmd.getOptionValueSource(key) === "cli") overrides[key] = opts[key];
    }
    if (overrides.cacheFeatures && method !== "linear") {
      throw new TypeError(
        `Option --cache-features works only with train:linear, got train:${method}`,
      );
    }
    const dataset = loadDatasetConfig(opts.data, { confDir: options.confDir });
    return resolveConfig(method, dataset, overrides as TrainOverrides);
  } catch (e) {
    if (e instanceof CliExit) throw e;
    // resolveConfig() names override keys (`Option "batchSize"`); say the flag.
    let msg = (e as Error).message;
    for (const [key, [target]] of Object.entries(CONVERT)) {
      msg = msg.replace(
        new RegExp(`([Oo]ption) "${target}"`, "g"),
        `$1 ${flag(key)}`,
      );
    }
    throw new CliExit(msg, 2);
  }
}
