/**
 * `deno task rerun DIR [--save NAME] [--allow-outside DIR]... [--dry-run]`:
 * re-executes a recorded run from its config.json into a new folder, in a
 * sandbox (see lib/train/rerun.ts for what is checked and granted). Prints
 * the plan, with every permission and why; `--dry-run` checks everything and
 * stops there. After the run, the new record's input digests must equal the
 * old ones.
 *
 * @module
 */
import { Command } from "commander";
import { checkRerunLabels, planRerun } from "../lib/train/rerun.ts";
import { changedInput, readRunRecord } from "../lib/train/run_dir.ts";
import { parseCommand, runTask } from "./_cli.ts";

/** Runs the task; returns the exit code (the re-run's own). */
export async function main(
  args: string[],
  print = console.log,
): Promise<number> {
  const cmd = new Command("rerun")
    .description(
      "Re-run a recorded run in a sandbox (checks the record, its paths and its input digests first)",
    )
    .argument("<dir>", "the recorded run folder")
    .option("--save <name>", "name of the new run folder (a sibling of DIR)")
    .option(
      "--allow-outside <dir>",
      "let recorded paths point into this folder outside the project (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option(
      "--dry-run",
      "check everything and print the plan, without running",
    );
  if (!parseCommand(cmd, args, print)) return 0;
  const o = cmd.opts<
    { save?: string; allowOutside: string[]; dryRun?: boolean }
  >();
  const plan = await planRerun(cmd.args[0], {
    save: o.save,
    allowOutside: o.allowOutside,
  });
  print(`rerun: ${plan.runDir} -> ${plan.newRunDir}`);
  print(`rerun: ${plan.config.method} in ${plan.cwd}`);
  for (const note of plan.notes) print(`rerun: ${note}`);
  print(`rerun: ${await checkRerunLabels(plan)}`);
  for (const g of plan.grants) {
    print(`rerun: grant ${g.kind.padEnd(5)} ${g.value}  (${g.why})`);
  }
  print(`rerun: no net, no run, no prompt`);
  for (const [k, v] of Object.entries(plan.env)) print(`rerun: env ${k}=${v}`);
  print(`rerun: deno ${plan.denoArgs.join(" ")}`);
  if (o.dryRun) return 0;
  // "deno" from PATH, as `--allow-run=deno` grants (the running binary may sit elsewhere).
  const child = new Deno.Command("deno", {
    args: plan.denoArgs,
    cwd: plan.cwd,
    env: plan.env,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const code = (await child.status).code;
  if (code !== 0) return code;
  // The inputs may have changed between the checks and the run.
  const done = await readRunRecord(plan.newRunDir);
  const changed = changedInput(plan.record.digests, done.digests);
  if (changed !== null) {
    throw new Error(
      `The re-run in "${plan.newRunDir}" is not a re-run of "${plan.runDir}": ${changed}`,
    );
  }
  return 0;
}

if (import.meta.main) await runTask("rerun", () => main(Deno.args));
