/**
 * Label issues of a finished run: the ranking of lib/label_issues/score.ts,
 * the confident-learning baseline on the linear probe's probabilities (the
 * one module's for Rein), and, since every run here injects its noise,
 * precision, recall and F1 of both flagged sets against the injected-noise
 * mask, with precision at K.
 *
 * Everything comes from the run folder: `config.json` (dataset and noise, so
 * the noisy labels are regenerated and checked against the recorded digest),
 * the `last` checkpoint's selection history, and
 * `train_probabilities.safetensors`. No model runs.
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import type { Dataset } from "../data/dataset.ts";
import { sha256Labels } from "../io/digest.ts";
import { loadCheckpoint } from "../train/checkpoint.ts";
import type { TrainConfig } from "../train/config.ts";
import { noisyTrainLabels, openDatasets } from "../train/data.ts";
import type { ModuleName } from "../train/learner.ts";
import { readRunRecord } from "../train/run_dir.ts";
import { confidentLearning } from "./confident_learning.ts";
import { RECORDED_MODULES, SelectionHistory } from "./history.ts";
import {
  FINAL_MODULES,
  type FlagStats,
  flagStats,
  type LabelIssueRanking,
  rankLabelIssues,
  type ScoreVariant,
} from "./score.ts";
import { readTrainProbabilities } from "./train_probabilities.ts";

/** Options of {@linkcode findLabelIssues}. */
export interface FindLabelIssuesOptions {
  /**
   * K of precision at K, and how many the HTML shows; at most the number of
   * training samples. @default 50
   */
  top?: number;
  /** Score variant. @default "curriculum" */
  variant?: ScoreVariant;
}

/** The confident-learning baseline's outcome. */
export interface BaselineOutcome {
  /** Whose probabilities it used. */
  module: ModuleName;
  /** 1 per flagged sample (off the confident joint's diagonal). */
  issues: Uint8Array;
  /** Its ranking (dataset indices, lowest self-confidence first). */
  ranking: Int32Array;
  flagged: number;
  confidentJoint: number[][];
  thresholds: number[];
  /** Against the injected noise (null when the run injected none). */
  stats: FlagStats | null;
}

/** What {@linkcode findLabelIssues} returns. */
export interface LabelIssuesResult {
  runDir: string;
  config: TrainConfig;
  /** The training set (for file names and thumbnails). */
  dataset: Dataset;
  ranking: LabelIssueRanking;
  /** Clean labels and the injected-noise mask, when the run injected noise. */
  truth: { clean: Int32Array; isNoisy: Uint8Array; actualRate: number } | null;
  /** The ranking against the injected noise (null when none was injected). */
  stats: FlagStats | null;
  baseline: BaselineOutcome;
  /** K of precision at K. */
  top: number;
  /** Epochs in the selection history. */
  epochs: number;
}

/** The run folder's own default K. */
export const defaults = { top: 50, variant: "curriculum" as ScoreVariant };

/** Ranks a finished run's training samples by how strongly the run rejects their label. */
export async function findLabelIssues(
  runDir: string,
  options: FindLabelIssuesOptions = {},
): Promise<LabelIssuesResult> {
  const top = options.top ?? defaults.top;
  if (!Number.isInteger(top) || top < 1) {
    throw new RangeError(`--top must be a positive integer, got ${top}`);
  }
  // 1. The run's config, dataset and (regenerated) noisy labels.
  const record = await readRunRecord(runDir).catch((e) => {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`"${runDir}" is not a run folder: it has no config.json`);
    }
    throw e;
  });
  const resolve = (p: string) => (isAbsolute(p) ? p : join(record.cwd, p));
  const config: TrainConfig = {
    ...record.config,
    dataset: {
      ...record.config.dataset,
      root: resolve(record.config.dataset.root),
    },
  };
  const { train } = await openDatasets(config);
  const noisy = noisyTrainLabels(config, train);
  const recorded = record.digests.noisyLabels;
  if (recorded && recorded !== sha256Labels(noisy.noisy)) {
    throw new Error(
      `${
        join(runDir, "config.json")
      }: the noisy labels regenerated from the recorded noise settings do not match its "noisyLabels" digest (the dataset changed?)`,
    );
  }
  // 2. What training kept: the selection history and the final probabilities.
  const ckpt = await loadCheckpoint(runDir, "last");
  const saved = (ckpt.metrics as Record<string, unknown> | null)
    ?.selectionHistory;
  if (saved === undefined) {
    throw new Error(
      `${
        join(runDir, "last.safetensors")
      } holds no selection history: the run was trained before label issues were recorded`,
    );
  }
  const history = SelectionHistory.fromState(
    saved,
    join(runDir, "last.safetensors"),
    {
      samples: train.length,
      modules: RECORDED_MODULES[config.method],
    },
  );
  const probabilities = await readTrainProbabilities(runDir);
  if (
    probabilities.samples !== train.length ||
    probabilities.labels.some((y, i) => y !== noisy.noisy[i])
  ) {
    throw new Error(
      `${runDir}/train_probabilities.safetensors: its labels are not the run's noisy training labels`,
    );
  }
  // 3. The ranking, and the baseline on the linear probe's probabilities.
  const ranking = rankLabelIssues(history, probabilities, {
    variant: options.variant ?? defaults.variant,
    finalModules: FINAL_MODULES[config.method],
  });
  const baseModule: ModuleName = probabilities.probs.lpm
    ? "lpm"
    : (Object.keys(probabilities.probs)[0] as ModuleName);
  const cl = confidentLearning(
    probabilities.probs[baseModule]!,
    probabilities.labels,
    { classes: probabilities.classes },
  );
  const clRanking = Int32Array.from(cl.score.keys()).sort((a, b) => {
    const d = (Number.isNaN(cl.score[b]) ? -1 : cl.score[b]) -
      (Number.isNaN(cl.score[a]) ? -1 : cl.score[a]);
    return d || a - b;
  });
  // 4. Against the injected noise.
  const injected = config.noise.rate > 0 || config.noise.mode === "matrix";
  const truth = injected
    ? {
      clean: noisy.clean,
      isNoisy: noisy.isNoisy,
      actualRate: noisy.actualRate,
    }
    : null;
  // K beyond the training set would report a precision "at K" over fewer samples.
  const k = Math.min(top, train.length);
  const order = Int32Array.from(ranking.issues, (x) => x.index);
  const flaggedMask = new Uint8Array(train.length);
  for (const x of ranking.issues) if (x.flagged) flaggedMask[x.index] = 1;
  return {
    runDir,
    config,
    dataset: train,
    ranking,
    truth,
    stats: truth
      ? flagStats(flaggedMask, truth.isNoisy, { ranking: order, k })
      : null,
    baseline: {
      module: baseModule,
      issues: cl.issues,
      ranking: clRanking,
      flagged: cl.issues.reduce((a, b) => a + b, 0),
      confidentJoint: cl.confidentJoint,
      thresholds: [...cl.thresholds],
      stats: truth
        ? flagStats(cl.issues, truth.isNoisy, { ranking: clRanking, k })
        : null,
    },
    top: k,
    epochs: history.epochs,
  };
}
