/**
 * Checks (and optionally builds) the APTOS-2019 layout the reference reads:
 *
 * ```sh
 * # check an existing root
 * deno run --allow-read=data --allow-write=data tasks/prepare_aptos.ts --root data/APTOS-2019
 * # build it from Kaggle's labelled train.csv and train_images/, then check
 * deno run --allow-read=data --allow-write=data tasks/prepare_aptos.ts --root data/APTOS-2019 \
 *   --from-kaggle data/aptos2019/train.csv --images data/aptos2019/train_images
 * ```
 *
 * Building writes `<root>/{train_1.csv,test.csv,val.csv,.prepare_aptos.json}`,
 * `<root>/train_images/train_images/` and `<root>/test_images/`. The split is
 * OURS (seeded, stratified, 2,930 train / 366 test by default): the paper's
 * own split is not published. Exits with status 1 when the check fails.
 *
 * @module
 */
import { Command } from "commander";
import { type MainOptions, parseCommand, runTask } from "./_cli.ts";
import { join } from "node:path";
import { Progress } from "../lib/io/progress.ts";
import {
  APTOS_LAYOUT,
  APTOS_MANIFEST,
  APTOS_SPLIT_DEFAULTS,
  type AptosSplitCheck,
  checkAptos,
  prepareAptos,
} from "../lib/prepare/aptos.ts";

/** Runs the CLI on `args` (without the program name); throws on bad input or a failed check. */
export async function main(
  args: string[] = Deno.args,
  options: MainOptions = {},
): Promise<void> {
  const print = options.print ?? console.log;
  const program = new Command()
    .name("prepare:aptos")
    .description("Check, or build from Kaggle's files, the APTOS-2019 layout")
    .option("--root <dir>", "APTOS-2019 folder", "data/APTOS-2019")
    .option(
      "--from-kaggle <csv>",
      "Kaggle's labelled train.csv: build the layout from it",
    )
    .option(
      "--images <dir>",
      "Kaggle's train_images folder (with --from-kaggle)",
    )
    .option(
      "--test-size <n>",
      "test rows: a count, or a fraction below 1",
      String(APTOS_SPLIT_DEFAULTS.testSize),
    )
    .option(
      "--train-size <n>",
      "training rows: a count, or a fraction below 1 (the rest go to val.csv)",
      String(APTOS_SPLIT_DEFAULTS.trainSize),
    )
    .option(
      "--seed <n>",
      "seed of the split",
      String(APTOS_SPLIT_DEFAULTS.seed),
    )
    .option("--link", "hard-link images instead of copying (same filesystem)")
    .option("--skip-bad", "leave out rows whose image is missing");
  if (!parseCommand(program, args, print)) return;
  const flags = program.opts<{
    root: string;
    fromKaggle?: string;
    images?: string;
    testSize: string;
    trainSize: string;
    seed: string;
    link?: boolean;
    skipBad?: boolean;
  }>();
  const root = flags.root;

  if (flags.fromKaggle !== undefined) {
    if (flags.images === undefined) {
      throw new Error(
        "--from-kaggle needs --images, Kaggle's train_images folder",
      );
    }
    const outputs = [
      APTOS_LAYOUT.trainCsv,
      APTOS_LAYOUT.testCsv,
      APTOS_LAYOUT.valCsv,
      APTOS_MANIFEST,
      `${APTOS_LAYOUT.trainImages}/`,
      `${APTOS_LAYOUT.testImages}/`,
    ];
    print(`Writing ${outputs.map((p) => join(root, p)).join(", ")}`);
    print(
      "The split is ours (seeded, stratified by grade): the paper's split is unpublished",
    );
    let bar: Progress | undefined;
    const report = await prepareAptos(
      { csv: flags.fromKaggle, images: flags.images },
      root,
      {
        testSize: parseNumber(flags.testSize, "--test-size"),
        trainSize: parseNumber(flags.trainSize, "--train-size"),
        seed: parseNumber(flags.seed, "--seed"),
        link: flags.link,
        skipBad: flags.skipBad,
        onStart: (n) => {
          bar = new Progress(n, {
            label: "aptos",
            unit: "img",
            stream: options.progress,
          });
        },
        onImage: () => bar?.tick(),
      },
    );
    bar?.done();
    print("split   rows   grade 0   1   2   3   4");
    for (const part of ["train", "test", "val"] as const) {
      print(
        `${part.padEnd(6)}${String(report.counts[part]).padStart(6)}        ` +
          report.perGrade[part].map((c) => String(c).padStart(4)).join(""),
      );
    }
    if (report.skipped.length > 0) {
      print(
        `skipped ${report.skipped.length} rows without an image: ${
          report.skipped.slice(0, 5).join(", ")
        }`,
      );
    }
  }

  const check = await checkAptos(root);
  const problems: string[] = [];
  for (
    const [name, split] of [["train", check.train], [
      "test",
      check.test,
    ]] as const
  ) {
    print(describe(name, split));
    if (split.error) problems.push(split.error);
    if (split.badLabels.length > 0) {
      problems.push(
        `${split.csv}: ${split.badLabels.length} rows with a grade outside 0-4`,
      );
    }
    if (split.missing.length > 0) {
      problems.push(
        `${split.missing.length} images missing from ${split.images} ` +
          `(first: ${split.missing.slice(0, 3).join(", ")})`,
      );
    }
  }
  if (!check.ok) {
    throw new Error(
      `APTOS layout in "${root}" is not usable: ${problems.join("; ")}`,
    );
  }
  print(`${root}: layout OK`);
}

function describe(name: string, split: AptosSplitCheck): string {
  if (split.error) return `${name}: ${split.error}`;
  const skipped = split.skippedLines.length > 0
    ? `, ${split.skippedLines.length} lines skipped as the reference does`
    : "";
  return `${name}: ${split.rows} rows (grades ${split.perGrade.join("/")}), ` +
    `${split.missing.length} images missing${skipped}`;
}

function parseNumber(value: string, flag: string): number {
  const n = value.trim() === "" ? NaN : Number(value);
  if (!Number.isFinite(n)) {
    throw new Error(`${flag} is "${value}": expected a number`);
  }
  return n;
}

if (import.meta.main) await runTask("prepare:aptos", () => main());
