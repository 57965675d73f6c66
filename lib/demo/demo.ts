/**
 * The demo: linear probing, Rein and CUFIT trained on the same noisy labels,
 * then a report. Out of the box it runs on a generated dataset with a small
 * backbone this project pre-trained itself (`data/demo/backbone.safetensors`,
 * see lib/demo/pretrain.ts), in a few minutes on a CPU; given a real dataset
 * and DINOv2 weights it runs the paper's comparison with the same code.
 *
 * The three runs are ordinary training runs (lib/train/trainer.ts) whose
 * folders go to `<out>/runs/<method>/`; the demo adds the final confusion
 * matrices (from each run's `last` checkpoint), `summary.json`,
 * `report.html` and PNG plots in `<out>`.
 *
 * @module
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { type BackendName, initBackend } from "../backend/backend.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";
import {
  loadDatasetConfig,
  resolveConfig,
  type TrainConfig,
} from "../train/config.ts";
import {
  noisyTrainLabels,
  openDatasets,
  resolveWeightsFile,
} from "../train/data.ts";
import { Learner, type Method } from "../train/learner.ts";
import {
  evaluateLearner,
  initGroupsFromFile,
  makeLoaders,
  train,
} from "../train/trainer.ts";
import { Dinov2 } from "../models/dinov2.ts";
import { loadDinov2Weights } from "../weights/dinov2_weights.ts";
import { demoLabelIssues } from "../label_issues/demo_section.ts";
import { estimateRuns, type MethodEstimate } from "./estimate.ts";
import { REPORT_ORDER, writeReport } from "./report.ts";
import {
  type DemoOutcome,
  type DemoSummary,
  formatSeconds,
  formatTable,
  type MethodOutcome,
  summarize,
} from "./summary.ts";

/** The dataset config the demo uses by default (conf/demo.json). */
export const DEMO_DATA = "demo";

/** The committed demo backbone, made by `deno task pretrain:demo`. */
export const DEMO_WEIGHTS = fileURLToPath(
  new URL("../../data/demo/backbone.safetensors", import.meta.url),
);

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** Output folder. @default "runs/demo" */
  out?: string;
  /** Symmetric label-noise rate of the training labels. @default 0.4 */
  noise?: number;
  /** Dataset config name or file (`conf/<name>.json`). @default "demo" */
  data?: string;
  /**
   * Backbone weights file.
   * @default data/demo/backbone.safetensors for the demo data, else the
   * dataset's default DINOv2 ViT-S/14 file in data/weights
   */
  weights?: string;
  /** Methods to run, in this order. @default ["linear", "rein", "cufit"] */
  methods?: Method[];
  /** Epochs instead of the dataset config's. @default the config's `epoch` */
  epochs?: number;
  /** Stop each epoch after this many batches (smoke runs). @default null */
  maxBatches?: number | null;
  /** Compute backend. @default "auto" */
  backend?: BackendName;
  /** Run even when the estimate exceeds `confirmAbove`. @default false */
  yes?: boolean;
  /** Seconds above which the estimate asks for `yes`. @default 900 */
  confirmAbove?: number;
  /** Write PNG copies of the plots. @default true */
  png?: boolean;
  /** Show in-epoch progress bars on stderr. @default Deno.stderr.isTerminal() */
  progress?: boolean;
  /** Console lines. @default console.log */
  log?: (line: string) => void;
  /** Command line to record in each run's config.json. @default Deno.args */
  argv?: string[];
}

/** The default of every {@linkcode DemoOptions} setting. */
export const defaults = {
  out: "runs/demo",
  noise: 0.4,
  data: DEMO_DATA,
  methods: ["linear", "rein", "cufit"] as Method[],
  backend: "auto" as BackendName,
  yes: false,
  confirmAbove: 900,
  png: true,
};

/** Raised when a run would take longer than allowed without `yes`. */
export class ConfirmationNeededError extends Error {
  override name = "ConfirmationNeededError";
  readonly estimate: { methods: MethodEstimate[]; seconds: number };
  constructor(
    message: string,
    estimate: { methods: MethodEstimate[]; seconds: number },
  ) {
    super(message);
    this.estimate = estimate;
  }
}

/** What {@linkcode runDemo} produced. */
export interface DemoResult {
  outcome: DemoOutcome;
  summary: DemoSummary;
  /** The results table, as printed. */
  table: string;
  /** Files written in the output folder (run folders not listed). */
  files: string[];
}

/** A path shown relative to the working directory when it lies under it. */
function shown(path: string): string {
  const rel = relative(Deno.cwd(), path);
  return rel && !rel.startsWith("..") ? rel : path;
}

/** The resolved configs of the demo's runs (one per method). */
export async function demoConfigs(
  options: DemoOptions = {},
): Promise<TrainConfig[]> {
  const o = { ...defaults, ...options };
  for (const m of o.methods) {
    if (!REPORT_ORDER.includes(m)) {
      throw new TypeError(
        `Demo option "methods" has "${m}": expected ${REPORT_ORDER.join(", ")}`,
      );
    }
  }
  if (o.methods.length === 0) {
    throw new TypeError(`Demo option "methods" must name at least one method`);
  }
  const dataset = await loadDatasetConfig(o.data);
  const weights = o.weights ??
    (dataset.name === DEMO_DATA ? shown(DEMO_WEIGHTS) : undefined);
  return o.methods.map((method) => {
    const config = resolveConfig(method, dataset, {
      noise: o.noise,
      save: method,
      backend: o.backend,
      ...(weights === undefined ? {} : { weights }),
      ...(o.epochs === undefined ? {} : { epochs: o.epochs }),
      ...(o.maxBatches == null ? {} : { maxBatches: o.maxBatches }),
    });
    // The runs live inside the demo's folder, whatever the dataset file says.
    return { ...config, savePath: join(o.out, "runs") };
  });
}

/** Removes a previous demo's run folder (one holding a config.json). */
async function clearOldRun(dir: string, log: (line: string) => void) {
  try {
    await Deno.stat(join(dir, "config.json"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  log(`replacing the earlier run in ${dir}`);
  await Deno.remove(dir, { recursive: true });
}

/** The final model's confusion matrix, from the run's `last` checkpoint. */
async function finalConfusion(config: TrainConfig, runDir: string) {
  const ckpt = await loadCheckpoint(runDir, "last");
  const weights = await loadDinov2Weights(resolveWeightsFile(config));
  const backbone = new Dinov2(weights.variant, weights.params);
  const groups = initGroupsFromFile(ckpt.params, config.method, runDir);
  const learner = new Learner(config.method, backbone, groups);
  try {
    const { train, test } = await openDatasets(config);
    const { testLoader } = makeLoaders(
      config,
      train,
      test,
      noisyTrainLabels(config, train),
    );
    const ev = await evaluateLearner(learner, testLoader, {
      withConfusion: true,
    });
    return ev.confusion!;
  } finally {
    learner.dispose();
    backbone.dispose();
  }
}

/**
 * Trains every method on the same noisy labels and writes `summary.json`,
 * `report.html` and the plot PNGs into `out`. Before training it measures a
 * few steps; if the whole run would exceed `confirmAbove` seconds and `yes`
 * is not set, it throws {@linkcode ConfirmationNeededError} with the estimate.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const o = { ...defaults, ...options };
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  if (!(o.noise >= 0 && o.noise <= 1)) {
    throw new RangeError(
      `Demo option "noise" must be between 0 and 1, got ${o.noise}`,
    );
  }
  const configs = await demoConfigs(o);
  const backend = await initBackend(o.backend, { log });
  const backendName = backend.tfName +
    (backend.nativeKernels.length > 0 ? "+openblas" : "");

  // 1. What the data is, and the noisy labels every method will share.
  const { train: trainSet, test: testSet } = await openDatasets(configs[0]);
  const noisy = noisyTrainLabels(configs[0], trainSet);
  const synthetic = configs[0].dataset.kind === "synthetic";
  log(
    `demo: ${configs[0].dataset.name}${
      synthetic ? " (synthetic, generated)" : ""
    }, ${trainSet.length} train / ${testSet.length} test images, ${trainSet.numClasses} classes; ` +
      `${o.noise * 100}% label noise (${
        (noisy.actualRate * 100).toFixed(1)
      }% flipped); weights ${resolveWeightsFile(configs[0])}; ${
        configs[0].epochs
      } epochs`,
  );

  // 2. Measure a few steps; a long run needs the caller's consent.
  const estimate = await estimateRuns(configs);
  const per = estimate.methods.map((m) =>
    `${m.method} ${formatSeconds(m.seconds)} (${
      (m.stepSeconds * 1000).toFixed(0)
    } ms/step x ${m.steps})`
  ).join(", ");
  log(`estimate: ${formatSeconds(estimate.seconds)} (${per})`);
  if (estimate.seconds > o.confirmAbove && !o.yes) {
    throw new ConfirmationNeededError(
      `This run would take about ${
        formatSeconds(estimate.seconds)
      } on this machine (backend ${backendName}); pass --yes to run it anyway, or lower --epochs`,
      estimate,
    );
  }

  // 3. The runs, one after another, on the same noisy labels (same noise seed).
  const outcomes: MethodOutcome[] = [];
  for (const config of configs) {
    const runDir = join(config.savePath, config.saveName);
    await clearOldRun(runDir, log);
    log(`--- ${config.method} ---`);
    const result = await train(config, {
      backend,
      log: (line) => log(`[${config.method}] ${line}`),
      progress: o.progress ?? Deno.stderr.isTerminal(),
      argv: o.argv ?? Deno.args,
    });
    const confusion = await finalConfusion(config, result.runDir);
    outcomes.push({
      method: config.method,
      metrics: result.metrics,
      last10: result.last10,
      best: result.best,
      confusion,
      runDir: result.runDir,
      seconds: result.seconds,
      config,
    });
  }

  // 4. Report.
  const weightsFile = resolveWeightsFile(configs[0]);
  const meta = (await loadDinov2Weights(weightsFile)).metadata;
  const outcome: DemoOutcome = {
    noiseRate: o.noise,
    actualNoiseRate: noisy.actualRate,
    backend: backendName,
    seconds: (performance.now() - started) / 1000,
    dataset: {
      name: configs[0].dataset.name,
      classes: trainSet.classes,
      train: trainSet.length,
      test: testSet.length,
      synthetic,
    },
    weights: weightsFile,
    weightsNote: meta.pretext ? `pre-trained on ${meta.pretext}` : null,
    methods: outcomes,
  };
  // The training images the run most strongly rejects (CUFIT's run if there is one).
  const issuesRun = outcomes.find((m) => m.method === "cufit") ?? outcomes[0];
  outcome.labelIssues = await demoLabelIssues(issuesRun.runDir);
  log(`likely mislabeled (${issuesRun.method}): ${outcome.labelIssues.line}`);
  const files = await writeReport(o.out, outcome, { png: o.png });
  // The report's own writing time belongs to the total as well.
  outcome.seconds = (performance.now() - started) / 1000;
  const summary = summarize(outcome);
  files.push(...await writeReport(o.out, outcome, { png: false }));
  const table = formatTable(outcome);
  return { outcome, summary, table, files: [...new Set(files)] };
}
