/**
 * The helper child of `rerun`'s label check: reads a resolved
 * {@linkcode TrainConfig} as JSON on stdin (written by `checkRerunLabels` in
 * rerun.ts from a checked record), opens its datasets and prints the SHA-256
 * of the clean and of the noisy training labels as one JSON line. It runs
 * with the re-run's read permissions and no write.
 *
 * @module
 */
import { sha256Labels } from "../io/digest.ts";
import type { TrainConfig } from "./config.ts";
import { noisyTrainLabels, openDatasets } from "./data.ts";

/** The clean and noisy training-label digests of a config. */
export async function labelDigests(
  config: TrainConfig,
): Promise<{ trainLabels: string; noisyLabels: string }> {
  const { train } = await openDatasets(config);
  const noisy = noisyTrainLabels(config, train);
  return {
    trainLabels: sha256Labels(train.labels),
    noisyLabels: sha256Labels(noisy.noisy),
  };
}

if (import.meta.main) {
  const text = await new Response(Deno.stdin.readable).text();
  try {
    console.log(JSON.stringify(await labelDigests(JSON.parse(text))));
  } catch (e) {
    console.error((e as Error).message.split("\n")[0]);
    Deno.exit(1);
  }
}
