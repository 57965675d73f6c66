/**
 * The tolerances of `fixtures/reference/README.md`, as pure functions over
 * host tensors. Which rule applies is decided by the key's name.
 *
 * @module
 */
import { type HostTensor, toFloat32 } from "../weights/host_tensor.ts";

/** The kinds of check, by key. */
export type ToleranceKind =
  | "exact"
  | "gradient"
  | "parameter"
  | "image"
  | "value";

/** Bounds, as the fixtures' README states them. */
export const TOLERANCES = {
  value: 1e-4,
  gradient: 1e-3,
  parameter: 1e-4,
  /** For parameter entries whose reference effective gradient is below 1e-6: 2 * lr. */
  parameterNoisy: 2e-3,
  noisyGradient: 1e-6,
  imageMean: 0.01,
  imageMax: 0.1,
} as const;

/** Which rule a parity key falls under. */
export function toleranceKind(key: string): ToleranceKind {
  if (key.startsWith("noise.") || key.endsWith("_agrees")) return "exact";
  if (key.startsWith("grad.")) return "gradient";
  if (/^(adam\d+|model\d+)\./.test(key)) return "parameter";
  if (/\.(jpe?g|png)$/i.test(key)) return "image";
  return "value";
}

/** One key's comparison. */
export interface Comparison {
  key: string;
  kind: ToleranceKind;
  /** The figure compared with `bound` (for images: the max abs error). */
  error: number;
  bound: number;
  ok: boolean;
  /** Extra detail (mean error for images, mismatch count for exact keys). */
  detail?: string;
}

/** Options of {@linkcode compareTensor}. */
export interface CompareOptions {
  /**
   * For `parameter` keys: a mask of entries whose reference effective
   * gradient was tiny, where the looser bound applies.
   */
  noisyEntries?: Uint8Array;
}

/** Compares a computed tensor with its golden under the key's rule. */
export function compareTensor(
  key: string,
  computed: HostTensor,
  expected: HostTensor,
  options: CompareOptions = {},
): Comparison {
  const kind = toleranceKind(key);
  if (computed.shape.join(",") !== expected.shape.join(",")) {
    return {
      key,
      kind,
      error: Infinity,
      bound: 0,
      ok: false,
      detail: `shape [${computed.shape}] != expected [${expected.shape}]`,
    };
  }
  const c = toFloat32(computed);
  const e = toFloat32(expected);
  let maxAbs = 0;
  let maxExp = 0;
  let sumAbs = 0;
  let mismatches = 0;
  let noisyMax = 0;
  for (let i = 0; i < e.length; i++) {
    const d = Math.abs(c[i] - e[i]);
    const noisy = options.noisyEntries?.[i] === 1;
    if (Number.isNaN(c[i]) !== Number.isNaN(e[i])) {
      maxAbs = Infinity;
    } else if (noisy) {
      if (d > noisyMax) noisyMax = d;
    } else if (d > maxAbs) maxAbs = d;
    if (Math.abs(e[i]) > maxExp) maxExp = Math.abs(e[i]);
    sumAbs += d;
    if (c[i] !== e[i]) mismatches++;
  }
  switch (kind) {
    case "exact":
      return {
        key,
        kind,
        error: mismatches,
        bound: 0,
        ok: mismatches === 0,
        detail: `${mismatches} differ`,
      };
    case "gradient": {
      const error = maxExp === 0 ? maxAbs : maxAbs / maxExp;
      return {
        key,
        kind,
        error,
        bound: TOLERANCES.gradient,
        ok: error <= TOLERANCES.gradient,
      };
    }
    case "image": {
      const mean = e.length ? sumAbs / e.length : 0;
      return {
        key,
        kind,
        error: maxAbs,
        bound: TOLERANCES.imageMax,
        ok: maxAbs <= TOLERANCES.imageMax && mean <= TOLERANCES.imageMean,
        detail: `mean ${mean.toExponential(2)} (bound ${TOLERANCES.imageMean})`,
      };
    }
    case "parameter": {
      const error = maxAbs / Math.max(1, maxExp);
      const ok = error <= TOLERANCES.parameter &&
        noisyMax <= TOLERANCES.parameterNoisy;
      const detail = options.noisyEntries
        ? `${count(options.noisyEntries)} tiny-gradient entries, max abs ${
          noisyMax.toExponential(2)
        } (bound ${TOLERANCES.parameterNoisy})`
        : undefined;
      return { key, kind, error, bound: TOLERANCES.parameter, ok, detail };
    }
    default: {
      const error = maxAbs / Math.max(1, maxExp);
      return {
        key,
        kind,
        error,
        bound: TOLERANCES.value,
        ok: error <= TOLERANCES.value,
      };
    }
  }
}

function count(mask: Uint8Array): number {
  let n = 0;
  for (const v of mask) n += v;
  return n;
}

/**
 * Entries whose effective gradient `|grad + weightDecay * param|` is below
 * the README's threshold: there Adam's first step is decided by float noise.
 */
export function tinyGradientMask(
  grad: HostTensor,
  param: HostTensor,
  weightDecay = 1e-5,
): Uint8Array {
  const g = toFloat32(grad);
  const p = toFloat32(param);
  const mask = new Uint8Array(g.length);
  for (let i = 0; i < g.length; i++) {
    mask[i] = Math.abs(g[i] + weightDecay * p[i]) < TOLERANCES.noisyGradient
      ? 1
      : 0;
  }
  return mask;
}
