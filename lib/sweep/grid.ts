/**
 * Sweep files (`conf/sweeps/*.json`): a grid of training runs and the
 * settings they share, read strictly, and expanded into cells.
 *
 * ```json
 * {
 *   "description": "The paper's Table 1",
 *   "datasets": ["ham10000", "aptos"],
 *   "noise_rates": [0.2, 0.4],
 *   "noise_modes": ["symmetric"],
 *   "methods": ["linear", "rein", "cufit"],
 *   "seeds": [0, 1],
 *   "overrides": { "epochs": 100, "batch_size": 32, "backend": "auto" }
 * }
 * ```
 *
 * A cell is one training run: one dataset, noise mode, noise rate, method and
 * seed, in that nesting order (the cell's index is its place in it, and a
 * Slurm array task's index). Its command is an ordinary training task,
 * `deno task train:<method>` with the reference's flags (`-d`, `-n`, `-s`)
 * plus `--noise-mode`, `--seed` and the overrides as flags. The engine adds
 * `--threads` and, for an interrupted cell, `--resume`.
 *
 * `datasets` are names of `conf/<name>.json` files; `seeds` set `--seed`
 * (shuffling, augmentation and initialization), while the label noise keeps
 * `--noise-seed` (0 unless `overrides.noise_seed` says otherwise), as in the
 * reference, whose noise is drawn once with seed 0. Unknown keys, wrong types
 * and duplicates are errors naming the file and the key.
 *
 * @module
 */
import { basename } from "node:path";
import {
  BACKEND_NAMES,
  type Method,
  METHODS,
  NET_SIZES,
} from "../train/config.ts";
import { parseJson } from "../io/parse_json.ts";

/** Noise models a sweep can use (`matrix` needs a file per dataset: not here). */
export const SWEEP_NOISE_MODES = ["symmetric", "pairflip"] as const;
/** A noise model of a sweep. */
export type SweepNoiseMode = typeof SWEEP_NOISE_MODES[number];

/** Settings every cell shares, as training flags (snake_case keys in the file). */
export interface SweepOverrides {
  /** `--epochs`. */
  epochs?: number;
  /** `--batch-size`. */
  batchSize?: number;
  /** `--backend`. */
  backend?: string;
  /** `--weights`. */
  weights?: string;
  /** `--netsize`. */
  netsize?: string;
  /** `--lr`. */
  lr?: number;
  /** `--noise-seed`. */
  noiseSeed?: number;
  /** `--max-batches`. */
  maxBatches?: number;
  /** `false` adds `--no-augment`. */
  augment?: boolean;
  /** `false` adds `--no-shuffle`. */
  shuffle?: boolean;
  /** `true` adds `--skip-bad`. */
  skipBad?: boolean;
}

/** A sweep file, read and checked. */
export interface Grid {
  description: string;
  datasets: string[];
  noiseRates: number[];
  noiseModes: SweepNoiseMode[];
  methods: Method[];
  seeds: number[];
  overrides: SweepOverrides;
}

/** One training run of a sweep. */
export interface Cell {
  /** Place in the grid's order, from 0 (the Slurm array index). */
  index: number;
  /** Folder-safe name, e.g. `demo-cufit-sym0.4-s1`: the run's `-s` name. */
  id: string;
  dataset: string;
  method: Method;
  noiseMode: SweepNoiseMode;
  noiseRate: number;
  seed: number;
  /** The deno task: `train:<method>`. */
  task: string;
  /** The task's arguments, without `--threads` and `--resume`. */
  args: string[];
}

type Flag = [key: keyof SweepOverrides, kind: string, flag: string];
// File key -> override key, what it must be, and its training flag.
const OVERRIDES: Record<string, Flag> = {
  epochs: ["epochs", "a positive integer", "--epochs"],
  batch_size: ["batchSize", "a positive integer", "--batch-size"],
  backend: ["backend", `one of ${BACKEND_NAMES.join(", ")}`, "--backend"],
  weights: ["weights", "a path", "--weights"],
  netsize: ["netsize", `one of ${NET_SIZES.join(", ")}`, "--netsize"],
  lr: ["lr", "a positive number", "--lr"],
  noise_seed: ["noiseSeed", "an integer in [0, 2^32)", "--noise-seed"],
  max_batches: ["maxBatches", "a positive integer", "--max-batches"],
  augment: ["augment", "true or false", "--no-augment"],
  shuffle: ["shuffle", "true or false", "--no-shuffle"],
  skip_bad: ["skipBad", "true or false", "--skip-bad"],
};

const GRID_KEYS = [
  "description",
  "datasets",
  "noise_rates",
  "noise_modes",
  "methods",
  "seeds",
  "overrides",
] as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Reads and checks a sweep file; errors name the file and the key. */
export async function loadGrid(path: string): Promise<Grid> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Sweep file "${path}" not found`);
    }
    throw e;
  }
  const raw = parseJson(text, `sweep file "${path}"`);
  return checkGrid(raw, `Sweep file "${path}"`);
}

const show = (v: unknown) => JSON.stringify(v) ?? String(v);

/** Checks a parsed sweep file; `where` starts every error (`Sweep file "x"`). */
export function checkGrid(raw: unknown, where: string): Grid {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new TypeError(`${where} must hold a JSON object, got ${show(raw)}`);
  }
  const obj = raw as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!(GRID_KEYS as readonly string[]).includes(key)) {
      throw new TypeError(
        `${where} has unknown key "${key}": expected ${GRID_KEYS.join(", ")}`,
      );
    }
  }
  const at = (key: string) => `${where} key "${key}"`;
  const list = <T>(
    key: string,
    check: (v: unknown, what: string) => T,
    fallback?: T[],
  ): T[] => {
    const v = obj[key];
    if (v === undefined && fallback) return fallback;
    if (!Array.isArray(v) || v.length === 0) {
      throw new TypeError(
        `${at(key)} must be a non-empty list, got ${show(v)}`,
      );
    }
    const out = v.map((x, i) => check(x, `${at(key)} item ${i}`));
    const seen = new Set<string>();
    for (const x of out) {
      const k = show(x);
      if (seen.has(k)) {
        throw new TypeError(`${at(key)} lists ${k} twice`);
      }
      seen.add(k);
    }
    return out;
  };
  const oneOf =
    <T extends string>(xs: readonly T[]) => (v: unknown, what: string): T => {
      if (typeof v !== "string" || !(xs as readonly string[]).includes(v)) {
        throw new TypeError(
          `${what} must be one of ${xs.join(", ")}, got ${show(v)}`,
        );
      }
      return v as T;
    };
  const description = obj.description === undefined ? "" : obj.description;
  if (typeof description !== "string") {
    throw new TypeError(
      `${at("description")} must be a string, got ${show(description)}`,
    );
  }
  return {
    description,
    datasets: list("datasets", (v, what) => {
      if (typeof v !== "string" || !NAME.test(v)) {
        throw new TypeError(
          `${what} must be a dataset name (conf/<name>.json: letters, digits, "_", "-", "."), got ${
            show(v)
          }`,
        );
      }
      return v;
    }),
    noiseRates: list("noise_rates", (v, what) => {
      if (typeof v !== "number" || !(v >= 0 && v <= 1)) {
        throw new TypeError(
          `${what} must be a number in [0, 1], got ${show(v)}`,
        );
      }
      return v;
    }),
    noiseModes: list("noise_modes", oneOf(SWEEP_NOISE_MODES), ["symmetric"]),
    methods: list("methods", oneOf(METHODS)),
    seeds: list("seeds", (v, what) => {
      if (
        !Number.isSafeInteger(v) || (v as number) < 0 ||
        (v as number) >= 2 ** 32
      ) {
        throw new TypeError(
          `${what} must be an integer in [0, 2^32), got ${show(v)}`,
        );
      }
      return v as number;
    }),
    overrides: checkOverrides(obj.overrides ?? {}, at("overrides")),
  };
}

function checkOverrides(raw: unknown, where: string): SweepOverrides {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new TypeError(`${where} must be an object, got ${show(raw)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(raw as Record<string, unknown>)) {
    const spec = OVERRIDES[key];
    if (!spec) {
      throw new TypeError(
        `${where} has unknown key "${key}": expected ${
          Object.keys(OVERRIDES).join(", ")
        }`,
      );
    }
    out[spec[0]] = checkOverride(key, v, `${where.slice(0, -1)}.${key}"`);
  }
  return out as SweepOverrides;
}

/** Checks one override value given under its file key (`batch_size`). */
export function checkOverride(key: string, v: unknown, what: string): unknown {
  const spec = OVERRIDES[key];
  const bad = () => new TypeError(`${what} must be ${spec[1]}, got ${show(v)}`);
  switch (key) {
    case "epochs":
    case "batch_size":
    case "max_batches":
      if (!Number.isSafeInteger(v) || (v as number) < 1) throw bad();
      return v;
    case "noise_seed":
      if (
        !Number.isSafeInteger(v) || (v as number) < 0 ||
        (v as number) >= 2 ** 32
      ) throw bad();
      return v;
    case "lr":
      if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) throw bad();
      return v;
    case "backend":
      if (!(BACKEND_NAMES as readonly unknown[]).includes(v)) throw bad();
      return v;
    case "netsize":
      if (!(NET_SIZES as readonly unknown[]).includes(v)) throw bad();
      return v;
    case "weights":
      if (typeof v !== "string" || v.length === 0 || v.startsWith("-")) {
        throw bad();
      }
      return v;
    default:
      if (typeof v !== "boolean") throw bad();
      return v;
  }
}

/** The training flags of the overrides, in a fixed order. */
export function overrideFlags(o: SweepOverrides): string[] {
  const out: string[] = [];
  for (const [key, flag] of Object.values(OVERRIDES).map((s) => [s[0], s[2]])) {
    const v = o[key as keyof SweepOverrides];
    if (v === undefined) continue;
    if (key === "augment" || key === "shuffle") {
      if (v === false) out.push(flag);
    } else if (key === "skipBad") {
      if (v === true) out.push(flag);
    } else out.push(flag, String(v));
  }
  return out;
}

const MODE_TAG: Record<SweepNoiseMode, string> = {
  symmetric: "sym",
  pairflip: "pair",
};

/** Options of {@linkcode expandGrid}. */
export interface ExpandGridOptions {
  /**
   * Dataset file of each dataset name, as `-d` receives it (the sweep
   * writes its own copies; see lib/sweep/sweep_dir.ts).
   * @default `conf/<name>.json`
   */
  datasetFile?: (dataset: string) => string;
}

/**
 * The grid's cells in order: datasets, then noise modes, noise rates,
 * methods and seeds (the last varies fastest).
 */
export function expandGrid(
  grid: Grid,
  options: ExpandGridOptions = {},
): Cell[] {
  const file = options.datasetFile ?? ((d: string) => `conf/${d}.json`);
  const shared = overrideFlags(grid.overrides);
  const cells: Cell[] = [];
  for (const dataset of grid.datasets) {
    for (const noiseMode of grid.noiseModes) {
      for (const noiseRate of grid.noiseRates) {
        for (const method of grid.methods) {
          for (const seed of grid.seeds) {
            const id = `${dataset}-${method}-${
              MODE_TAG[noiseMode]
            }${noiseRate}-s${seed}`;
            cells.push({
              index: cells.length,
              id,
              dataset,
              method,
              noiseMode,
              noiseRate,
              seed,
              task: `train:${method}`,
              args: [
                "-d",
                file(dataset),
                "-n",
                String(noiseRate),
                "-s",
                id,
                "--noise-mode",
                noiseMode,
                "--seed",
                String(seed),
                ...shared,
              ],
            });
          }
        }
      }
    }
  }
  return cells;
}

/** Checks a sweep name (a folder name: letters, digits, `_`, `-`, `.`). */
export function checkSweepName(name: unknown): string {
  if (typeof name !== "string" || !NAME.test(name) || name.length > 100) {
    throw new TypeError(
      `Sweep name ${
        show(name)
      } must be letters, digits, "_", "-" and "." (at most 100, not starting with "." or "-")`,
    );
  }
  return name;
}

/** The sweep name a grid file suggests: its base name without `.json`. */
export function gridBaseName(path: string): string {
  return basename(path).replace(/\.json$/, "");
}
