/**
 * `deno task pretrain:demo [--out data/demo/backbone.safetensors]
 * [--epochs N] [--backend NAME]`: pre-trains the demo's small DINOv2
 * backbone on its pretext task (shape and texture of synthetic lesions on
 * images the demo never uses; see lib/demo/pretrain.ts) and writes it as
 * safetensors with its `variant` metadata. Writes only the `--out` file
 * (through a temporary file renamed into place).
 *
 * Seeded throughout: re-running it regenerates the committed file (bit for
 * bit with the same backend and thread count). A few minutes on two cores.
 *
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import { type BackendName, BACKENDS } from "../lib/backend/backend.ts";
import { usageLine } from "../lib/cli/usage.ts";
import { runTask } from "./_cli.ts";

/** The committed file the demo reads. */
export const DEFAULT_OUT = "data/demo/backbone.safetensors";

/** Parsed arguments of the task. */
export interface PretrainArgs {
  out: string;
  epochs?: number;
  backend: BackendName;
}

/** Parses the task's arguments; throws `CommanderError` or `TypeError` on bad input. */
export function parsePretrainArgs(args: string[]): PretrainArgs {
  const program = new Command("pretrain:demo")
    .description("Pre-train the demo's small DINOv2 backbone")
    .option("--out <file>", "safetensors file to write", DEFAULT_OUT)
    .option("--epochs <n>", "pretext epochs (default: 40)", (v: string) => {
      const n = Number(v);
      if (!/^\s*\d+\s*$/.test(v) || n < 1) {
        throw new TypeError(
          `Option --epochs must be a positive integer, got ${
            JSON.stringify(v)
          }`,
        );
      }
      return n;
    })
    .addOption(
      new Option("--backend <name>", "compute backend").choices(
        BACKENDS as unknown as string[],
      ).default("auto"),
    )
    .exitOverride()
    .configureOutput({
      writeErr: () => {},
      writeOut: (s) => console.log(s),
      // Commander's colour check reads env variables the task may not read.
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    })
    .allowExcessArguments(false);
  program.parse(args, { from: "user" });
  const o = program.opts();
  return {
    out: o.out,
    backend: o.backend,
    ...(o.epochs === undefined ? {} : { epochs: o.epochs }),
  };
}

/** Runs the task; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed: PretrainArgs;
  try {
    parsed = parsePretrainArgs(args);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0;
      console.error(usageLine("pretrain:demo", e.message));
      return 2;
    }
    if (e instanceof TypeError) {
      console.error(usageLine("pretrain:demo", e.message));
      return 2;
    }
    throw e;
  }
  const { initBackend } = await import("../lib/backend/backend.ts");
  const { pretrainBackbone, writeBackbone } = await import(
    "../lib/demo/pretrain.ts"
  );
  await initBackend(parsed.backend);
  console.log(`pretrain:demo: writing ${parsed.out}`);
  const result = await pretrainBackbone(
    parsed.epochs === undefined ? {} : { epochs: parsed.epochs },
  );
  await writeBackbone(parsed.out, result);
  const { size } = await Deno.stat(parsed.out);
  const last = result.history[result.history.length - 1];
  console.log(
    `wrote ${parsed.out} (${(size / 1024).toFixed(0)} KiB) in ${
      result.seconds.toFixed(0)
    } s; held-out pretext accuracy: shape ${
      (last.shapeAcc * 100).toFixed(1)
    }%, texture ${(last.textureAcc * 100).toFixed(1)}%`,
  );
  return 0;
}

if (import.meta.main) await runTask("pretrain:demo", () => main(Deno.args));
