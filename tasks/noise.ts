/**
 * Prints noisy labels for a JSON list of clean labels:
 *
 * ```sh
 * deno run --allow-read tasks/noise.ts --labels labels.json --classes 7 --rate 0.2
 * ```
 *
 * `--labels` holds an array of integers or `{"labels": [...]}`; `--matrix`
 * (mode `matrix`) a K x K array or `{"matrix": [...]}`. Output, one line:
 * `{"noisy":[...],"is_noisy":[...],"actual_rate":...}`. Reads only the
 * files named; writes nothing.
 *
 * @module
 */
import { Command } from "commander";
import { parseCommand, runTask } from "./_cli.ts";
import {
  makeNoisyLabels,
  type NoiseMode,
  noiseModes,
} from "../lib/noise/label_noise.ts";

/** Options of {@linkcode main}. */
export interface MainOptions {
  /**
   * Where the result line goes.
   * @default console.log
   */
  print?: (line: string) => void;
}

async function readJson(file: string, flag: string): Promise<unknown> {
  try {
    return JSON.parse(await Deno.readTextFile(file));
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : (err as Error).message;
    throw new Error(`Cannot read ${flag} file "${file}": ${why}`);
  }
}

function unwrap(doc: unknown, key: string): unknown {
  if (typeof doc === "object" && doc !== null && !Array.isArray(doc)) {
    return (doc as Record<string, unknown>)[key];
  }
  return doc;
}

async function readLabels(file: string): Promise<Int32Array> {
  const list = unwrap(await readJson(file, "--labels"), "labels");
  if (!Array.isArray(list)) {
    throw new TypeError(
      `Labels file "${file}" must hold an array of integers or {"labels": [...]}`,
    );
  }
  const out = new Int32Array(list.length);
  list.forEach((y, i) => {
    if (typeof y !== "number" || !Number.isInteger(y)) {
      throw new TypeError(
        `Labels file "${file}" entry ${i} is ${
          JSON.stringify(y)
        }, expected an integer`,
      );
    }
    out[i] = y;
  });
  return out;
}

async function readMatrix(file: string): Promise<number[][]> {
  const matrix = unwrap(await readJson(file, "--matrix"), "matrix");
  if (!Array.isArray(matrix) || !matrix.every(Array.isArray)) {
    throw new TypeError(
      `Matrix file "${file}" must hold a K x K array of numbers or {"matrix": [...]}`,
    );
  }
  return matrix as number[][];
}

function parseNumber(value: string, flag: string, integer: boolean): number {
  const n = value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new TypeError(
      `${flag} must be ${integer ? "an integer" : "a number"}, got "${value}"`,
    );
  }
  return n;
}

/** Runs the CLI on `args` (without the program name). */
export async function main(
  args: string[] = Deno.args,
  options: MainOptions = {},
): Promise<void> {
  const { print = console.log } = options;
  const program = new Command()
    .name("noise")
    .description("Make noisy labels as the reference does")
    .requiredOption("--labels <file>", "JSON array of clean labels")
    .requiredOption("--classes <k>", "number of classes")
    .option("--rate <r>", "noise rate in [0, 1] (not for --mode matrix)")
    .option("--seed <s>", "NumPy seed", "0")
    .option(
      "--mode <mode>",
      `noise model: ${noiseModes.join(", ")}`,
      "symmetric",
    )
    .option("--matrix <file>", "JSON K x K transition matrix (--mode matrix)");
  if (!parseCommand(program, args, print)) return;
  const flags = program.opts<Record<string, string | undefined>>();
  const mode = flags.mode as NoiseMode;
  if (!noiseModes.includes(mode)) {
    throw new RangeError(
      `--mode must be one of ${noiseModes.join(", ")}, got "${mode}"`,
    );
  }
  const numClasses = parseNumber(flags.classes!, "--classes", true);
  const seed = parseNumber(flags.seed!, "--seed", true);
  let rate: number | undefined;
  if (flags.rate !== undefined) rate = parseNumber(flags.rate, "--rate", false);
  if (mode !== "matrix" && rate === undefined) {
    throw new TypeError(`--rate is required with --mode ${mode}`);
  }
  if (mode === "matrix" && rate !== undefined) {
    throw new TypeError(
      `--rate is not used with --mode matrix: the matrix sets the flip rates`,
    );
  }
  if (mode === "matrix" && flags.matrix === undefined) {
    throw new TypeError(`--matrix is required with --mode matrix`);
  }
  if (mode !== "matrix" && flags.matrix !== undefined) {
    throw new TypeError(`--matrix is only used with --mode matrix`);
  }
  const clean = await readLabels(flags.labels!);
  const matrix = flags.matrix === undefined
    ? undefined
    : await readMatrix(flags.matrix);
  const result = makeNoisyLabels(clean, numClasses, {
    mode,
    rate,
    seed,
    matrix,
  });
  print(JSON.stringify({
    noisy: Array.from(result.noisy),
    is_noisy: Array.from(result.isNoisy),
    actual_rate: result.actualRate,
  }));
}

if (import.meta.main) await runTask("noise", () => main());
