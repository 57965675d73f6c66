/**
 * The arguments that make `deno task bench` (and `lib/bench/torch_bench.py`)
 * time a tiny model in about a second: width 32, 2 blocks, 2 heads, 28 px
 * inputs, batch 2, one timed step. The first six words are the model's shape.
 */
export const TINY_BENCH = [
  "--dim",
  "32",
  "--depth",
  "2",
  "--heads",
  "2",
  "--img",
  "28",
  "--batch",
  "2",
  "--steps",
  "1",
] as const;

/** The model-shape words of {@linkcode TINY_BENCH}. */
export const TINY_BENCH_MODEL = TINY_BENCH.slice(0, 6);
