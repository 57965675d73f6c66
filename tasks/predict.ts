/**
 * `deno task predict --run DIR IMAGE...`: class probabilities per image, one
 * JSON line each.
 *
 * @module
 */
import { Command, Option } from "commander";
import { initBackend } from "../lib/backend/backend.ts";
import { classNamesOf, loadRun, predictImages } from "../lib/train/evaluate.ts";
import { parseCommand, runTask } from "./_cli.ts";

/** Runs the task; returns the exit code. */
export async function main(
  args: string[],
  print = console.log,
): Promise<number> {
  const cmd = new Command("predict")
    .description(
      "Class probabilities of images under a trained run, one JSON line per image",
    )
    .requiredOption("--run <dir>", "run folder (checkpoints/<dataset>/<name>)")
    .argument("<images...>", "JPEG or PNG files")
    .addOption(
      new Option("--checkpoint <tag>", "which checkpoint").choices([
        "best",
        "last",
      ]).default("best"),
    )
    .option("--backend <name>", "compute backend", "auto");
  if (!parseCommand(cmd, args, print)) return 0;
  const o = cmd.opts<
    { run: string; checkpoint: "best" | "last"; backend: string }
  >();
  await initBackend(o.backend as never, { log: console.error });
  const run = await loadRun(o.run, { checkpoint: o.checkpoint });
  try {
    const classes = await classNamesOf(run.config);
    for (const p of await predictImages(run, cmd.args, { classes })) {
      print(JSON.stringify(p));
    }
    return 0;
  } finally {
    run.dispose();
  }
}

if (import.meta.main) await runTask("predict", () => main(Deno.args));
