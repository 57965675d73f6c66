/**
 * `deno task label-issues --run DIR [--top K] [--json]`: ranks a finished
 * run's training samples by how strongly the run rejects their label and
 * writes `label_issues.csv`, `label_issues.html` and `label_issues.json` into
 * the run folder (lib/label_issues/).
 *
 * @module
 */
import { Command, Option } from "commander";
import { findLabelIssues } from "../lib/label_issues/find_label_issues.ts";
import {
  labelIssuesSummary,
  precisionRecallLine,
  writeLabelIssues,
} from "../lib/label_issues/report.ts";
import { SCORE_VARIANTS } from "../lib/label_issues/score.ts";
import { parseCommand, runTask, UsageError } from "./_cli.ts";

/** Runs the task; returns the exit code. */
export async function main(
  args: string[],
  print = console.log,
): Promise<number> {
  const cmd = new Command("label-issues")
    .description(
      "Rank a run's training samples by how strongly the run rejects their label; write label_issues.csv/.html/.json into the run folder",
    )
    .requiredOption("--run <dir>", "run folder (checkpoints/<dataset>/<name>)")
    .option(
      "--top <k>",
      "images shown in the HTML, and K of precision at K",
      "50",
    )
    .addOption(
      new Option("--variant <name>", "score variant").choices([
        ...SCORE_VARIANTS,
      ]).default("curriculum"),
    )
    .option("--json", "print the figures as one JSON object on the last line");
  if (!parseCommand(cmd, args, print)) return 0;
  const o = cmd.opts<
    { run: string; top: string; variant: string; json?: boolean }
  >();
  const top = Number(o.top);
  if (!/^\d+$/.test(o.top) || top < 1) {
    throw new UsageError(
      `Option --top must be a positive integer, got ${
        JSON.stringify(o.top)
      }; see \`deno task label-issues --help\``,
    );
  }
  const result = await findLabelIssues(o.run, {
    top,
    variant: o.variant as never,
  });
  const files = await writeLabelIssues(result);
  const summary = labelIssuesSummary(result);
  if (!o.json) {
    print(precisionRecallLine(result));
    for (const x of result.ranking.issues.slice(0, Math.min(top, 10))) {
      const names = result.dataset.classes;
      print(
        `  ${x.score.toFixed(3)}  #${x.index} ${
          result.dataset.describe(x.index)
        }: given ${names[x.given]}, suggested ${names[x.suggested] ?? "-"}`,
      );
    }
    for (const f of files) print(`wrote ${f}`);
    return 0;
  }
  // Key order: flagged, precision, recall, f1, precision_at_k first.
  print(JSON.stringify(summary));
  return 0;
}

if (import.meta.main) await runTask("label-issues", () => main(Deno.args));
