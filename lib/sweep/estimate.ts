/**
 * A sweep's duration before anything ran (`sweep --estimate`): the training
 * step of each method is timed with `deno task bench` (a DINOv2 of the grid's
 * `netsize` with random weights, at the crop and batch size the cells use, on
 * this machine and backend), then scaled by each cell's images and epochs.
 * No dataset or weights are needed, so a whole Table 1 can be priced on the
 * machine that would run it.
 *
 * A cell's seconds = epochs x (train images / training images per second +
 * test images / (3 x training images per second)): evaluation runs the
 * forward pass only, about a third of a training step's work. Image counts
 * are the paper's splits for its four datasets and `train_per_class x
 * classes` for generated data; cells of other datasets are left out, and
 * said so. Once cells run, the ETA of the sweep's progress lines, from
 * measured epochs, replaces this figure.
 *
 * @module
 */
import { loadDatasetConfig } from "../train/config.ts";
import type { Cell } from "./grid.ts";
import { formatDuration } from "./local.ts";
import type { SweepRecord } from "./sweep_dir.ts";

/** Train and test images of the paper's datasets. */
export const DATASET_SIZES: Record<string, { train: number; test: number }> = {
  ham10000: { train: 10015, test: 1512 },
  aptos: { train: 2930, test: 366 },
  bloodmnist: { train: 11959, test: 3421 },
  organcmnist: { train: 12975, test: 8216 },
};

// bench's model-size options for each DINOv2 size.
const NET_DIMS: Record<string, string[]> = {
  s: ["--dim", "384", "--depth", "12", "--heads", "6", "--mlp", "1536"],
  b: ["--dim", "768", "--depth", "12", "--heads", "12", "--mlp", "3072"],
  l: ["--dim", "1024", "--depth", "24", "--heads", "16", "--mlp", "4096"],
};

/** Options of {@linkcode estimateSweep}. */
export interface EstimateSweepOptions {
  /** Threads of each cell. */
  threads: number;
  /** Cells at once. */
  jobs: number;
  /** Timed steps per method. @default 2 */
  steps?: number;
  /** Only these cells (those left to run). @default every cell */
  cells?: Cell[];
  /** Dataset file of a dataset. */
  datasetFile: (dataset: string) => string;
  /** Output lines. @default console.log */
  log?: (line: string) => void;
}

/** What {@linkcode estimateSweep} found. */
export interface SweepEstimate {
  /** Training images per second by method. */
  imagesPerSecond: Record<string, number>;
  /** Seconds of compute, one cell at a time. */
  seconds: number;
  /** Seconds with `jobs` cells at once. */
  wallSeconds: number;
  /** Cells left out (unknown dataset size). */
  skipped: string[];
}

/** Benchmarks each method's step and prices the cells; logs the result. */
export async function estimateSweep(
  record: SweepRecord,
  options: EstimateSweepOptions,
): Promise<SweepEstimate> {
  const log = options.log ?? ((l: string) => console.log(l));
  const cells = options.cells ?? record.cells;
  const o = record.grid.overrides;
  const netsize = o.netsize ?? "s";
  const sizes = new Map<string, { train: number; test: number } | null>();
  let crop = 224;
  let batch = 32;
  for (const d of record.grid.datasets) {
    const conf = loadDatasetConfig(options.datasetFile(d));
    crop = conf.crop ?? 224;
    batch = o.batchSize ?? conf.batchSize;
    const s = conf.synthetic;
    sizes.set(
      d,
      DATASET_SIZES[d] ??
        (s
          ? {
            train: s.trainPerClass * conf.numClasses,
            test: s.testPerClass * conf.numClasses,
          }
          : null),
    );
  }
  const imagesPerSecond: Record<string, number> = {};
  for (const method of record.grid.methods) {
    const args = [
      "task",
      "-q",
      "bench",
      "--method",
      method,
      "--img",
      String(crop),
      "--batch",
      String(batch),
      "--steps",
      String(options.steps ?? 2),
      "--threads",
      String(options.threads),
      "--json",
      ...(o.backend ? ["--backend", o.backend] : []),
      ...NET_DIMS[netsize],
    ];
    log(`estimate: timing a ${method} step (deno ${args.join(" ")})`);
    const out = await new Deno.Command("deno", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1);
    let ips: unknown;
    try {
      ips = JSON.parse(text ?? "").images_per_s;
    } catch {
      ips = null;
    }
    if (!out.success || typeof ips !== "number" || !(ips > 0)) {
      throw new Error(
        `deno task bench --method ${method} failed: ${
          new TextDecoder().decode(out.stderr).trim().split("\n").at(-1)
        }`,
      );
    }
    imagesPerSecond[method] = ips;
  }
  let seconds = 0;
  const skipped: string[] = [];
  for (const cell of cells) {
    const size = sizes.get(cell.dataset);
    if (!size) {
      skipped.push(cell.id);
      continue;
    }
    const i = cell.args.indexOf("--epochs");
    const epochs = i >= 0
      ? Number(cell.args[i + 1])
      : loadDatasetConfig(options.datasetFile(cell.dataset)).epochs;
    const m = cell.args.indexOf("--max-batches");
    const train = m >= 0
      ? Math.min(size.train, Number(cell.args[m + 1]) * batch)
      : size.train;
    const ips = imagesPerSecond[cell.method];
    seconds += epochs * (train / ips + size.test / (3 * ips));
  }
  const wallSeconds = seconds / options.jobs;
  if (o.weights && !/dinov2_vit[sbl]14/.test(o.weights)) {
    log(
      `estimate: the grid's weights ("${o.weights}") are not a DINOv2 ViT-S/B/L release; the figure below is for a ViT-${netsize.toUpperCase()}/14`,
    );
  }
  log(
    `estimate: ${cells.length - skipped.length} cells, ${
      Object.entries(imagesPerSecond).map(([m, v]) => `${m} ${v} img/s`).join(
        ", ",
      )
    } (ViT-${netsize.toUpperCase()}/14, ${crop} px, batch ${batch}, ${options.threads} thread${
      options.threads === 1 ? "" : "s"
    }): ${formatDuration(seconds)} of compute, ${
      formatDuration(wallSeconds)
    } with ${options.jobs} at once${
      skipped.length ? `; ${skipped.length} cells of unknown size left out` : ""
    }`,
  );
  return { imagesPerSecond, seconds, wallSeconds, skipped };
}
