/**
 * `deno task table NAME`: the results of sweep NAME (lib/sweep/table.ts):
 * prints the Markdown table and writes `table.md`, `table.csv`, `cells.csv`,
 * `table.json` and `table.html` into `checkpoints/sweeps/NAME/`.
 *
 * @module
 */
import { Command } from "commander";
import { type MainOptions, parseCommand, runTask } from "./_cli.ts";

/** The command line. */
export function tableCommand(): Command {
  return new Command("table")
    .description(
      "Table 1 of a sweep: mean ± std over seeds beside the paper's figures, selection P/R and wall time per cell; Markdown, CSV, JSON and HTML",
    )
    .argument("<name>", "sweep name (checkpoints/sweeps/<name>)")
    .allowExcessArguments(false);
}

/** Runs `table` with `args`; returns the exit code. */
export async function main(
  args: string[],
  options: MainOptions = {},
): Promise<number> {
  const print = options.print ?? console.log;
  const cmd = tableCommand();
  if (!parseCommand(cmd, args, print)) return 0;
  const { writeTables } = await import("../lib/sweep/table.ts");
  const { markdown, files } = await writeTables(cmd.args[0]);
  print(markdown);
  print(`files: ${files.join(", ")}`);
  return 0;
}

if (import.meta.main) await runTask("table", () => main(Deno.args));
