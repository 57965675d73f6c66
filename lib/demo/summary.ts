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
import type { EpochMetrics } from "../train/metrics.ts";

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
  /** Backend as tfjs names it, `+openblas` when native kernels ran. */
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

/** `summary.json`: the issue's key names, accuracies as fractions. */
export interface DemoSummary {
  noise_rate: number;
  backend: string;
  seconds: number;
  methods: Partial<
    Record<Method, {
      last10_acc: number;
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
      best_acc: m.best?.value ?? 0,
      selection,
    };
  }
  return {
    noise_rate: outcome.noiseRate,
    backend: outcome.backend,
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

/**
 * The results table as plain text: one row per method with last-10 and best
 * test accuracy (%), minutes, and for CUFIT the final selection precision /
 * recall of LPM and IAM.
 */
export function formatTable(outcome: DemoOutcome): string {
  const header = [
    "method",
    "last-10 acc %",
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

/** `42 s`, `3 min 05 s`, `2 h 10 min`. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "-";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) {
    const min = Math.floor(s / 60);
    return `${min} min ${String(Math.round(s - 60 * min)).padStart(2, "0")} s`;
  }
  const h = Math.floor(s / 3600);
  return `${h} h ${
    String(Math.round((s - 3600 * h) / 60)).padStart(2, "0")
  } min`;
}

/**
 * A few sentences on how CUFIT fared against Rein (and the linear probe),
 * with the figures that say why: Rein's peak and final test accuracy, how
 * much of the noisy training labels it fits compared with the share that is
 * clean (more than that share means it memorized flipped labels), and how
 * clean the samples CUFIT's modules selected were.
 */
export function verdict(outcome: DemoOutcome): string {
  const by = (m: Method) => outcome.methods.find((o) => o.method === m);
  const rein = by("rein");
  const cufit = by("cufit");
  const linear = by("linear");
  if (!rein || !cufit) return "";
  const diff = (cufit.last10 - rein.last10) * 100;
  const reinLast = rein.metrics[rein.metrics.length - 1];
  const clean = 1 - outcome.actualNoiseRate;
  const fits = reinLast?.trainAcc ?? 0;
  const sel = cufit.metrics[cufit.metrics.length - 1]?.selection ?? {};
  const parts: string[] = [];
  parts.push(
    diff > 0
      ? `CUFIT's last-10 accuracy beats Rein's by ${diff.toFixed(1)} points.`
      : `CUFIT's last-10 accuracy does not beat Rein's (${
        diff.toFixed(1)
      } points).`,
  );
  parts.push(
    `Rein peaked at ${pct(rein.best?.value)}% and ended at ${
      pct(reinLast?.testAcc)
    }% test accuracy; at the end it fits ${
      pct(fits)
    }% of the noisy training labels, ${
      fits > clean
        ? `more than the ${
          pct(clean)
        }% that are clean: it memorized flipped labels.`
        : `fewer than the ${
          pct(clean)
        }% that are clean: it did not memorize flipped labels outright, but training on them cost it accuracy.`
    }`,
  );
  parts.push(
    `CUFIT's IAM trained on samples whose labels were ${
      pct(sel.lpm?.precision)
    }% clean, its LAM on samples ${pct(sel.iam?.precision)}% clean.`,
  );
  if (linear && linear.last10 > cufit.last10) {
    parts.push(
      `Linear probing scored higher still (${
        pct(linear.last10)
      }%): here adapting the backbone brought no gain over its frozen features, unlike in the paper's Table 1.`,
    );
  }
  if (diff <= 0) {
    parts.push(
      "CUFIT wins where Rein is misled by flipped labels while the linear probe, and hence the selection, stays accurate; a short run, a small adapter or a weak backbone (low linear-probe accuracy) hides that gap.",
    );
  }
  return parts.join(" ");
}
