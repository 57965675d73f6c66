/**
 * `deno task rerun DIR [--save NAME]`: re-executes a recorded run from its
 * config.json into a new folder, in a sandbox: Deno permissions limited to
 * reading the dataset, the weights and DIR, and writing the new run folder.
 * Refuses when a recorded input digest no longer matches.
 *
 * @module
 */
import { Command } from "commander";
import { planRerun } from "../lib/train/rerun.ts";
import { parseCommand, runTask } from "./_cli.ts";

/** Runs the task; returns the exit code (the re-run's own). */
export async function main(
  args: string[],
  print = console.log,
): Promise<number> {
  const cmd = new Command("rerun")
    .description(
      "Re-run a recorded run in a sandbox (checks the recorded input digests first)",
    )
    .argument("<dir>", "the recorded run folder")
    .option("--save <name>", "name of the new run folder (a sibling of DIR)")
    .option("--dry-run", "print the command instead of running it");
  if (!parseCommand(cmd, args, print)) return 0;
  const o = cmd.opts<{ save?: string; dryRun?: boolean }>();
  const plan = await planRerun(cmd.args[0], { save: o.save });
  print(`rerun: ${plan.runDir} -> ${plan.newRunDir}`);
  print(`rerun: deno ${plan.denoArgs.join(" ")}`);
  if (o.dryRun) return 0;
  // "deno" from PATH, as `--allow-run=deno` grants (the running binary may sit elsewhere).
  const child = new Deno.Command("deno", {
    args: plan.denoArgs,
    cwd: plan.cwd,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code;
}

if (import.meta.main) await runTask("rerun", () => main(Deno.args));
