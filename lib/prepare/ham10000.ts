/**
 * HAM10000 (ISIC 2018 Task 3) as the reference's `ImageFolder` layout:
 * `<out>/{train,test}/{CLASS}/<image>.jpg`.
 *
 * The ground-truth CSVs have columns `image,MEL,NV,BCC,AKIEC,BKL,DF,VASC`
 * with one-hot floats. `ImageFolder` numbers classes by sorted folder name,
 * so every class folder is created in both splits even when empty: a missing
 * folder would shift the indices of the classes after it.
 *
 * @module
 */
import { parse } from "csv-parse/sync";
import { join, resolve, sep } from "node:path";
import {
  mirrorTreeAtomic,
  type MirrorTreeReport,
  type TreeEntry,
} from "../io/atomic.ts";

/** Class columns in the order the ISIC CSVs list them. */
export const ISIC_COLUMNS = [
  "MEL",
  "NV",
  "BCC",
  "AKIEC",
  "BKL",
  "DF",
  "VASC",
] as const;

/** A HAM10000 diagnosis. */
export type Ham10000Class = typeof ISIC_COLUMNS[number];

/** Classes in `ImageFolder` index order (sorted): AKIEC is 0, VASC is 6. */
export const HAM10000_CLASSES: readonly Ham10000Class[] = [...ISIC_COLUMNS]
  .sort();

/** File in `<out>` recording how the tree was made; marks `<out>` as ours. */
export const HAM10000_MANIFEST = ".prepare_ham10000.json";

/** One labelled image of a ground-truth CSV. */
export interface IsicRow {
  image: string;
  label: Ham10000Class;
  /** 1-based line in the CSV. */
  line: number;
}

/** A row or image left out because of `skipBad`. */
export interface SkippedRow {
  file: string;
  line: number;
  image?: string;
  reason: string;
}

/** Options of {@linkcode readIsicCsv}. */
export interface ReadIsicCsvOptions {
  /** Collect bad rows in `skipped` instead of throwing. @default false */
  skipBad?: boolean;
}

/**
 * Reads an ISIC 2018 Task 3 ground-truth CSV. The header must hold `image`
 * and the seven class columns (any order); each row must be one-hot.
 */
export async function readIsicCsv(
  path: string,
  options: ReadIsicCsvOptions = {},
): Promise<{ rows: IsicRow[]; skipped: SkippedRow[] }> {
  const text = (await Deno.readTextFile(path)).replace(/\r\n?/g, "\n");
  let records: { info: { lines: number }; record: string[] }[];
  try {
    // csv-parse types `info: true` results as plain records; they are not.
    records = parse(text, {
      bom: true,
      info: true,
      skip_empty_lines: true,
      relax_column_count: true,
    }) as unknown as typeof records;
  } catch (error) {
    throw new Error(`Cannot read CSV "${path}": ${(error as Error).message}`);
  }
  if (records.length === 0) throw new Error(`CSV "${path}" is empty`);
  const header = records[0].record.map((h) => h.trim());
  const expected = ["image", ...ISIC_COLUMNS];
  const sameColumns = header.length === expected.length &&
    expected.every((c) => header.includes(c));
  if (!sameColumns) {
    throw new Error(
      `CSV "${path}" has columns ${header.join(",")}: expected ${
        expected.join(",")
      }`,
    );
  }
  const imageAt = header.indexOf("image");
  const classAt = ISIC_COLUMNS.map((c) => header.indexOf(c));

  const rows: IsicRow[] = [];
  const skipped: SkippedRow[] = [];
  const seen = new Map<string, number>();
  for (const { info, record } of records.slice(1)) {
    const line = info.lines;
    const fail = (reason: string, image?: string) => {
      if (!options.skipBad) {
        throw new Error(`CSV "${path}" line ${line}: ${reason}`);
      }
      skipped.push({ file: path, line, image, reason });
    };
    if (record.length !== header.length) {
      fail(`expected ${header.length} fields, got ${record.length}`);
      continue;
    }
    const image = record[imageAt].trim();
    if (!/^[\w.-]+$/.test(image) || image.startsWith(".")) {
      fail(`image name "${image}" is not a plain file name`);
      continue;
    }
    const values = classAt.map((i) => record[i].trim());
    const numbers = values.map(Number);
    const ones = numbers.filter((v) => v === 1).length;
    const oneHot = ones === 1 && numbers.every((v) => v === 0 || v === 1);
    if (!oneHot) {
      fail(
        `expected one-hot values for ${ISIC_COLUMNS.join(",")}, got ${
          values.join(",")
        }`,
        image,
      );
      continue;
    }
    const earlier = seen.get(image);
    if (earlier !== undefined) {
      fail(`image "${image}" already listed on line ${earlier}`, image);
      continue;
    }
    seen.set(image, line);
    rows.push({ image, label: ISIC_COLUMNS[numbers.indexOf(1)], line });
  }
  return { rows, skipped };
}

/** Inputs of {@linkcode prepareHam10000}: image folders and their CSVs. */
export interface Ham10000Sources {
  trainImages: string;
  trainCsv: string;
  testImages: string;
  testCsv: string;
}

/** Options of {@linkcode prepareHam10000}. */
export interface PrepareHam10000Options {
  /** Hard-link images instead of copying them (same filesystem only). @default false */
  link?: boolean;
  /** Skip (and count) bad rows and missing images instead of failing. @default false */
  skipBad?: boolean;
  /** Called once the inputs are checked, with the number of images to place. @default undefined */
  onStart?: (images: number) => void;
  /** Called after each image is placed. @default undefined */
  onImage?: () => void;
}

/** What {@linkcode prepareHam10000} wrote. */
export interface Ham10000Report {
  out: string;
  counts: {
    train: Record<Ham10000Class, number>;
    test: Record<Ham10000Class, number>;
  };
  skipped: SkippedRow[];
  tree: MirrorTreeReport;
}

/**
 * Builds `<out>/{train,test}/{CLASS}/<image>.jpg` (plus a manifest) from the
 * ISIC files. The tree is built beside `<out>` and renamed into place, and
 * files already identical in `<out>` are reused, so re-running leaves the same
 * tree. `<out>` must be new, empty, or made by this function before.
 */
export async function prepareHam10000(
  sources: Ham10000Sources,
  out: string,
  options: PrepareHam10000Options = {},
): Promise<Ham10000Report> {
  await checkOutput(out, sources);
  const skipped: SkippedRow[] = [];
  const entries: TreeEntry[] = [];
  const counts = {
    train: emptyCounts(),
    test: emptyCounts(),
  };
  const splits = [
    { name: "train", images: sources.trainImages, csv: sources.trainCsv },
    { name: "test", images: sources.testImages, csv: sources.testCsv },
  ] as const;
  for (const split of splits) {
    await requireDirectory(split.images, `${split.name} image folder`);
    const read = await readIsicCsv(split.csv, { skipBad: options.skipBad });
    skipped.push(...read.skipped);
    for (const row of read.rows) {
      const from = join(split.images, `${row.image}.jpg`);
      if (!(await isFile(from))) {
        const reason = `image "${row.image}" is missing: expected ${from}`;
        if (!options.skipBad) {
          throw new Error(`CSV "${split.csv}" line ${row.line}: ${reason}`);
        }
        skipped.push({
          file: split.csv,
          line: row.line,
          image: row.image,
          reason,
        });
        continue;
      }
      entries.push({
        path: `${split.name}/${row.label}/${row.image}.jpg`,
        from,
      });
      counts[split.name][row.label]++;
    }
  }
  const manifest = {
    task: "prepare:ham10000",
    sources,
    link: options.link ?? false,
    classes: HAM10000_CLASSES,
    counts,
    skipped,
  };
  options.onStart?.(entries.length);
  entries.push({
    path: HAM10000_MANIFEST,
    data: JSON.stringify(manifest, null, 2) + "\n",
  });
  const tree = await mirrorTreeAtomic(out, entries, {
    link: options.link,
    dirs: splits.flatMap((s) => HAM10000_CLASSES.map((c) => `${s.name}/${c}`)),
    onEntry: (entry) => {
      if ("from" in entry) options.onImage?.();
    },
  });
  return { out, counts, skipped, tree };
}

function emptyCounts(): Record<Ham10000Class, number> {
  return Object.fromEntries(ISIC_COLUMNS.map((c) => [c, 0])) as Record<
    Ham10000Class,
    number
  >;
}

async function checkOutput(out: string, sources: Ham10000Sources) {
  const root = resolve(out);
  for (const [key, path] of Object.entries(sources)) {
    const full = resolve(path);
    if (full === root || full.startsWith(root + sep)) {
      throw new Error(
        `Input ${key} "${path}" lies inside the output "${out}", which is replaced: ` +
          `choose an output folder apart from the ISIC files`,
      );
    }
  }
  let names: string[];
  try {
    names = [];
    for await (const item of Deno.readDir(out)) names.push(item.name);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    if (error instanceof Deno.errors.NotADirectory) {
      throw new Error(`Output "${out}" is a file: expected a directory`);
    }
    throw error;
  }
  if (names.length > 0 && !names.includes(HAM10000_MANIFEST)) {
    throw new Error(
      `Output "${out}" already holds files not made by prepare:ham10000 ` +
        `(no ${HAM10000_MANIFEST}): expected a new or empty folder`,
    );
  }
}

async function requireDirectory(path: string, what: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`The ${what} "${path}" does not exist`);
    }
    throw error;
  }
  if (!info.isDirectory) {
    throw new Error(`The ${what} "${path}" is not a directory`);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
