/**
 * APTOS-2019 in the reference's layout:
 *
 * ```
 * <root>/train_1.csv                         id_code,diagnosis (header line first)
 * <root>/test.csv
 * <root>/train_images/train_images/<id>.png
 * <root>/test_images/<id>.png
 * ```
 *
 * The paper trains on 2,930 images and tests on 366 but does not publish which.
 * {@linkcode splitAptos} makes OUR split of Kaggle's labelled `train.csv`
 * (3,662 rows): seeded, stratified by grade, 2,930 train and 366 test by
 * default; the 366 rows left over go to `val.csv`, which the reference never
 * reads. The counts match the paper; the membership cannot.
 *
 * @module
 */
import { join, resolve, sep } from "node:path";
import {
  mirrorTreeAtomic,
  type MirrorTreeReport,
  type TreeEntry,
  writeFileAtomic,
  writeJsonAtomic,
} from "../io/atomic.ts";

/** Diabetic retinopathy grades 0-4. */
export const APTOS_GRADES = 5;

/** File in `<root>` marking the outputs there as made by {@linkcode prepareAptos}. */
export const APTOS_MANIFEST = ".prepare_aptos.json";

/** Paths, relative to the root, of the reference layout. */
export const APTOS_LAYOUT = {
  trainCsv: "train_1.csv",
  testCsv: "test.csv",
  valCsv: "val.csv",
  trainImages: "train_images/train_images",
  testImages: "test_images",
} as const;

/** One labelled image. */
export interface AptosRow {
  id: string;
  grade: number;
}

/** What {@linkcode checkAptos} found for one split. */
export interface AptosSplitCheck {
  csv: string;
  images: string;
  /** Rows the reference would load. */
  rows: number;
  perGrade: number[];
  /** Lines (1-based) the reference skips: not exactly two fields. */
  skippedLines: number[];
  /** Rows whose diagnosis is not an integer 0-4. */
  badLabels: { line: number; value: string }[];
  /** Image files listed but absent. */
  missing: string[];
  /** Set when the CSV itself cannot be read. */
  error?: string;
}

/** What {@linkcode checkAptos} found. */
export interface AptosCheckReport {
  root: string;
  train: AptosSplitCheck;
  test: AptosSplitCheck;
  /** True when both CSVs load, every label is valid and no image is missing. */
  ok: boolean;
}

/**
 * Checks `<root>` the way the reference reads it: after the header line, a
 * line counts when it splits on `,` into exactly two fields.
 */
export async function checkAptos(root: string): Promise<AptosCheckReport> {
  const train = await checkSplit(
    join(root, APTOS_LAYOUT.trainCsv),
    join(root, APTOS_LAYOUT.trainImages),
  );
  const test = await checkSplit(
    join(root, APTOS_LAYOUT.testCsv),
    join(root, APTOS_LAYOUT.testImages),
  );
  const fine = (s: AptosSplitCheck) =>
    s.error === undefined && s.badLabels.length === 0 &&
    s.missing.length === 0;
  return { root, train, test, ok: fine(train) && fine(test) };
}

async function checkSplit(
  csv: string,
  images: string,
): Promise<AptosSplitCheck> {
  const report: AptosSplitCheck = {
    csv,
    images,
    rows: 0,
    perGrade: new Array(APTOS_GRADES).fill(0),
    skippedLines: [],
    badLabels: [],
    missing: [],
  };
  let text: string;
  try {
    text = await Deno.readTextFile(csv);
  } catch (error) {
    report.error = error instanceof Deno.errors.NotFound
      ? `"${csv}" does not exist`
      : `cannot read "${csv}": ${(error as Error).message}`;
    return report;
  }
  const lines = text.split("\n");
  for (let i = 1; i < lines.length; i++) {
    const fields = lines[i].trim().split(",");
    if (fields.length !== 2) {
      if (lines[i].trim() !== "") report.skippedLines.push(i + 1);
      continue;
    }
    const [id, value] = fields;
    const grade = parseGrade(value);
    if (grade === undefined) {
      report.badLabels.push({ line: i + 1, value });
      continue;
    }
    report.rows++;
    report.perGrade[grade]++;
    if (!(await isFile(join(images, `${id}.png`)))) report.missing.push(id);
  }
  return report;
}

/** Reads Kaggle's `train.csv` strictly: `id_code,diagnosis`, grades 0-4, unique ids. */
export async function readAptosCsv(path: string): Promise<AptosRow[]> {
  const lines = (await Deno.readTextFile(path)).replace(/^\ufeff/, "").split(
    /\r?\n/,
  );
  const header = lines[0].trim();
  if (header !== "id_code,diagnosis") {
    throw new Error(
      `CSV "${path}" line 1 is "${header}": expected id_code,diagnosis`,
    );
  }
  const rows: AptosRow[] = [];
  const seen = new Map<string, number>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const fail = (reason: string) =>
      new Error(`CSV "${path}" line ${i + 1}: ${reason}`);
    const fields = line.split(",");
    if (fields.length !== 2) {
      throw fail(`expected 2 fields (id_code,diagnosis), got "${line}"`);
    }
    const [id, value] = fields.map((f) => f.trim());
    if (!/^[\w.-]+$/.test(id) || id.startsWith(".")) {
      throw fail(`id_code "${id}" is not a plain file name`);
    }
    const grade = parseGrade(value);
    if (grade === undefined) {
      throw fail(`diagnosis "${value}": expected an integer 0-4`);
    }
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      throw fail(`id_code "${id}" already listed on line ${earlier}`);
    }
    seen.set(id, i + 1);
    rows.push({ id, grade });
  }
  return rows;
}

/** Options of {@linkcode splitAptos}. */
export interface SplitAptosOptions {
  /** Test rows: a count, or a fraction of all rows when below 1. @default 366 */
  testSize?: number;
  /** Training rows: a count, or a fraction when below 1; the rest go to `val`. @default 2930 */
  trainSize?: number;
  /** Seed of the shuffle. @default 0 */
  seed?: number;
}

/** Default split sizes: the paper's counts. */
export const APTOS_SPLIT_DEFAULTS = {
  testSize: 366,
  trainSize: 2930,
  seed: 0,
} satisfies SplitAptosOptions;

/**
 * A seeded split stratified by grade, independent of the input order:
 *
 * 1. Sort rows by id, group them by grade, shuffle each group (mulberry32).
 * 2. Share the test count among grades in proportion to their sizes, largest
 *    remainders first; take that many from the front of each group.
 * 3. Share the leftover count (all rows - train - test) the same way among
 *    what remains; those rows are `val`, the rest `train`.
 *
 * Each output is sorted by id.
 */
export function splitAptos(
  rows: readonly AptosRow[],
  options: SplitAptosOptions = {},
): { train: AptosRow[]; test: AptosRow[]; val: AptosRow[] } {
  const n = rows.length;
  const test = resolveSize(
    "testSize",
    options.testSize ?? APTOS_SPLIT_DEFAULTS.testSize,
    n,
  );
  const train = resolveSize(
    "trainSize",
    options.trainSize ?? APTOS_SPLIT_DEFAULTS.trainSize,
    n,
  );
  if (train + test > n) {
    throw new Error(
      `APTOS split asks for ${train} train + ${test} test rows but ${n} are given: ` +
        `expected smaller testSize/trainSize (counts, or fractions below 1)`,
    );
  }
  const random = mulberry32(options.seed ?? APTOS_SPLIT_DEFAULTS.seed);
  const sorted = [...rows].sort((a, b) => compare(a.id, b.id));
  const groups = Array.from(
    { length: APTOS_GRADES },
    (_, g) => shuffle(sorted.filter((r) => r.grade === g), random),
  );
  const testCounts = allocate(test, groups.map((g) => g.length));
  const valCounts = allocate(
    n - train - test,
    groups.map((g, i) => g.length - testCounts[i]),
  );
  const out = {
    train: [] as AptosRow[],
    test: [] as AptosRow[],
    val: [] as AptosRow[],
  };
  groups.forEach((group, i) => {
    out.test.push(...group.slice(0, testCounts[i]));
    out.val.push(...group.slice(testCounts[i], testCounts[i] + valCounts[i]));
    out.train.push(...group.slice(testCounts[i] + valCounts[i]));
  });
  for (const part of Object.values(out)) {
    part.sort((a, b) => compare(a.id, b.id));
  }
  return out;
}

/** Inputs of {@linkcode prepareAptos}: Kaggle's `train.csv` and its image folder. */
export interface AptosKaggleSource {
  csv: string;
  images: string;
}

/** Options of {@linkcode prepareAptos}. */
export interface PrepareAptosOptions extends SplitAptosOptions {
  /** Hard-link images instead of copying them (same filesystem only). @default false */
  link?: boolean;
  /** Leave out rows whose image is missing instead of failing. @default false */
  skipBad?: boolean;
  /** Called once the split is made, with the number of images to place. @default undefined */
  onStart?: (images: number) => void;
  /** Called after each image is placed. @default undefined */
  onImage?: () => void;
}

/** What {@linkcode prepareAptos} wrote. */
export interface AptosPrepareReport {
  root: string;
  counts: { train: number; test: number; val: number };
  perGrade: { train: number[]; test: number[]; val: number[] };
  /** Ids left out because their image is missing (with `skipBad`). */
  skipped: string[];
  trees: { train: MirrorTreeReport; test: MirrorTreeReport };
}

/**
 * Builds the reference layout in `root` from Kaggle's labelled data: the
 * split CSVs and the two image folders (each folder built beside its place
 * and renamed in; identical files are reused on a re-run). Refuses to touch a
 * `root` whose outputs it did not make, such as Kaggle's own `test.csv`.
 */
export async function prepareAptos(
  source: AptosKaggleSource,
  root: string,
  options: PrepareAptosOptions = {},
): Promise<AptosPrepareReport> {
  await checkOutputs(source, root);
  let rows = await readAptosCsv(source.csv);
  const skipped: string[] = [];
  const present: AptosRow[] = [];
  for (const row of rows) {
    const image = join(source.images, `${row.id}.png`);
    if (await isFile(image)) present.push(row);
    else if (options.skipBad) skipped.push(row.id);
    else {
      throw new Error(
        `Image of "${row.id}" listed in "${source.csv}" is missing: expected ${image}`,
      );
    }
  }
  rows = present;
  const split = splitAptos(rows, options);
  const settings = {
    task: "prepare:aptos",
    source,
    testSize: options.testSize ?? APTOS_SPLIT_DEFAULTS.testSize,
    trainSize: options.trainSize ?? APTOS_SPLIT_DEFAULTS.trainSize,
    seed: options.seed ?? APTOS_SPLIT_DEFAULTS.seed,
    link: options.link ?? false,
  };
  // Claim the root first, so a run cut short can be re-run over its leftovers.
  await writeJsonAtomic(join(root, APTOS_MANIFEST), {
    ...settings,
    complete: false,
  });

  options.onStart?.(split.train.length + split.test.length);
  const tree = (part: AptosRow[], dir: string) => {
    const entries: TreeEntry[] = part.map((r) => ({
      path: `${r.id}.png`,
      from: join(source.images, `${r.id}.png`),
    }));
    return mirrorTreeAtomic(join(root, dir), entries, {
      link: options.link,
      onEntry: () => options.onImage?.(),
    });
  };
  const trees = {
    train: await tree(split.train, APTOS_LAYOUT.trainImages),
    test: await tree(split.test, APTOS_LAYOUT.testImages),
  };
  await writeFileAtomic(join(root, APTOS_LAYOUT.trainCsv), toCsv(split.train));
  await writeFileAtomic(join(root, APTOS_LAYOUT.testCsv), toCsv(split.test));
  const valCsv = join(root, APTOS_LAYOUT.valCsv);
  if (split.val.length > 0) await writeFileAtomic(valCsv, toCsv(split.val));
  else await Deno.remove(valCsv).catch(() => {});

  const perGrade = {
    train: gradeCounts(split.train),
    test: gradeCounts(split.test),
    val: gradeCounts(split.val),
  };
  const counts = {
    train: split.train.length,
    test: split.test.length,
    val: split.val.length,
  };
  await writeJsonAtomic(join(root, APTOS_MANIFEST), {
    ...settings,
    complete: true,
    counts,
    perGrade,
    skipped,
  });
  return { root, counts, perGrade, skipped, trees };
}

async function checkOutputs(source: AptosKaggleSource, root: string) {
  const inside = (path: string, dir: string) => {
    const p = resolve(path);
    const d = resolve(dir);
    return p === d || p.startsWith(d + sep);
  };
  for (const dir of [APTOS_LAYOUT.trainImages, APTOS_LAYOUT.testImages]) {
    if (inside(source.images, join(root, dir))) {
      throw new Error(
        `Image folder "${source.images}" lies inside "${
          join(root, dir)
        }", which is rebuilt: ` +
          `expected Kaggle's images elsewhere`,
      );
    }
  }
  for (
    const csv of [
      APTOS_LAYOUT.trainCsv,
      APTOS_LAYOUT.testCsv,
      APTOS_LAYOUT.valCsv,
    ]
  ) {
    if (resolve(source.csv) === resolve(join(root, csv))) {
      throw new Error(
        `Kaggle CSV "${source.csv}" would be overwritten by the output ${csv}: ` +
          `expected it under another name or folder`,
      );
    }
  }
  if (await exists(join(root, APTOS_MANIFEST))) return;
  for (const path of Object.values(APTOS_LAYOUT)) {
    if (await exists(join(root, path))) {
      throw new Error(
        `"${join(root, path)}" exists and was not made by prepare:aptos ` +
          `(no ${APTOS_MANIFEST} in "${root}"): expected a new root ` +
          `(Kaggle's own test.csv and test_images have no labels)`,
      );
    }
  }
}

function toCsv(rows: readonly AptosRow[]): string {
  return "id_code,diagnosis\n" +
    rows.map((r) => `${r.id},${r.grade}\n`).join("");
}

function gradeCounts(rows: readonly AptosRow[]): number[] {
  const counts = new Array(APTOS_GRADES).fill(0);
  for (const r of rows) counts[r.grade]++;
  return counts;
}

function parseGrade(value: string): number | undefined {
  const v = value.trim();
  if (!/^\d+$/.test(v)) return undefined;
  const grade = Number(v);
  return grade < APTOS_GRADES ? grade : undefined;
}

function resolveSize(name: string, value: number, n: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new Error(
      `Option ${name} is ${value}: expected a count or a fraction below 1`,
    );
  }
  if (value < 1) return Math.round(value * n);
  if (!Number.isInteger(value)) {
    throw new Error(
      `Option ${name} is ${value}: expected a whole count or a fraction below 1`,
    );
  }
  return value;
}

/** Splits `total` in proportion to `sizes` by largest remainder (exact integers). */
function allocate(total: number, sizes: readonly number[]): number[] {
  const n = sizes.reduce((a, b) => a + b, 0);
  if (total === 0 || n === 0) return sizes.map(() => 0);
  const counts = sizes.map((s) => Math.floor((total * s) / n));
  const order = sizes
    .map((s, i) => ({ i, rest: (total * s) % n }))
    .sort((a, b) => b.rest - a.rest || a.i - b.i);
  let left = total - counts.reduce((a, b) => a + b, 0);
  for (const { i } of order) {
    if (left === 0) break;
    counts[i]++;
    left--;
  }
  return counts;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/** mulberry32: a small, well-mixed 32-bit generator; enough for a shuffle. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
