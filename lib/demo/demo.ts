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
import { basename, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import {
  backendLabel,
  type BackendName,
  initBackend,
} from "../backend/backend.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";
import {
  loadDatasetConfig,
  resolveConfig,
  scheduleWarning,
  type TrainConfig,
} from "../train/config.ts";
import { lastEpochsLabel } from "../train/metrics.ts";
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
  METHOD_LABELS,
  type MethodOutcome,
  pretextNote,
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
  /** Output folder. @default {@linkcode defaultOut} of `data` and `noise` */
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
  /**
   * Replace a report in `out` made with other data or another noise rate.
   * @default false
   */
  force?: boolean;
  /** Continue the runs already in `out` from their last checkpoints. @default false */
  resume?: boolean;
  /** Skip unreadable images (counted and reported). @default false */
  skipBad?: boolean;
  /**
   * Called with each method's run folder when it starts (the Ctrl-C handler
   * names the last epoch recorded there).
   */
  onRunStart?: (method: Method, runDir: string) => void;
}

/**
 * The demo's default output folder: `runs/<data>-noise<percent>`, so runs
 * with other data or another rate never replace each other's report
 * (`runs/demo-noise40` for the defaults).
 */
export function defaultOut(
  data: string = DEMO_DATA,
  noise: number = defaults.noise,
): string {
  const base = basename(data).replace(/\.json$/, "").replace(
    /[^A-Za-z0-9_.-]/g,
    "_",
  );
  const pct = Number((noise * 100).toFixed(1));
  return `runs/${base}-noise${pct}`;
}

/** The default of every {@linkcode DemoOptions} setting (`out`: {@linkcode defaultOut}). */
export const defaults = {
  noise: 0.4,
  data: DEMO_DATA,
  methods: ["linear", "rein", "cufit"] as Method[],
  backend: "auto" as BackendName,
  yes: false,
  confirmAbove: 900,
  png: true,
  force: false,
  resume: false,
  skipBad: false,
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
  /** The output folder. */
  out: string;
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
  const out = options.out ?? defaultOut(o.data, o.noise);
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
  return o.methods.map((method) =>
    // The runs live inside the demo's folder, whatever the dataset file says.
    resolveConfig(method, dataset, {
      noise: o.noise,
      save: method,
      savePath: join(out, "runs"),
      backend: o.backend,
      ...(weights === undefined ? {} : { weights }),
      ...(o.epochs === undefined ? {} : { epochs: o.epochs }),
      ...(o.maxBatches == null ? {} : { maxBatches: o.maxBatches }),
      ...(o.skipBad ? { skipBad: true } : {}),
      ...(o.resume ? { resume: true } : {}),
    })
  );
}

/**
 * The `train:<method>` arguments that resolve to `config`: what each demo
 * run records as its argv, so `deno task rerun` repeats it exactly.
 */
export function trainArgvOf(config: TrainConfig, data: string): string[] {
  return [
    "-d",
    data,
    "-n",
    String(config.noise.rate),
    "-s",
    config.saveName,
    "--save-path",
    config.savePath,
    ...(config.weights === null ? [] : ["--weights", config.weights]),
    "--epochs",
    String(config.epochs),
    "--seed",
    String(config.seed),
    "--backend",
    config.backend,
    ...(config.maxBatches === null
      ? []
      : ["--max-batches", String(config.maxBatches)]),
    ...(config.skipBad ? ["--skip-bad"] : []),
  ];
}

/**
 * Makes `out` ready for a new demo: a report there made with other data or
 * another noise rate is refused unless `force`; the earlier runs of the same
 * settings are removed (kept with `resume`).
 */
async function prepareOut(
  out: string,
  configs: TrainConfig[],
  o: { force: boolean; resume: boolean },
  log: (line: string) => void,
): Promise<void> {
  let previous: Partial<DemoSummary> | null = null;
  try {
    previous = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const { dataset, noise } = configs[0];
  if (
    previous !== null && !o.force &&
    (previous.dataset !== dataset.name || previous.noise_rate !== noise.rate)
  ) {
    throw new Error(
      `"${out}" holds a demo of ${previous.dataset ?? "other data"} at noise ${
        previous.noise_rate ?? "?"
      }, not ${dataset.name} at ${noise.rate}: pass --force to replace it, or choose another --out`,
    );
  }
  if (o.resume) return;
  for (const config of configs) {
    const dir = join(config.savePath, config.saveName);
    try {
      await Deno.stat(join(dir, "config.json"));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      throw e;
    }
    log(`replacing the earlier run in ${dir}`);
    await Deno.remove(dir, { recursive: true });
  }
}

/** Whether a run folder holds a run (`config.json`). */
async function holdsRun(dir: string): Promise<boolean> {
  try {
    await Deno.stat(join(dir, "config.json"));
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * One live line per method: rewritten in place on a terminal, printed once
 * when the method ends otherwise. The full per-epoch log goes to
 * `<run folder>/train.log`.
 */
class LiveLine {
  #text = "";
  constructor(
    readonly terminal: boolean,
    readonly log: (line: string) => void,
  ) {}
  update(text: string) {
    this.#text = text;
    if (!this.terminal) return;
    let cols = 0;
    try {
      cols = Deno.stderr.isTerminal() ? Deno.consoleSize().columns : 0;
    } catch {
      // No size known: print the whole line.
    }
    const shown = cols >= 20 ? text.slice(0, cols - 1) : text;
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${shown}`));
  }
  end() {
    if (this.terminal) {
      Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));
    }
    this.log(this.#text);
  }
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
  const out = options.out ?? defaultOut(o.data, o.noise);
  const configs = await demoConfigs({ ...o, out });
  const backend = await initBackend(o.backend, { log });
  const backendName = backendLabel(backend);

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
      } epochs; writing ${out}`,
  );
  const warning = scheduleWarning(configs[0]);
  if (warning !== null) log(warning);

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
  await prepareOut(out, configs, o, log);

  // 3. The runs, one after another, on the same noisy labels (same noise seed).
  const data = o.data;
  const outcomes: MethodOutcome[] = [];
  const terminal = o.progress ?? Deno.stderr.isTerminal();
  for (const planned of configs) {
    const runDir = join(planned.savePath, planned.saveName);
    // --resume continues the runs that exist; the others start fresh.
    const config = { ...planned, resume: o.resume && await holdsRun(runDir) };
    options.onRunStart?.(config.method, runDir);
    const live = new LiveLine(terminal, log);
    const label = METHOD_LABELS[config.method].padEnd(14);
    live.update(`${label} starting`);
    await Deno.mkdir(runDir, { recursive: true });
    const logFile = await Deno.open(join(runDir, "train.log"), {
      append: true,
      create: true,
    });
    const encoder = new TextEncoder();
    let result;
    try {
      result = await train(config, {
        backend,
        log: (line) => logFile.writeSync(encoder.encode(line + "\n")),
        progress: false,
        argv: trainArgvOf(config, data),
        onEpoch: (m) =>
          live.update(
            `${label} epoch ${m.epoch + 1}/${config.epochs}  test acc ${
              (m.testAcc * 100).toFixed(1)
            }%  ${formatSeconds((performance.now() - started) / 1000)}`,
          ),
      });
    } finally {
      logFile.close();
    }
    live.update(
      `${label} ${config.epochs} epochs, ${
        lastEpochsLabel(result.metrics.length)
      } test acc ${(result.last10 * 100).toFixed(1)}%, ${
        formatSeconds(result.seconds)
      } (log: ${join(runDir, "train.log")})`,
    );
    live.end();
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
    weights: shown(weightsFile),
    weightsNote: meta.pretext ? pretextNote(meta.pretext) : null,
    methods: outcomes,
  };
  // The training images the run most strongly rejects (CUFIT's run if there is one).
  const issuesRun = outcomes.find((m) => m.method === "cufit") ?? outcomes[0];
  outcome.labelIssues = await demoLabelIssues(issuesRun.runDir);
  log(`likely mislabeled (${issuesRun.method}): ${outcome.labelIssues.line}`);
  const files = await writeReport(out, outcome, { png: o.png });
  // The report's own writing time belongs to the total as well.
  outcome.seconds = (performance.now() - started) / 1000;
  const summary = summarize(outcome);
  files.push(...await writeReport(out, outcome, { png: false }));
  const table = formatTable(outcome);
  return { outcome, summary, table, files: [...new Set(files)], out };
}
