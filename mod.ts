/**
 * CUFIT in TypeScript: curriculum fine-tuning of a frozen DINOv2 ViT for
 * medical image classification under label noise (Yu et al., NeurIPS 2024),
 * on TensorFlow.js.
 *
 * The stable API for scripts, Deno's REPL and its Jupyter kernel:
 *
 * ```ts
 * import * as cufit from "./mod.ts";
 *
 * await cufit.initBackend("auto");
 * const config = cufit.resolveConfig("cufit", cufit.loadDatasetConfig("synthetic"), {
 *   weights: "data/demo/backbone.safetensors",
 *   noise: 0.4,
 * });
 * const result = await cufit.train(config, { onEpoch: (m) => console.log(m.testAcc) });
 * console.log(result.last10);
 * ```
 *
 * @module
 */

// Compute.
export { type Tensor, tf, tidyHost, type Variable } from "./lib/backend/tf.ts";
export {
  type BackendInfo,
  type BackendName,
  BACKENDS,
  initBackend,
} from "./lib/backend/backend.ts";
export {
  activeNativeKernels,
  NATIVE_KERNEL_NAMES,
  registerNativeKernels,
  unregisterNativeKernels,
} from "./lib/backend/native/kernels.ts";
export { loadOpenBlas, type OpenBlas } from "./lib/backend/native/openblas.ts";
export {
  type AdapterReport,
  GpuLostError,
  gpuMemory,
  GpuOutOfMemoryError,
  probeAdapter,
} from "./lib/backend/webgpu/mod.ts";

// Weights.
export { f32, type HostTensor } from "./lib/weights/host_tensor.ts";
export {
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from "./lib/weights/safetensors.ts";
export { readPth } from "./lib/weights/pth.ts";
export {
  type Dinov2Weights,
  loadDinov2Weights,
} from "./lib/weights/dinov2_weights.ts";
export { type DinoVariant, inferVariant } from "./lib/weights/variant.ts";

// Models.
export { type BlockHook, Dinov2 } from "./lib/models/dinov2.ts";
export { Rein } from "./lib/models/rein.ts";
export { ParamSet } from "./lib/models/params.ts";
export {
  initBackbone,
  initLinear,
  initRein,
  initTrainable,
} from "./lib/models/init.ts";
export { Adam, type AdamOptions, type AdamState } from "./lib/optim/adam.ts";
export { multiStepLr, referenceMilestones } from "./lib/optim/multistep_lr.ts";

// Data.
export { type Dataset, loadDataset } from "./lib/data/dataset.ts";
export { decodeImage, type RawImage } from "./lib/data/image.ts";
export { makeSynthetic } from "./lib/data/synthetic.ts";
export {
  testTransform,
  toChw,
  trainTransform,
  type TransformOptions,
} from "./lib/data/transforms.ts";
export {
  type Batch,
  BatchLoader,
  type BatchLoaderOptions,
} from "./lib/data/loader.ts";

// Label noise.
export { RandomState } from "./lib/noise/random_state.ts";
export {
  makeNoisyLabels,
  matrixNoise,
  type NoiseMode,
  type NoisyLabels,
  pairFlipNoise,
  symmetricNoise,
} from "./lib/noise/label_noise.ts";

// Training.
export {
  defaults,
  loadDatasetConfig,
  resolveConfig,
  type TrainConfig,
} from "./lib/train/config.ts";
export {
  Learner,
  type Method,
  type ModuleName,
  type StepOutputs,
} from "./lib/train/learner.ts";
export {
  buildLearner,
  evaluateLearner,
  train,
  type TrainOptions,
  type TrainResult,
} from "./lib/train/trainer.ts";
export { noisyTrainLabels, openDatasets } from "./lib/train/data.ts";
export { evaluateRun, loadRun, predictImages } from "./lib/train/evaluate.ts";
export {
  agreementMask,
  SelectionAccumulator,
  type SelectionStats,
  selectionStats,
} from "./lib/train/selection.ts";
export {
  type EpochMetrics,
  evaluationSummary,
  lastEpochsMean,
} from "./lib/train/metrics.ts";

// The demo.
export {
  ConfirmationNeededError,
  DEMO_WEIGHTS,
  type DemoOptions,
  type DemoResult,
  runDemo,
} from "./lib/demo/demo.ts";
export { renderReport, writeReport } from "./lib/demo/report.ts";
export {
  confusionChart,
  type ConfusionChartOptions,
  lineChart,
  type LineChartOptions,
  type Series,
} from "./lib/demo/charts.ts";
export { pretrainBackbone, writeBackbone } from "./lib/demo/pretrain.ts";

// Label issues: which training labels a run rejects (lib/label_issues/).
export {
  findLabelIssues,
  type FindLabelIssuesOptions,
  type LabelIssuesResult,
} from "./lib/label_issues/find_label_issues.ts";
export {
  type FlagStats,
  flagStats,
  type LabelIssue,
  type LabelIssueRanking,
  rankLabelIssues,
  type ScoreVariant,
} from "./lib/label_issues/score.ts";
export { confidentLearning } from "./lib/label_issues/confident_learning.ts";
export { SelectionHistory } from "./lib/label_issues/history.ts";
export {
  readTrainProbabilities,
  type TrainProbabilities,
} from "./lib/label_issues/train_probabilities.ts";
export {
  labelIssuesSummary,
  writeLabelIssues,
} from "./lib/label_issues/report.ts";

// Sweeps: grids of runs, local or on Slurm, and Table 1.
export { type Grid, loadGrid } from "./lib/sweep/grid.ts";
export {
  cancelSweep,
  runSweep,
  type RunSweepOptions,
  sweepStatus,
} from "./lib/sweep/sweep.ts";
export {
  collectResults,
  type SweepResults,
  writeTables,
} from "./lib/sweep/table.ts";

// Reference parity.
export { parityPassed, runParity } from "./lib/parity/run.ts";
