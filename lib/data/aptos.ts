/**
 * APTOS-2019 blindness detection, laid out as the reference reads it:
 * `{root}/train_1.csv` with images in `{root}/train_images/train_images/`,
 * `{root}/test.csv` with images in `{root}/test_images/`; each CSV is a
 * header line, then `id_code,diagnosis` rows.
 *
 * As in the reference, the first line is skipped whatever it holds, rows
 * that do not have exactly two fields are skipped, and the rest keep their
 * file order (the order the label noise is drawn in). Unlike it, a
 * diagnosis that is not an integer grade 0-4 is an error naming the line.
 *
 * @module
 */
import { parse } from "csv-parse/sync";
import type { Dataset } from "./dataset.ts";
import { decodeImage, type RawImage } from "./image.ts";

/** The five diabetic-retinopathy grades, in label order. */
export const aptosClasses = [
  "No DR",
  "Mild",
  "Moderate",
  "Severe",
  "Proliferative DR",
];

/** Options of {@linkcode loadAptos}. */
export interface AptosOptions {
  /** `train` reads `train_1.csv`, `test` reads `test.csv`. */
  split: "train" | "test";
}

/** One kept CSV row. */
export interface AptosRow {
  id: string;
  diagnosis: number;
  /** 1-based line of the CSV file. */
  line: number;
}

/**
 * Parse an APTOS CSV text (`file` names it in errors).
 *
 * @throws Error naming the file, line and value of a diagnosis that is not
 * an integer from 0 to 4.
 */
export function parseAptosCsv(text: string, file: string): AptosRow[] {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    // With `info: true` each record comes as { record, info }; the typings miss that.
    records = parse(text, {
      from_line: 2,
      relax_column_count: true,
      relax_quotes: true,
      skip_empty_lines: true,
      trim: true,
      info: true,
    }) as unknown as typeof records;
  } catch (e) {
    throw new Error(
      `APTOS file "${file}" is not valid CSV: ${
        e instanceof Error ? e.message : e
      }`,
    );
  }
  const rows: AptosRow[] = [];
  for (const { record, info } of records) {
    if (record.length !== 2) continue;
    const [id, grade] = record;
    if (!/^[+-]?\d+$/.test(grade)) {
      throw new Error(
        `APTOS file "${file}" line ${info.lines}: diagnosis "${grade}" is not an integer`,
      );
    }
    const diagnosis = parseInt(grade, 10);
    if (diagnosis < 0 || diagnosis >= aptosClasses.length) {
      throw new Error(
        `APTOS file "${file}" line ${info.lines}: diagnosis ${diagnosis} is out of range (expected 0 to ${
          aptosClasses.length - 1
        })`,
      );
    }
    rows.push({ id, diagnosis, line: info.lines });
  }
  return rows;
}

/**
 * Load one split of APTOS-2019. Images are not opened until `image(i)`.
 *
 * @throws Error naming the CSV file when it is missing or has a bad row.
 */
export async function loadAptos(
  root: string,
  options: AptosOptions,
): Promise<Dataset> {
  const { split } = options;
  if (split !== "train" && split !== "test") {
    throw new Error(`APTOS split "${split}" is not "train" or "test"`);
  }
  const csv = `${root}/${split === "train" ? "train_1.csv" : "test.csv"}`;
  const imageDir = `${root}/${
    split === "train" ? "train_images/train_images" : "test_images"
  }`;
  let text: string;
  try {
    text = await Deno.readTextFile(csv);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `APTOS file "${csv}" does not exist; build the layout from Kaggle's files with \`deno task prepare:aptos --from-kaggle train.csv --images DIR\``,
      );
    }
    throw e;
  }
  const rows = parseAptosCsv(text, csv);
  if (rows.length === 0) {
    throw new Error(`APTOS file "${csv}" has no id_code,diagnosis rows`);
  }
  const files = rows.map((r) => `${imageDir}/${r.id}.png`);
  const n = rows.length;
  return {
    name: "aptos",
    classes: [...aptosClasses],
    numClasses: aptosClasses.length,
    length: n,
    labels: Int32Array.from(rows, (r) => r.diagnosis),
    describe: (i) => files[i] ?? `${csv}[${i}]`,
    image(i: number): Promise<RawImage> {
      if (!Number.isInteger(i) || i < 0 || i >= n) {
        return Promise.reject(
          new RangeError(`APTOS ${split} has no sample ${i} (it has ${n})`),
        );
      }
      return decodeImage(files[i]);
    },
  };
}
