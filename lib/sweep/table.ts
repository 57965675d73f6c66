/**
 * A sweep's results: every cell read from its run folder, then the paper's
 * Table 1 layout, mean ± std over seeds of the last-10-epoch test accuracy
 * (the reference's `avgacc.txt` figure), with the paper's figure and the
 * difference beside it.
 *
 * Only finished cells (every configured epoch recorded) count; a group with
 * none is `null` (shown as "missing", never as 0), and a group with fewer
 * seeds than the grid says how many it has. The standard deviation is the
 * sample one (n - 1), `null` for a single seed. Selection precision and recall
 * of LPM and IAM (CUFIT cells) are means over the same last 10 epochs of what
 * `metrics.jsonl` records per epoch (`selection.lpm`, `selection.iam`).
 *
 * Writes `table.md`, `table.csv` (groups), `cells.csv`, `table.json` and
 * `table.html` (lib/sweep/table_html.ts) into the sweep folder.
 *
 * @module
 */
import { join } from "node:path";
import type { Method } from "../train/config.ts";
import type { SweepNoiseMode } from "./grid.ts";
import { formatDuration } from "./local.ts";
import { METHOD_NAMES, PAPER_DATASET_NAMES, paperAccuracy } from "./paper.ts";
import {
  cellRunDir,
  readCellStatus,
  readRunProgress,
  readSweep,
  sweepDir,
  writeSweepFile,
} from "./sweep_dir.ts";
import { checkSweepName } from "./grid.ts";
import { renderTableHtml } from "./table_html.ts";

/** How many final epochs the accuracy and selection figures average. */
export const LAST_EPOCHS = 10;

/** Precision and recall of one module's selection, as fractions. */
export interface SelectionFigure {
  precision: number | null;
  recall: number | null;
}

/** One cell's results. */
export interface CellResult {
  index: number;
  id: string;
  dataset: string;
  method: Method;
  noiseMode: SweepNoiseMode;
  noiseRate: number;
  seed: number;
  /** Recorded state, or `done` when the run folder is complete. */
  state: string;
  epochsDone: number;
  /** Configured epochs, when the run has started. */
  epochs: number | null;
  /** Mean test accuracy of the last 10 epochs (fraction), finished cells only. */
  last10: number | null;
  /** Best epoch's test accuracy (fraction), finished cells only. */
  best: number | null;
  /** `lpm` and `iam` selection, means over the last 10 epochs (CUFIT). */
  selection: Record<string, SelectionFigure>;
  /** Wall-clock seconds of every attempt. */
  seconds: number;
  attempts: number;
  exitCode: number | null;
}

/** One row-and-method of Table 1: a dataset, noise and method over seeds. */
export interface GroupResult {
  dataset: string;
  noiseMode: SweepNoiseMode;
  noiseRate: number;
  method: Method;
  /** Finished seeds' last-10 accuracies, in %. */
  values: number[];
  /** Seeds in the grid. */
  seeds: number;
  /** Mean %, `null` when no seed finished. */
  mean: number | null;
  /** Sample standard deviation %, `null` below two seeds. */
  std: number | null;
  /** The paper's %, `null` where it has none. */
  paper: number | null;
  /** `mean - paper`, when both exist. */
  diff: number | null;
}

/** Everything `deno task table` reports. */
export interface SweepResults {
  name: string;
  description: string;
  datasets: string[];
  methods: Method[];
  noise: { mode: SweepNoiseMode; rate: number }[];
  cells: CellResult[];
  groups: GroupResult[];
}

function mean(xs: number[]): number | null {
  return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : null;
}

function sampleStd(xs: number[]): number | null {
  if (xs.length < 2) return null;
  const m = mean(xs)!;
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Reads every cell of sweep folder `dir` and aggregates them. */
export async function collectResults(dir: string): Promise<SweepResults> {
  const record = await readSweep(dir);
  const cells: CellResult[] = [];
  for (const cell of record.cells) {
    const status = await readCellStatus(dir, cell);
    const p = await readRunProgress(cellRunDir(dir, cell));
    const last = p.complete
      ? p.records.slice(0, p.epochs!).slice(-LAST_EPOCHS)
      : [];
    const selection: Record<string, SelectionFigure> = {};
    for (const module of ["lpm", "iam"]) {
      const rows = last.map((r) => r.selection[module]).filter(Boolean);
      if (rows.length === 0) continue;
      const avg = (k: "precision" | "recall") =>
        mean(rows.map((r) => r[k]).filter((v): v is number => v !== null));
      selection[module] = {
        precision: avg("precision"),
        recall: avg("recall"),
      };
    }
    cells.push({
      index: cell.index,
      id: cell.id,
      dataset: cell.dataset,
      method: cell.method,
      noiseMode: cell.noiseMode,
      noiseRate: cell.noiseRate,
      seed: cell.seed,
      state: p.complete ? "done" : status.state,
      epochsDone: p.records.length,
      epochs: p.epochs,
      last10: p.complete ? mean(last.map((r) => r.testAcc)) : null,
      best: p.complete
        ? Math.max(...p.records.slice(0, p.epochs!).map((r) => r.testAcc))
        : null,
      selection,
      seconds: status.seconds,
      attempts: status.attempts,
      exitCode: status.exitCode,
    });
  }
  const g = record.grid;
  const noise = g.noiseModes.flatMap((mode) =>
    g.noiseRates.map((rate) => ({ mode, rate }))
  );
  const groups: GroupResult[] = [];
  for (const dataset of g.datasets) {
    for (const { mode, rate } of noise) {
      for (const method of g.methods) {
        const values = cells.filter((c) =>
          c.dataset === dataset && c.method === method &&
          c.noiseMode === mode &&
          c.noiseRate === rate && c.last10 !== null
        ).map((c) => 100 * c.last10!);
        const m = mean(values);
        const paper = paperAccuracy(dataset, method, mode, rate);
        groups.push({
          dataset,
          noiseMode: mode,
          noiseRate: rate,
          method,
          values,
          seeds: g.seeds.length,
          mean: m,
          std: sampleStd(values),
          paper,
          diff: m !== null && paper !== null ? m - paper : null,
        });
      }
    }
  }
  return {
    name: record.name,
    description: g.description,
    datasets: g.datasets,
    methods: g.methods,
    noise,
    cells,
    groups,
  };
}

const f1 = (x: number) => x.toFixed(1);
const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}`;

/** `81.3 ± 0.4`, `81.3 (1/2 seeds)`, or `missing`. */
export function formatGroup(gr: GroupResult): string {
  if (gr.mean === null) return "missing";
  const partial = gr.values.length < gr.seeds
    ? ` (${gr.values.length}/${gr.seeds} seeds)`
    : "";
  return `${f1(gr.mean)}${gr.std === null ? "" : ` ± ${f1(gr.std)}`}${partial}`;
}

/** The paper's dataset name, or ours. */
export function datasetLabel(d: string): string {
  return PAPER_DATASET_NAMES[d] ?? d;
}

/** `symmetric 0.4` -> `0.4` (the paper's mode), else `pairflip 0.4`. */
export function noiseLabel(mode: string, rate: number): string {
  return mode === "symmetric" ? String(rate) : `${mode} ${rate}`;
}

function pct(x: number | null): string {
  return x === null ? "–" : f1(100 * x);
}

/** The selection cell text: `97.6 / 78.9`, or `–`. */
export function formatSelection(s: SelectionFigure | undefined): string {
  return s ? `${pct(s.precision)} / ${pct(s.recall)}` : "–";
}

function mdTable(header: string[], rows: string[][]): string[] {
  const w = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i].length))
  );
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(w[i])).join(" | ")} |`;
  return [
    line(header),
    `| ${w.map((n) => "-".repeat(n)).join(" | ")} |`,
    ...rows.map(line),
  ];
}

/** The Table 1 rows: dataset, noise, then ours / paper / Δ per method. */
export function table1Rows(
  r: SweepResults,
): { header: string[]; rows: string[][] } {
  // Without a single figure of the paper to compare with, its columns go.
  const paper = r.groups.some((g) => g.paper !== null);
  const header = ["dataset", "noise"];
  for (const m of r.methods) {
    header.push(METHOD_NAMES[m], ...(paper ? ["paper", "Δ"] : []));
  }
  const rows: string[][] = [];
  for (const d of r.datasets) {
    for (const { mode, rate } of r.noise) {
      const row = [datasetLabel(d), noiseLabel(mode, rate)];
      for (const m of r.methods) {
        const gr = r.groups.find((x) =>
          x.dataset === d && x.noiseMode === mode && x.noiseRate === rate &&
          x.method === m
        )!;
        row.push(formatGroup(gr));
        if (paper) {
          row.push(
            gr.paper === null ? "–" : f1(gr.paper),
            gr.diff === null ? "–" : signed(gr.diff),
          );
        }
      }
      rows.push(row);
    }
  }
  return { header, rows };
}

/** The per-cell rows. */
export function cellRows(
  r: SweepResults,
): { header: string[]; rows: string[][] } {
  return {
    header: [
      "cell",
      "state",
      "epochs",
      "last-10 acc %",
      "best %",
      "LPM sel. P/R %",
      "IAM sel. P/R %",
      "wall time",
    ],
    rows: r.cells.map((c) => [
      c.id,
      c.state,
      `${c.epochsDone}/${c.epochs ?? "?"}`,
      c.last10 === null ? "missing" : pct(c.last10),
      c.best === null ? "missing" : pct(c.best),
      formatSelection(c.selection.lpm),
      formatSelection(c.selection.iam),
      c.attempts === 0 ? "–" : formatDuration(c.seconds),
    ]),
  };
}

/** The Markdown report. */
export function renderMarkdown(r: SweepResults): string {
  const t = table1Rows(r);
  const c = cellRows(r);
  const done = r.cells.filter((x) => x.last10 !== null).length;
  return [
    `# Sweep ${r.name}`,
    "",
    ...(r.description ? [r.description, ""] : []),
    `${done} of ${r.cells.length} cells finished. Test accuracy %, mean of the last ${LAST_EPOCHS} epochs, mean ± std over seeds${
      r.groups.some((g) => g.paper !== null)
        ? `; "paper" is the paper's Table 1 (DINOv2 ViT-S/14), Δ = ours - paper`
        : "; the paper has no figures for this grid"
    }.`,
    "",
    ...mdTable(t.header, t.rows),
    "",
    `## Cells`,
    "",
    `Selection precision / recall % of LPM and IAM (CUFIT), means over the last ${LAST_EPOCHS} epochs.`,
    "",
    ...mdTable(c.header, c.rows),
    "",
  ].join("\n");
}

function csvField(v: unknown): string {
  const s = v === null || v === undefined ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function csv(header: string[], rows: unknown[][]): string {
  return [header, ...rows].map((r) => r.map(csvField).join(",")).join("\n") +
    "\n";
}

/** Table 1 as CSV: one line per dataset, noise and method; missing is empty. */
export function renderGroupsCsv(r: SweepResults): string {
  return csv(
    [
      "dataset",
      "noise_mode",
      "noise_rate",
      "method",
      "seeds_done",
      "seeds",
      "mean_acc",
      "std_acc",
      "paper_acc",
      "diff",
    ],
    r.groups.map((g) => [
      g.dataset,
      g.noiseMode,
      g.noiseRate,
      g.method,
      g.values.length,
      g.seeds,
      g.mean,
      g.std,
      g.paper,
      g.diff,
    ]),
  );
}

/** The cells as CSV (fractions as recorded; missing is empty). */
export function renderCellsCsv(r: SweepResults): string {
  return csv(
    [
      "index",
      "cell",
      "dataset",
      "method",
      "noise_mode",
      "noise_rate",
      "seed",
      "state",
      "epochs_done",
      "epochs",
      "last10_acc",
      "best_acc",
      "lpm_precision",
      "lpm_recall",
      "iam_precision",
      "iam_recall",
      "wall_seconds",
      "attempts",
      "exit_code",
    ],
    r.cells.map((c) => [
      c.index,
      c.id,
      c.dataset,
      c.method,
      c.noiseMode,
      c.noiseRate,
      c.seed,
      c.state,
      c.epochsDone,
      c.epochs,
      c.last10,
      c.best,
      c.selection.lpm?.precision,
      c.selection.lpm?.recall,
      c.selection.iam?.precision,
      c.selection.iam?.recall,
      c.seconds,
      c.attempts,
      c.exitCode,
    ]),
  );
}

/** What {@linkcode writeTables} wrote. */
export interface WrittenTables {
  results: SweepResults;
  markdown: string;
  files: string[];
}

/**
 * `deno task table NAME`: reads sweep `name` and writes `table.md`,
 * `table.csv`, `cells.csv`, `table.json` and `table.html` into its folder.
 */
export async function writeTables(name: string): Promise<WrittenTables> {
  const dir = sweepDir(checkSweepName(name));
  const results = await collectResults(dir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Sweep "${name}" not found: no "${join(dir, "sweep.json")}"`,
      );
    }
    throw e;
  });
  const markdown = renderMarkdown(results);
  const files = [
    await writeSweepFile(dir, "table.md", markdown),
    await writeSweepFile(dir, "table.csv", renderGroupsCsv(results)),
    await writeSweepFile(dir, "cells.csv", renderCellsCsv(results)),
    await writeSweepFile(
      dir,
      "table.json",
      JSON.stringify(results, null, 2) + "\n",
    ),
    await writeSweepFile(dir, "table.html", renderTableHtml(results)),
  ];
  return { results, markdown, files };
}
