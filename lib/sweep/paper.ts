/**
 * The paper's Table 1 (Yu et al., NeurIPS 2024): mean test accuracy (%) of
 * the last 10 epochs, DINOv2 ViT-S/14, symmetric label noise, by dataset,
 * method and noise rate. The sweep tables print these beside ours.
 *
 * @module
 */
import type { Method } from "../train/config.ts";

/** The paper's noise rates. */
export const PAPER_NOISE_RATES = [0.1, 0.2, 0.4, 0.6] as const;

/** How the paper names each dataset (by our conf name). */
export const PAPER_DATASET_NAMES: Record<string, string> = {
  ham10000: "HAM10000",
  aptos: "APTOS-2019",
  bloodmnist: "BloodMnist",
  organcmnist: "OrgancMnist",
};

/** How the paper names each method. */
export const METHOD_NAMES: Record<Method, string> = {
  linear: "Linear probing",
  rein: "Rein",
  cufit: "CUFIT",
};

/** Accuracy % at noise 0.1, 0.2, 0.4, 0.6, by dataset and method. */
export const PAPER_TABLE1: Record<string, Record<Method, number[]>> = {
  ham10000: {
    linear: [75.6, 75.3, 71.0, 61.9],
    rein: [78.6, 72.1, 54.9, 37.8],
    cufit: [82.6, 81.5, 79.1, 70.1],
  },
  aptos: {
    linear: [79.2, 79.4, 79.5, 66.9],
    rein: [82.5, 78.7, 77.2, 42.0],
    cufit: [84.2, 84.2, 81.6, 76.3],
  },
  bloodmnist: {
    linear: [97.2, 96.7, 95.8, 90.3],
    rein: [95.9, 89.0, 69.3, 45.6],
    cufit: [99.0, 98.8, 98.3, 98.2],
  },
  organcmnist: {
    linear: [83.3, 82.9, 79.9, 72.2],
    rein: [87.4, 82.0, 63.8, 43.1],
    cufit: [93.7, 93.6, 91.6, 87.4],
  },
};

/**
 * The paper's figure for a dataset, method, noise mode and rate, or `null`
 * where the paper has none (other datasets, modes or rates).
 */
export function paperAccuracy(
  dataset: string,
  method: Method,
  noiseMode: string,
  rate: number,
): number | null {
  if (noiseMode !== "symmetric") return null;
  const i = PAPER_NOISE_RATES.findIndex((r) => Math.abs(r - rate) < 1e-9);
  if (i < 0) return null;
  return PAPER_TABLE1[dataset]?.[method]?.[i] ?? null;
}
