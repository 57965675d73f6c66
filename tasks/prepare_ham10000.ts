/**
 * Arranges the ISIC 2018 Task 3 files as the reference's ImageFolder tree:
 *
 * ```sh
 * deno run --allow-read=data --allow-write=data tasks/prepare_ham10000.ts \
 *   --train-images data/isic2018/ISIC2018_Task3_Training_Input \
 *   --train-csv data/isic2018/ISIC2018_Task3_Training_GroundTruth.csv \
 *   --test-images data/isic2018/ISIC2018_Task3_Test_Input \
 *   --test-csv data/isic2018/ISIC2018_Task3_Test_GroundTruth.csv
 * ```
 *
 * Writes `<out>/{train,test}/{CLASS}/<image>.jpg` and
 * `<out>/.prepare_ham10000.json`, building them in a temporary folder beside
 * `<out>` (hence write access to its parent) and renaming it into place.
 *
 * @module
 */
import { Command } from "commander";
import { type MainOptions, parseCommand, runTask } from "./_cli.ts";
import { Progress } from "../lib/io/progress.ts";
import {
  HAM10000_CLASSES,
  HAM10000_MANIFEST,
  prepareHam10000,
} from "../lib/prepare/ham10000.ts";

/** Runs the CLI on `args` (without the program name); throws on bad input. */
export async function main(
  args: string[] = Deno.args,
  options: MainOptions = {},
): Promise<void> {
  const print = options.print ?? console.log;
  const program = new Command()
    .name("prepare:ham10000")
    .description(
      "Arrange ISIC 2018 Task 3 images as <out>/{train,test}/{CLASS}/",
    )
    .requiredOption(
      "--train-images <dir>",
      "ISIC2018_Task3_Training_Input folder",
    )
    .requiredOption(
      "--train-csv <file>",
      "ISIC2018_Task3_Training_GroundTruth.csv",
    )
    .requiredOption("--test-images <dir>", "ISIC2018_Task3_Test_Input folder")
    .requiredOption("--test-csv <file>", "ISIC2018_Task3_Test_GroundTruth.csv")
    .option("--out <dir>", "output folder", "data/ham10000")
    .option("--link", "hard-link images instead of copying (same filesystem)")
    .option("--skip-bad", "skip and count bad rows and missing images");
  if (!parseCommand(program, args, print)) return;
  const flags = program.opts<{
    trainImages: string;
    trainCsv: string;
    testImages: string;
    testCsv: string;
    out: string;
    link?: boolean;
    skipBad?: boolean;
  }>();
  const out = flags.out;
  print(
    `Writing ${out}/{train,test}/{${HAM10000_CLASSES.join(",")}}/<image>.jpg ` +
      `and ${out}/${HAM10000_MANIFEST} (built beside ${out}, then renamed)`,
  );
  let bar: Progress | undefined;
  const report = await prepareHam10000(
    {
      trainImages: flags.trainImages,
      trainCsv: flags.trainCsv,
      testImages: flags.testImages,
      testCsv: flags.testCsv,
    },
    out,
    {
      link: flags.link,
      skipBad: flags.skipBad,
      onStart: (n) => {
        bar = new Progress(n, {
          label: "ham10000",
          unit: "img",
          stream: options.progress,
        });
      },
      onImage: () => bar?.tick(),
    },
  );
  bar?.done();

  print("class   train   test");
  let train = 0;
  let test = 0;
  for (const c of HAM10000_CLASSES) {
    train += report.counts.train[c];
    test += report.counts.test[c];
    print(
      `${c.padEnd(6)}${String(report.counts.train[c]).padStart(7)}` +
        `${String(report.counts.test[c]).padStart(7)}`,
    );
  }
  print(`total ${String(train).padStart(7)}${String(test).padStart(7)}`);
  if (report.skipped.length > 0) {
    print(
      `skipped ${report.skipped.length} rows (listed in ${out}/${HAM10000_MANIFEST}):`,
    );
    for (const s of report.skipped.slice(0, 5)) {
      print(`  ${s.file} line ${s.line}: ${s.reason}`);
    }
  }
  const t = report.tree;
  print(
    t.updated
      ? `${out}: ${t.written} files written, ${t.unchanged} unchanged, ${t.removed} removed`
      : `${out}: already up to date, nothing rewritten`,
  );
}

if (import.meta.main) await runTask("prepare:ham10000", () => main());
