/**
 * The project's own C kernels (`cufit_kernels.c`) through Deno FFI: GELU and
 * its slope, the softmax and its backward, LayerNorm and its backward,
 * row copies (transposes, slices), element-wise products and sums, and
 * batches of small matrix products, on every core. `kernels.ts` uses them
 * when they are built (`deno task build:native`) and keeps the TypeScript
 * or tfjs kernels otherwise (see the C file for how closely results agree).
 *
 * The library is built from the source beside this module; every build
 * carries an id of that source (`cufitSourceId`), and a library built from
 * other source is refused, so an edit to the C file never runs stale code.
 * The path is fixed here: nothing read from a file or the environment
 * chooses which library is opened.
 *
 * A library, once opened, stays loaded for the life of the process: its
 * pool threads run code in it (it is also linked `-z nodelete`), so there is
 * no `close`, and opening the same path again returns the same object.
 *
 * @module
 */
import type { BatchMatMulPlan } from "./_batch_matmul.ts";

/** Bumped with the C file's `CUFIT_ABI` when a signature changes. */
export const C_KERNELS_ABI = 5;

const SYMBOLS = {
  cufit_abi: { parameters: [], result: "i32" },
  cufit_source_id: { parameters: [], result: "u64" },
  cufit_set_threads: { parameters: ["i32"], result: "i32" },
  cufit_gelu: {
    parameters: ["buffer", "buffer", "buffer", "i64"],
    result: "void",
  },
  cufit_softmax_grad: {
    parameters: ["buffer", "buffer", "buffer", "i64", "i64"],
    result: "void",
  },
  cufit_layer_norm: {
    // x, w, b, y, xhat, rstd, rows, cols, eps
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i64",
      "i64",
      "f64",
    ],
    result: "void",
  },
  cufit_layer_norm_grad: {
    // dy, xhat, rstd, w, residual, dx, rows, cols
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i64",
      "i64",
    ],
    result: "void",
  },
  cufit_softmax: {
    parameters: ["buffer", "buffer", "i64", "i64"],
    result: "void",
  },
  cufit_gather_rows: {
    // src, srcLength, dst, offsets (f64), rows, len
    parameters: ["buffer", "i64", "buffer", "buffer", "i64", "i64"],
    result: "i32",
  },
  cufit_binary: {
    // op, a, b, out, n, bLength
    parameters: ["i32", "buffer", "buffer", "buffer", "i64", "i64"],
    result: "i32",
  },
  cufit_sgemm_batch: {
    // sgemm, transA, transB, m, n, k, a, b, c, aIndex, bIndex, batch, beta
    parameters: [
      "pointer",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "f32",
    ],
    result: "i32",
  },
} as const;

/** The element-wise operations of {@linkcode CKernels.binary}. */
export type BinaryOp = "mul" | "add" | "sub";

const BINARY_CODES: Record<BinaryOp, number> = { mul: 0, add: 1, sub: 2 };

/** Libraries opened so far, by path. */
const opened = new Map<string, CKernels>();

/** A loaded C kernel library. */
export interface CKernels {
  /** The library file that was opened. */
  path: string;
  /** Threads of its pool, the calling thread included. */
  threads: number;
  /** Sets the thread count (at least 1). */
  setThreads(threads: number): void;
  /** `y = gelu(x)` and, when given, `slope = gelu'(x)`; `y` may be `x`. */
  gelu(x: Float32Array, y: Float32Array, slope?: Float32Array): void;
  /** `out = p * (g - rowsum(g * p))` over rows of `cols`; `out` may be `g`. */
  softmaxGrad(
    p: Float32Array,
    g: Float32Array,
    out: Float32Array,
    cols: number,
  ): void;
  /**
   * LayerNorm over rows of `w.length`: `y = xhat * w + b`, and when given
   * the `xhat` (like `x`) and `rstd` (one a row) the backward needs.
   */
  layerNorm(
    x: Float32Array,
    w: Float32Array,
    b: Float32Array,
    eps: number,
    out: { y: Float32Array; xhat?: Float32Array; rstd?: Float32Array },
  ): void;
  /**
   * The input gradient of {@linkcode CKernels.layerNorm} from `dy` and the
   * forward's `xhat` and `rstd`, plus `residual` when given.
   */
  layerNormGrad(
    dy: Float32Array,
    stats: { xhat: Float32Array; rstd: Float32Array },
    w: Float32Array,
    dx: Float32Array,
    residual?: Float32Array,
  ): void;
  /** `y = softmax(x)` over rows of `cols`; `y` may be `x`. */
  softmax(x: Float32Array, y: Float32Array, cols: number): void;
  /**
   * `dst` row `r` (of `len` floats) = `src[offsets[r] .. offsets[r] + len)`:
   * the copies of a transpose or a slice. `dst` must not overlap `src`;
   * throws, copying nothing, when a row reaches outside `src`.
   */
  gatherRows(
    src: Float32Array,
    dst: Float32Array,
    offsets: Float64Array,
    len: number,
  ): void;
  /**
   * `out = a op b` element by element in float32 arithmetic; `b` is as
   * long as `a`, or one row (its length dividing `a`'s) repeated. `out` may
   * be `a` or `b`.
   */
  binary(
    op: BinaryOp,
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
  ): void;
  /**
   * The matrices of a batched product, one single-threaded call of `sgemm`
   * (OpenBLAS's `cblas_sgemm`, see `OpenBlas.sgemmAddress`) each,
   * spread over the threads. The caller holds the library open and sets
   * OpenBLAS to one thread around the call.
   */
  sgemmBatch(
    sgemm: Deno.PointerObject,
    plan: BatchMatMulPlan,
    data: { a: Float32Array; b: Float32Array; out: Float32Array },
    beta: number,
  ): void;
}

/** Options of {@linkcode loadCKernels}. */
export interface LoadCKernelsOptions {
  /** Library file. @default {@linkcode defaultCKernelsPath} */
  path?: string;
  /** Pool threads. @default navigator.hardwareConcurrency */
  threads?: number;
}

/** The C source, beside this module. */
export const C_KERNELS_SOURCE = new URL("./cufit_kernels.c", import.meta.url);

/** File name of the built library on this OS. */
export function cKernelsFileName(): string {
  return Deno.build.os === "darwin"
    ? "libcufit_kernels.dylib"
    : Deno.build.os === "windows"
    ? "cufit_kernels.dll"
    : "libcufit_kernels.so";
}

/**
 * Where `deno task build:native` writes the library: `build/` beside this
 * module; undefined when the module is not a local file (imported from a
 * URL), where nothing can be built.
 */
export function defaultCKernelsPath(): string | undefined {
  const url = new URL(`./build/${cKernelsFileName()}`, import.meta.url);
  return url.protocol === "file:"
    ? decodeURIComponent(url.pathname)
    : undefined;
}

/**
 * The id a build of `source` carries: 64-bit FNV-1a of its bytes. Not a
 * security measure (the library path is fixed), only a staleness check.
 */
export function cufitSourceId(source: Uint8Array): bigint {
  const mask = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  for (const byte of source) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & mask;
  return h;
}

/**
 * Opens the C kernels; never throws. Returns `{ error }` (not built, built
 * from other source, no permission) so that callers keep the TypeScript
 * kernels. Needs `--allow-read` of the source and `--allow-ffi` of the
 * library (a missing permission reads as unavailable, without a prompt).
 */
export function loadCKernels(
  options: LoadCKernelsOptions = {},
): CKernels | { error: string } {
  const threads = options.threads ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(threads) || threads < 1) {
    return {
      error:
        `C kernels option "threads" must be a positive integer, got ${threads}`,
    };
  }
  const path = options.path ?? defaultCKernelsPath();
  if (path === undefined) {
    return { error: "not available when imported from a URL" };
  }
  const ffi = Deno.permissions.querySync({ name: "ffi", path }).state;
  if (ffi !== "granted") return { error: `needs --allow-ffi=${path}` };
  try {
    Deno.statSync(path);
  } catch (e) {
    return e instanceof Deno.errors.NotFound
      ? { error: "not built: run deno task build:native" }
      : { error: `cannot read ${path}: ${firstLine(e)}` };
  }
  const known = opened.get(path);
  if (known !== undefined) {
    known.setThreads(threads);
    return known;
  }
  let expected: bigint | undefined;
  if (C_KERNELS_SOURCE.protocol === "file:") {
    try {
      expected = cufitSourceId(Deno.readFileSync(C_KERNELS_SOURCE));
    } catch (e) {
      return {
        error: `cannot read ${C_KERNELS_SOURCE.pathname}: ${firstLine(e)}`,
      };
    }
  }
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(path, SYMBOLS);
  } catch (e) {
    return { error: `cannot open ${path}: ${firstLine(e)}` };
  }
  const s = lib.symbols;
  const abi = s.cufit_abi();
  const id = BigInt(s.cufit_source_id());
  if (abi !== C_KERNELS_ABI || (expected !== undefined && id !== expected)) {
    lib.close();
    return {
      error: `${path} was built from other source: run deno task build:native`,
    };
  }
  const kernels: CKernels = {
    path,
    threads: s.cufit_set_threads(threads),
    setThreads(count) {
      if (!Number.isInteger(count) || count < 1) {
        throw new RangeError(
          `C kernels thread count must be a positive integer, got ${count}`,
        );
      }
      kernels.threads = s.cufit_set_threads(count);
    },
    gelu(x, y, slope) {
      if (y.length !== x.length || (slope && slope.length !== x.length)) {
        throw new RangeError(
          `gelu: lengths differ (x ${x.length}, y ${y.length}, slope ${slope?.length})`,
        );
      }
      if (slope !== undefined && overlaps(slope, x)) {
        throw new RangeError("gelu: slope must not overlap x");
      }
      s.cufit_gelu(x, y, slope ?? null, BigInt(x.length));
    },
    softmaxGrad(p, g, out, cols) {
      if (
        !Number.isInteger(cols) || cols < 1 || p.length % cols !== 0 ||
        g.length !== p.length || out.length !== p.length
      ) {
        throw new RangeError(
          `softmaxGrad: need equal lengths that are a multiple of ${cols}, got ${p.length}, ${g.length}, ${out.length}`,
        );
      }
      s.cufit_softmax_grad(p, g, out, BigInt(p.length / cols), BigInt(cols));
    },
    layerNorm(x, w, b, eps, out) {
      const cols = w.length;
      const rows = cols === 0 ? 0 : x.length / cols;
      const bad = cols === 0 || !Number.isInteger(rows) ||
        b.length !== cols || out.y.length !== x.length ||
        (out.xhat !== undefined && out.xhat.length !== x.length) ||
        (out.rstd !== undefined && out.rstd.length !== rows) ||
        (out.xhat === undefined) !== (out.rstd === undefined) ||
        !(eps >= 0);
      if (bad) {
        throw new RangeError(
          `layerNorm: x of ${x.length} values, weight ${cols}, bias ${b.length}, y ${out.y.length}, xhat ${out.xhat?.length}, rstd ${out.rstd?.length}, eps ${eps} do not fit`,
        );
      }
      s.cufit_layer_norm(
        x,
        w,
        b,
        out.y,
        out.xhat ?? null,
        out.rstd ?? null,
        BigInt(rows),
        BigInt(cols),
        eps,
      );
    },
    layerNormGrad(dy, stats, w, dx, residual) {
      const cols = w.length;
      const rows = cols === 0 ? 0 : dy.length / cols;
      const bad = cols === 0 || !Number.isInteger(rows) ||
        stats.xhat.length !== dy.length || stats.rstd.length !== rows ||
        dx.length !== dy.length ||
        (residual !== undefined && residual.length !== dy.length);
      if (bad) {
        throw new RangeError(
          `layerNormGrad: dy of ${dy.length} values, weight ${cols}, xhat ${stats.xhat.length}, rstd ${stats.rstd.length}, dx ${dx.length}, residual ${residual?.length} do not fit`,
        );
      }
      s.cufit_layer_norm_grad(
        dy,
        stats.xhat,
        stats.rstd,
        w,
        residual ?? null,
        dx,
        BigInt(rows),
        BigInt(cols),
      );
    },
    softmax(x, y, cols) {
      if (
        !Number.isInteger(cols) || cols < 1 || x.length % cols !== 0 ||
        y.length !== x.length
      ) {
        throw new RangeError(
          `softmax: need equal lengths that are a multiple of ${cols}, got ${x.length}, ${y.length}`,
        );
      }
      s.cufit_softmax(x, y, BigInt(x.length / cols), BigInt(cols));
    },
    gatherRows(src, dst, offsets, len) {
      const rows = offsets.length;
      if (
        !Number.isInteger(len) || len < 0 || dst.length !== rows * len ||
        overlaps(src, dst)
      ) {
        throw new RangeError(
          `gatherRows: ${rows} rows of ${len} need a separate dst of ${
            rows * len
          } floats, got ${dst.length}`,
        );
      }
      if (rows === 0 || len === 0) return;
      const ok = s.cufit_gather_rows(
        src,
        BigInt(src.length),
        dst,
        offsets,
        BigInt(rows),
        BigInt(len),
      );
      if (ok !== 1) {
        throw new RangeError(
          `gatherRows: a row offset (+ ${len}) is outside src (${src.length} floats)`,
        );
      }
    },
    binary(op, a, b, out) {
      const code = BINARY_CODES[op];
      const ok = code !== undefined && out.length === a.length &&
        b.length > 0 && a.length % b.length === 0 &&
        s.cufit_binary(
            code,
            a,
            b,
            out,
            BigInt(a.length),
            BigInt(b.length),
          ) === 1;
      if (!ok) {
        throw new RangeError(
          `binary ${
            JSON.stringify(op)
          }: a of ${a.length}, b of ${b.length} and out of ${out.length} values do not fit`,
        );
      }
    },
    sgemmBatch(sgemm, plan, data, beta) {
      const { m, n, k, batch } = plan;
      const aCount = maxOf(plan.aIndex) + 1;
      const bCount = maxOf(plan.bIndex) + 1;
      if (
        data.a.length < aCount * m * k || data.b.length < bCount * k * n ||
        data.out.length < batch * m * n || plan.aIndex.length < batch ||
        plan.bIndex.length < batch
      ) {
        throw new RangeError(
          `sgemmBatch: buffers too small for ${batch} products of [${m}, ${k}] x [${k}, ${n}]`,
        );
      }
      if (batch === 0 || m === 0 || n === 0) return;
      s.cufit_sgemm_batch(
        sgemm,
        plan.transA ? 1 : 0,
        plan.transB ? 1 : 0,
        m,
        n,
        k,
        data.a,
        data.b,
        data.out,
        plan.aIndex,
        plan.bIndex,
        batch,
        beta,
      );
    },
  };
  opened.set(path, kernels);
  return kernels;
}

function maxOf(values: Int32Array): number {
  let max = 0;
  for (const v of values) if (v > max) max = v;
  return max;
}

function overlaps(a: Float32Array, b: Float32Array): boolean {
  if (a.buffer !== b.buffer) return false;
  return a.byteOffset < b.byteOffset + b.byteLength &&
    b.byteOffset < a.byteOffset + a.byteLength;
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split("\n")[0];
}
