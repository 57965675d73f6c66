/**
 * OpenBLAS single-precision matrix multiply through Deno FFI.
 *
 * The library is optional: {@linkcode loadOpenBlas} never throws, it returns
 * `{ error }` saying why OpenBLAS is unavailable (not installed, no
 * `--allow-ffi`, missing symbol) so that callers keep the plain tfjs kernels.
 * On Debian/Ubuntu: `apt-get install libopenblas0-pthread`.
 *
 * @module
 */

/** cblas enum values (cblas.h). */
const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    // order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  // Present in OpenBLAS only; a generic CBLAS still works single-configured.
  openblas_set_num_threads: {
    parameters: ["i32"],
    result: "void",
    optional: true,
  },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  // The same function's address, for the C kernels' batched products.
  cblas_sgemm_address: { name: "cblas_sgemm", type: "pointer" },
} as const;

/** One row-major `C = alpha * op(A) @ op(B) + beta * C`. */
export interface SgemmArgs {
  /** Rows of `op(A)` and `C`. */
  m: number;
  /** Columns of `op(B)` and `C`. */
  n: number;
  /** Columns of `op(A)`, rows of `op(B)`. */
  k: number;
  /** Row-major `A`: `[m, k]`, or `[k, m]` when `transA`. */
  a: Float32Array;
  /** Row-major `B`: `[k, n]`, or `[n, k]` when `transB`. */
  b: Float32Array;
  /** Row-major `C` `[m, n]`, written in place. */
  c: Float32Array;
  /** Use `A` transposed. @default false */
  transA?: boolean;
  /** Use `B` transposed. @default false */
  transB?: boolean;
  /** Row stride of `A` in elements. @default its column count */
  lda?: number;
  /** Row stride of `B` in elements. @default its column count */
  ldb?: number;
  /** Row stride of `C` in elements. @default n */
  ldc?: number;
  /** Scale of the product. @default 1 */
  alpha?: number;
  /** Scale of the incoming `C`; 0 ignores its contents (even NaN). @default 0 */
  beta?: number;
}

/** A loaded OpenBLAS. */
export interface OpenBlas {
  /** The path or soname that was opened. */
  path: string;
  /** `openblas_get_config()`, or "" for a non-OpenBLAS CBLAS. */
  config: string;
  /** Threads OpenBLAS uses (1 when the library cannot say). */
  threads: number;
  /** Runs one sgemm; checks that the buffers hold the described matrices. */
  sgemm(args: SgemmArgs): void;
  /**
   * The address of `cblas_sgemm`, for native code that calls it (the C
   * kernels); valid until {@linkcode OpenBlas.close}.
   */
  sgemmAddress: Deno.PointerObject | null;
  /** Sets the OpenBLAS thread count (ignored by a non-OpenBLAS CBLAS). */
  setThreads(threads: number): void;
  /** Closes the library; the object must not be used afterwards. */
  close(): void;
}

/** Options of {@linkcode loadOpenBlas}. */
export interface LoadOpenBlasOptions {
  /**
   * Library to open; when given, nothing else is tried.
   * @default env `CUFIT_OPENBLAS`, then `libopenblas.so.0`,
   * `/usr/lib/x86_64-linux-gnu/libopenblas.so.0` (Linux) or
   * `libopenblas.dylib` and the Homebrew paths (macOS)
   */
  path?: string;
  /**
   * Threads for OpenBLAS.
   * @default navigator.hardwareConcurrency
   */
  threads?: number;
}

/** Library names tried in order when no path is given. */
export function openBlasCandidates(): string[] {
  const out: string[] = [];
  const fromEnv = readEnv("CUFIT_OPENBLAS");
  if (fromEnv) out.push(fromEnv);
  if (Deno.build.os === "darwin") {
    out.push(
      "libopenblas.dylib",
      "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
      "/usr/local/opt/openblas/lib/libopenblas.dylib",
    );
  } else {
    out.push(
      "libopenblas.so.0",
      "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
      "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    );
  }
  return out;
}

/**
 * Opens OpenBLAS and binds `cblas_sgemm`; never throws.
 *
 * Needs `--allow-ffi` (or `--allow-ffi=<library path>`: then only permitted
 * paths are tried) and `--allow-env=CUFIT_OPENBLAS` for the variable; a
 * missing permission reads as "not available", without a prompt. A
 * `CUFIT_OPENBLAS` that cannot be opened falls through to the system names.
 */
export function loadOpenBlas(
  options: LoadOpenBlasOptions = {},
): OpenBlas | { error: string } {
  const threads = options.threads ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(threads) || threads < 1) {
    return {
      error:
        `OpenBLAS option "threads" must be a positive integer, got ${threads}`,
    };
  }
  const candidates = options.path !== undefined
    ? [options.path]
    : openBlasCandidates();
  // --allow-ffi may be scoped to library paths; query, never prompt.
  const anyFfi =
    Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  const permitted = candidates.filter((path) =>
    anyFfi ||
    Deno.permissions.querySync({ name: "ffi", path }).state === "granted"
  );
  if (permitted.length === 0) {
    return {
      error: "OpenBLAS needs --allow-ffi (or --allow-ffi=<library path>)",
    };
  }
  quietIdleThreads();
  const failures: string[] = [];
  for (const path of permitted) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      failures.push(`${path}: ${firstLine(e)}`);
      continue;
    }
    try {
      return bind(lib, path, threads);
    } catch (e) {
      lib.close();
      failures.push(`${path}: ${firstLine(e)}`);
    }
  }
  return { error: `Cannot open OpenBLAS (${failures.join("; ")})` };
}

function bind(
  lib: Deno.DynamicLibrary<typeof SYMBOLS>,
  path: string,
  threads: number,
): OpenBlas {
  const s = lib.symbols;
  const config = readConfig(s.openblas_get_config);
  const blas: OpenBlas = {
    path,
    config,
    threads: 1,
    sgemmAddress: s.cblas_sgemm_address as Deno.PointerObject | null,
    sgemm(args) {
      const { m, n, k, a, b, c } = args;
      const transA = args.transA ?? false;
      const transB = args.transB ?? false;
      const lda = args.lda ?? (transA ? m : k);
      const ldb = args.ldb ?? (transB ? k : n);
      const ldc = args.ldc ?? n;
      checkMatrix("A", a, transA ? k : m, transA ? m : k, lda);
      checkMatrix("B", b, transB ? n : k, transB ? k : n, ldb);
      checkMatrix("C", c, m, n, ldc);
      if (m === 0 || n === 0) return;
      s.cblas_sgemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        m,
        n,
        k,
        args.alpha ?? 1,
        a,
        Math.max(1, lda),
        b,
        Math.max(1, ldb),
        args.beta ?? 0,
        c,
        Math.max(1, ldc),
      );
    },
    setThreads(count) {
      if (!Number.isInteger(count) || count < 1) {
        throw new RangeError(
          `OpenBLAS thread count must be a positive integer, got ${count}`,
        );
      }
      s.openblas_set_num_threads?.(count);
      blas.threads = s.openblas_get_num_threads?.() ?? 1;
    },
    close() {
      lib.close();
    },
  };
  blas.setThreads(threads);
  return blas;
}

/** Throws unless `data` holds a `rows x cols` matrix with row stride `ld`. */
function checkMatrix(
  name: string,
  data: Float32Array,
  rows: number,
  cols: number,
  ld: number,
): void {
  for (
    const [what, v] of [["rows", rows], ["columns", cols], [
      "stride",
      ld,
    ]] as const
  ) {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
      throw new RangeError(
        `sgemm matrix ${name}: ${what} must be an int32 >= 0, got ${v}`,
      );
    }
  }
  if (ld < cols) {
    throw new RangeError(
      `sgemm matrix ${name}: row stride ${ld} is below its ${cols} columns`,
    );
  }
  const needed = rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
  if (data.length < needed) {
    throw new RangeError(
      `sgemm matrix ${name}: ${rows}x${cols} with stride ${ld} needs ${needed} floats, got ${data.length}`,
    );
  }
}

/** `openblas_get_config()`; "" when absent or when --allow-ffi is path-scoped. */
function readConfig(getConfig: (() => Deno.PointerValue) | null): string {
  // Reading a C string needs unscoped --allow-ffi; query so that a scoped
  // grant reads as "unknown" instead of prompting on a terminal.
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    return "";
  }
  const ptr = getConfig?.() ?? null;
  if (ptr === null) return "";
  try {
    return new Deno.UnsafePointerView(ptr).getCString();
  } catch {
    return "";
  }
}

/**
 * OpenBLAS reads `OPENBLAS_THREAD_TIMEOUT` once, when it loads: its idle
 * threads spin for 2^value cycles after each call before they sleep (2^28,
 * ~0.1 s, by default). Spinning threads hold the cores that the C kernels'
 * threads need between two matrix products: on two cores a CUFIT step at
 * 224 px took 6.9 s with them spinning and 6.0 s without, the products
 * themselves no slower. Sets the smallest value (4) unless the variable is
 * already set; needs `--allow-env=OPENBLAS_THREAD_TIMEOUT`, skipped without.
 */
function quietIdleThreads(): void {
  const name = "OPENBLAS_THREAD_TIMEOUT";
  if (
    Deno.permissions.querySync({ name: "env", variable: name }).state !==
      "granted"
  ) return;
  if (Deno.env.get(name) === undefined) Deno.env.set(name, "4");
}

function readEnv(name: string): string | undefined {
  if (
    Deno.permissions.querySync({ name: "env", variable: name }).state !==
      "granted"
  ) {
    return undefined;
  }
  return Deno.env.get(name) || undefined;
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split("\n")[0];
}
