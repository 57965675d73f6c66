/**
 * The demo's outcome: per method the epoch metrics, the paper's figure (mean
 * test accuracy of the last 10 epochs) and the final confusion matrix; the
 * `summary.json` made from it, and the results table printed at the end.
 *
 * @module
 */
import type { DemoLabelIssues } from "../label_issues/demo_section.ts";
import type { TrainConfig } from "../train/config.ts";
import type { Method } from "../train/learner.ts";
import {
  type EpochMetrics,
  LAST_EPOCHS,
  lastEpochsLabel,
} from "../train/metrics.ts";

/** One method's run. */
export interface MethodOutcome {
  method: Method;
  /** One record per epoch, as `metrics.jsonl` holds them. */
  metrics: EpochMetrics[];
  /** Mean test accuracy of the last 10 epochs (fraction). */
  last10: number;
  /** Best epoch's test accuracy (fraction) and index. */
  best: { epoch: number; value: number } | null;
  /** Final model's confusion matrix on the test set (rows true, columns predicted). */
  confusion: number[][];
  runDir: string;
  seconds: number;
  config: TrainConfig;
}

/** What the demo ran and got. */
export interface DemoOutcome {
  /** The requested noise rate. */
  noiseRate: number;
  /** Share of training labels actually flipped. */
  actualNoiseRate: number;
  /**
   * Backend as tfjs names it, `+openblas` when native kernels ran, `+c` when
   * the C kernels did too.
   */
  backend: string;
  /** Wall-clock seconds of the whole demo. */
  seconds: number;
  dataset: {
    name: string;
    classes: string[];
    train: number;
    test: number;
    /** Generated data (the default demo), not a real dataset. */
    synthetic: boolean;
  };
  /** Backbone weights file. */
  weights: string;
  /** The weights' own description (pre-training recipe), if they carry one. */
  weightsNote: string | null;
  methods: MethodOutcome[];
  /** The "likely mislabeled" section (lib/label_issues/demo_section.ts), when made. */
  labelIssues?: DemoLabelIssues;
}

/** A selecting module's final precision and recall (`null` for 0/0). */
export interface SelectionFigure {
  precision: number | null;
  recall: number | null;
}

/** `summary.json`: what ran (data, noise, epochs, seeds, backend) and what it scored; accuracies as fractions. */
export interface DemoSummary {
  dataset: string;
  /** Generated data (the default demo), not a real dataset. */
  synthetic: boolean;
  noise_rate: number;
  /** Share of training labels actually flipped. */
  actual_noise_rate: number;
  epochs: number;
  /** Seed of shuffling, augmentation and init. */
  seed: number;
  /** Seed of the label noise. */
  noise_seed: number;
  backend: string;
  /** Backbone weights file, as given. */
  weights: string;
  seconds: number;
  methods: Partial<
    Record<Method, {
      /** Mean test accuracy of the last `last_epochs` epochs. */
      last10_acc: number;
      last_epochs: number;
      best_acc: number;
      selection: Record<string, SelectionFigure>;
    }>
  >;
}

/** The `summary.json` object of an outcome. */
export function summarize(outcome: DemoOutcome): DemoSummary {
  const methods: DemoSummary["methods"] = {};
  for (const m of outcome.methods) {
    const last = m.metrics[m.metrics.length - 1];
    const selection: Record<string, SelectionFigure> = {};
    for (const [module, s] of Object.entries(last?.selection ?? {})) {
      selection[module] = { precision: s.precision, recall: s.recall };
    }
    methods[m.method] = {
      last10_acc: m.last10,
      last_epochs: Math.min(LAST_EPOCHS, m.metrics.length),
      best_acc: m.best?.value ?? 0,
      selection,
    };
  }
  const config = outcome.methods[0]?.config;
  return {
    dataset: outcome.dataset.name,
    synthetic: outcome.dataset.synthetic,
    noise_rate: outcome.noiseRate,
    actual_noise_rate: outcome.actualNoiseRate,
    epochs: config?.epochs ?? 0,
    seed: config?.seed ?? 0,
    noise_seed: config?.noise.seed ?? 0,
    backend: outcome.backend,
    weights: outcome.weights,
    seconds: Math.round(outcome.seconds * 10) / 10,
    methods,
  };
}

/** Display names of the methods. */
export const METHOD_LABELS: Record<Method, string> = {
  linear: "Linear probing",
  rein: "Rein",
  cufit: "CUFIT",
};

const pct = (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v)
    ? "-"
    : `${(v * 100).toFixed(1)}`;

/** A fraction as the reports print it, `12.3%`, or `-` when there is none. */
export function formatPercent(v: number | null | undefined): string {
  const text = pct(v);
  return text === "-" ? text : `${text}%`;
}

/**
 * The results table as plain text: one row per method with last-10 and best
 * test accuracy (%), minutes, and for CUFIT the final selection precision /
 * recall of LPM and IAM.
 */
export function formatTable(outcome: DemoOutcome): string {
  const epochs = Math.max(0, ...outcome.methods.map((m) => m.metrics.length));
  const header = [
    "method",
    `${lastEpochsLabel(epochs)} acc %`,
    "best acc %",
    "LPM sel. P/R %",
    "IAM sel. P/R %",
    "time",
  ];
  const rows = outcome.methods.map((m) => {
    const sel = m.metrics[m.metrics.length - 1]?.selection ?? {};
    const pr = (k: string) =>
      sel[k] ? `${pct(sel[k].precision)} / ${pct(sel[k].recall)}` : "-";
    return [
      METHOD_LABELS[m.method],
      pct(m.last10),
      pct(m.best?.value),
      pr("lpm"),
      pr("iam"),
      formatSeconds(m.seconds),
    ];
  });
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => r[i].length))
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))
      .join("  ");
  const title = `${outcome.dataset.name}${
    outcome.dataset.synthetic ? " (synthetic)" : ""
  }, ${Math.round(outcome.noiseRate * 100)}% symmetric label noise (${
    (outcome.actualNoiseRate * 100).toFixed(1)
  }% flipped), ${outcome.backend}, ${formatSeconds(outcome.seconds)} in all`;
  return [
    title,
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
  ].join("\n");
}

/**
 * The backbone file's `pretext` metadata as the report's phrase: its task,
 * classes, images and epochs when it is the JSON record the pre-training
 * writes, the text itself otherwise (never raw JSON).
 */
export function pretextNote(pretext: string): string {
  let p: Record<string, unknown>;
  try {
    p = JSON.parse(pretext);
  } catch {
    return `pre-trained on ${pretext}`;
  }
  if (typeof p !== "object" || p === null || typeof p.task !== "string") {
    return `pre-trained on ${pretext}`;
  }
  const n = (k: string) => typeof p[k] === "number" ? p[k] as number : null;
  const parts: string[] = [];
  if (n("classes") !== null && n("per_class") !== null) {
    parts.push(
      `${n("classes")} classes x ${n("per_class")} generated images`,
    );
  }
  if (n("image_size") !== null) parts.push(`${n("image_size")} px`);
  if (n("epochs") !== null) parts.push(`${n("epochs")} epochs`);
  if (n("seed") !== null) parts.push(`seed ${n("seed")}`);
  return `pre-trained on ${p.task}${
    parts.length > 0 ? ` (${parts.join(", ")})` : ""
  }`;
}

/** `42 s`, `3 min 05 s`, `2 h 10 min`. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "-";
  // Round once, before splitting, so that 119.6 s is "2 min 00 s", not "1 min 60 s".
  const total = Math.round(s);
  if (total < 60) return `${total} s`;
  if (total < 3600) {
    const min = Math.floor(total / 60);
    return `${min} min ${String(total % 60).padStart(2, "0")} s`;
  }
  const minutes = Math.round(s / 60);
  return `${Math.floor(minutes / 60)} h ${
    String(minutes % 60).padStart(2, "0")
  } min`;
}

/** A fraction as the percentage the report prints, for comparisons that match it. */
const shownPct = (v: number) => Math.round(v * 1000) / 10;

/** "A beats B by 2.3 points", "A and B tie", from two fractions. */
function compare(a: string, x: number, b: string, y: number): string {
  const d = Math.round((shownPct(x) - shownPct(y)) * 10) / 10;
  if (d === 0) return `${a} and ${b} tie at ${pct(x)}%`;
  return d > 0
    ? `${a} beats ${b} by ${d.toFixed(1)} points (${pct(x)}% vs ${pct(y)}%)`
    : `${b} beats ${a} by ${(-d).toFixed(1)} points (${pct(y)}% vs ${pct(x)}%)`;
}

/**
 * Sentences on how the methods fared, each built from the figures it states
 * (ties and losses included): the ranking by last-N test accuracy, CUFIT
 * against Rein and against linear probing, whether Rein fit more of the
 * noisy training labels than are clean (memorization), and how clean the
 * samples CUFIT's modules selected were compared with the labels overall.
 */
export function verdict(outcome: DemoOutcome): string {
  const by = (m: Method) => outcome.methods.find((o) => o.method === m);
  const rein = by("rein");
  const cufit = by("cufit");
  const linear = by("linear");
  const epochs = Math.max(0, ...outcome.methods.map((m) => m.metrics.length));
  const figure = `${lastEpochsLabel(epochs)} test accuracy`;
  const parts: string[] = [];

  // 1. The ranking; equal printed figures share a place.
  const ranked = [...outcome.methods].sort((a, b) => b.last10 - a.last10);
  if (ranked.length > 1) {
    const words = ranked.map((m, i) =>
      `${
        i === 0
          ? ""
          : shownPct(m.last10) === shownPct(ranked[i - 1].last10)
          ? " = "
          : " > "
      }${METHOD_LABELS[m.method]} ${pct(m.last10)}%`
    ).join("");
    parts.push(`By ${figure}: ${words}.`);
  }
  // 2. CUFIT against each baseline.
  if (cufit && rein) {
    parts.push(`${compare("CUFIT", cufit.last10, "Rein", rein.last10)}.`);
  }
  if (cufit && linear) {
    const c = shownPct(cufit.last10);
    const l = shownPct(linear.last10);
    parts.push(
      `${compare("CUFIT", cufit.last10, "Linear probing", linear.last10)}${
        l > c
          ? ": here adapting the backbone brought no gain over its frozen features, unlike in the paper's Table 1"
          : ""
      }.`,
    );
  }
  if (
    cufit && ranked.length > 2 &&
    shownPct(cufit.last10) < Math.min(
        ...ranked.filter((m) => m !== cufit).map((m) => shownPct(m.last10)),
      )
  ) {
    parts.push(
      "CUFIT scored lowest of the three here: a short run, a small adapter or a weak backbone (low linear-probe accuracy) can hide its advantage.",
    );
  }
  // 3. Did Rein memorize flipped labels?
  const clean = 1 - outcome.actualNoiseRate;
  const reinLast = rein?.metrics[rein.metrics.length - 1];
  if (reinLast) {
    const fits = reinLast.trainAcc;
    const rel = shownPct(fits) > shownPct(clean)
      ? `more than the ${
        pct(clean)
      }% that are clean: it memorized flipped labels`
      : shownPct(fits) === shownPct(clean)
      ? `as many as are clean (${pct(clean)}%)`
      : `fewer than the ${
        pct(clean)
      }% that are clean: it did not memorize flipped labels outright`;
    parts.push(
      `Rein peaked at ${pct(rein!.best?.value)}% and ended at ${
        pct(reinLast.testAcc)
      }% test accuracy; at the end it fits ${
        pct(fits)
      }% of the noisy training labels, ${rel}.`,
    );
  }
  // 4. How clean CUFIT's selections were, against the labels as a whole.
  const sel = cufit?.metrics[cufit.metrics.length - 1]?.selection ?? {};
  const described: string[] = [];
  for (const [module, trains] of [["lpm", "IAM"], ["iam", "LAM"]] as const) {
    const s = sel[module];
    if (!s) continue;
    if (s.precision === null) {
      described.push(
        `${module.toUpperCase()} selected no samples for ${trains}`,
      );
      continue;
    }
    const p = shownPct(s.precision);
    const c = shownPct(clean);
    described.push(
      `${trains} trained on samples ${pct(s.precision)}% clean (${
        p > c ? "cleaner than" : p === c ? "as clean as" : "less clean than"
      } the ${pct(clean)}% of all labels)`,
    );
  }
  if (described.length > 0) {
    parts.push(`In CUFIT's last epoch, ${described.join("; ")}.`);
  }
  return parts.join(" ");
}
