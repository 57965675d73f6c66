/**
 * `deno task evaluate --run DIR [--split test] [--checkpoint best|last] [--json]`:
 * accuracy, per-class precision/recall and the confusion matrix of a run.
 *
 * @module
 */
import { Command, Option } from "commander";
import { initBackend } from "../lib/backend/backend.ts";
import { evaluateRun, loadRun } from "../lib/train/evaluate.ts";
import { parseCommand, runTask } from "./_cli.ts";

/** A share as a 7-wide percentage, `  n/a` (no % sign) when undefined. */
export const pct = (x: number | null): string =>
  x === null ? "n/a".padStart(7) : `${(100 * x).toFixed(2)}%`.padStart(7);

/** Runs the task; returns the exit code. */
export async function main(
  args: string[],
  print = console.log,
): Promise<number> {
  const cmd = new Command("evaluate")
    .description(
      "Accuracy, per-class precision/recall and confusion matrix of a run",
    )
    .requiredOption("--run <dir>", "run folder (checkpoints/<dataset>/<name>)")
    .addOption(
      new Option("--split <split>", "dataset split").choices(["test", "train"])
        .default("test"),
    )
    .addOption(
      new Option("--checkpoint <tag>", "which checkpoint").choices([
        "best",
        "last",
      ]).default("best"),
    )
    .option("--backend <name>", "compute backend", "auto")
    .option("--json", "print the figures as one JSON object");
  if (!parseCommand(cmd, args, print)) return 0;
  const o = cmd.opts<
    {
      run: string;
      split: "test" | "train";
      checkpoint: "best" | "last";
      backend: string;
      json?: boolean;
    }
  >();
  await initBackend(o.backend as never, {
    log: o.json ? () => {} : console.error,
  });
  const run = await loadRun(o.run, { checkpoint: o.checkpoint });
  try {
    const ev = await evaluateRun(run, { split: o.split });
    if (o.json) {
      print(JSON.stringify(ev));
      return 0;
    }
    const s = ev.summary;
    const names = s.classNames ?? s.confusion.map((_, i) => String(i));
    print(
      `${run.config.method} on ${run.config.dataset.name} ${ev.split} (${s.total} images, ${o.checkpoint} checkpoint)`,
    );
    if (ev.split === "train") {
      print(
        `scored against the clean training labels (the run trained on labels with ${run.config.noise.mode} noise at rate ${run.config.noise.rate}; accuracy here is agreement with the true classes, not with the noisy labels)`,
      );
    }
    print(
      `accuracy ${pct(s.accuracy)}  balanced ${
        pct(s.balancedAccuracy)
      }  macro-F1 ${pct(s.macroF1)}`,
    );
    for (const [m, acc] of Object.entries(ev.modules)) {
      print(`  module ${m}: ${pct(acc)}`);
    }
    const w = Math.min(Math.max(...names.map((n) => n.length), 5), 24);
    print(`${"class".padEnd(w)}  precision   recall  support`);
    names.forEach((n, i) => {
      const support = s.confusion[i].reduce((a, b) => a + b, 0);
      print(
        `${n.slice(0, w).padEnd(w)}  ${
          pct(s.perClass.precision[i]).padStart(9)
        }  ${pct(s.perClass.recall[i])}  ${String(support).padStart(7)}`,
      );
    });
    print("confusion (rows: true class, columns: predicted)");
    for (const row of s.confusion) {
      print(row.map((v) => String(v).padStart(6)).join(""));
    }
    return 0;
  } finally {
    run.dispose();
  }
}

if (import.meta.main) await runTask("evaluate", () => main(Deno.args));
