/**
 * The C kernels (`lib/backend/native/cufit_kernels.c`) against the
 * TypeScript kernels they stand in for, built here into a temporary folder
 * with the project's own build code. Skipped without a C compiler, unless
 * `CUFIT_REQUIRE_C_KERNELS=1` (CI) makes that a failure.
 */
import assert from "node:assert/strict";
import "@tensorflow/tfjs-backend-wasm";
import { tf } from "../lib/backend/tf.ts";
import { buildCKernels, cFlags } from "../lib/backend/native/build.ts";
import {
  C_KERNELS_SOURCE,
  type CKernels,
  cKernelsFileName,
  cufitSourceId,
  loadCKernels,
} from "../lib/backend/native/c_kernels.ts";
import { geluInto } from "../lib/backend/native/_gelu.ts";
import { softmaxGradInto } from "../lib/backend/native/_softmax_grad.ts";
import {
  planBatchMatMul,
  runBatchMatMul,
} from "../lib/backend/native/_batch_matmul.ts";
import { loadOpenBlas, type OpenBlas } from "../lib/backend/native/openblas.ts";
import {
  C_MIN_SIZE,
  cKernelTakes,
  registerNativeKernels,
  unregisterNativeKernels,
} from "../lib/backend/native/kernels.ts";
import { sliceRows, transposeRows } from "../lib/backend/native/_row_copies.ts";
import {
  geluParts,
  layerNormBackward,
  layerNormParts,
  softmaxGrad,
} from "../lib/models/layers.ts";

const dir = await Deno.makeTempDir({ prefix: "cufit-c-kernels-" });
const libPath = `${dir}/${cKernelsFileName()}`;
let c: CKernels | undefined;
let why = "";
try {
  await buildCKernels({ out: libPath, log: () => {} });
  const loaded = loadCKernels({ path: libPath, threads: 2 });
  if ("error" in loaded) why = loaded.error;
  else c = loaded;
} catch (e) {
  why = (e as Error).message.split("\n")[0];
}
const required = Deno.env.get("CUFIT_REQUIRE_C_KERNELS") === "1";
const ignore = c === undefined && !required;
if (c === undefined) {
  console.warn(`C kernel tests ${required ? "fail" : "skipped"}: ${why}`);
}

function kernels(): CKernels {
  assert.ok(c, `the C kernels did not build or load: ${why}`);
  return c;
}

/** OpenBLAS, or undefined (a failure where the C kernels are required). */
function openBlas(): OpenBlas | undefined {
  const blas = loadOpenBlas({ threads: 2 });
  if (!("error" in blas)) return blas;
  if (required) assert.fail(blas.error);
  console.warn(`skipped: ${blas.error}`);
  return undefined;
}

/** Runs `fn` on the wasm backend, then restores its kernels and the backend. */
async function onWasm(fn: () => void | Promise<void>): Promise<void> {
  const previous = tf.getBackend();
  assert.ok(await tf.setBackend("wasm"));
  try {
    await fn();
  } finally {
    unregisterNativeKernels("wasm");
    if (previous) await tf.setBackend(previous);
  }
}

/** Deterministic values: mostly N(0, 3)-like, some far in both tails. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const u = s / 2 ** 32 - 0.5;
    out[i] = u * (i % 61 === 0 ? 60 : 8);
  }
  return out;
}

/** Largest distance in float32 steps (ulps) between same-signed values. */
function maxUlps(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  const ia = new Int32Array(a.buffer, a.byteOffset, a.length);
  const ib = new Int32Array(b.buffer, b.byteOffset, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    if (a[i] === b[i]) continue; // also +0 and -0
    assert.ok(
      Math.sign(a[i]) === Math.sign(b[i]),
      `element ${i}: ${a[i]} and ${b[i]} differ in sign`,
    );
    worst = Math.max(worst, Math.abs(ia[i] - ib[i]));
  }
  return worst;
}

const EDGES = [
  NaN,
  Infinity,
  -Infinity,
  0,
  -0,
  12,
  -12,
  12.000001,
  -12.000001,
  1e-40,
  -1e-40,
  3.4e38,
  -3.4e38,
  0.5,
  -0.5,
];

for (const threads of [1, 2, 3]) {
  Deno.test({
    name:
      `C gelu on ${threads} thread(s) equals the TypeScript GELU and slope to one ulp`,
    ignore,
    fn: () => {
      const k = kernels();
      k.setThreads(threads);
      const n = 300_001; // not a multiple of any vector width or chunk
      const x = values(n, 7 + threads);
      x.set(EDGES, 0);
      const y = new Float32Array(n);
      const d = new Float32Array(n);
      const yc = new Float32Array(n);
      const dc = new Float32Array(n);
      geluInto(x, y, d);
      k.gelu(x, yc, dc);
      assert.ok(maxUlps(y, yc) <= 1, `gelu: ${maxUlps(y, yc)} ulps`);
      assert.ok(maxUlps(d, dc) <= 1, `slope: ${maxUlps(d, dc)} ulps`);
      // Every edge value exactly as in TypeScript (NaN stays NaN).
      for (let i = 0; i < EDGES.length; i++) {
        assert.ok(Object.is(y[i], yc[i]), `gelu(${x[i]}): ${yc[i]} vs ${y[i]}`);
        assert.ok(Object.is(d[i], dc[i]), `slope(${x[i]}): ${dc[i]}`);
      }
      // Without the slope, and in place.
      const inPlace = x.slice();
      k.gelu(inPlace, inPlace);
      assert.ok(maxUlps(y, inPlace) <= 1);
    },
  });
}

Deno.test({
  name: "C gelu refuses mismatched lengths and a slope over its input",
  ignore,
  fn: () => {
    const k = kernels();
    const x = new Float32Array(8);
    assert.throws(() => k.gelu(x, new Float32Array(7)), /lengths differ/);
    assert.throws(() => k.gelu(x, x.slice(), x), /must not overlap/);
  },
});

Deno.test({
  name: "C softmax gradient equals the TypeScript one bit for bit",
  ignore,
  fn: () => {
    const k = kernels();
    k.setThreads(2);
    const cols = 257;
    const rows = 6 * 16 + 3;
    const s = values(rows * cols, 3);
    const p = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const row = s.subarray(r * cols, (r + 1) * cols);
      const max = Math.max(...row);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      for (let i = 0; i < cols; i++) {
        p[r * cols + i] = Math.exp(row[i] - max) / sum;
      }
    }
    const g = values(rows * cols, 4);
    const want = new Float32Array(rows * cols);
    const got = new Float32Array(rows * cols);
    softmaxGradInto(p, g, want, cols);
    k.softmaxGrad(p, g, got, cols);
    assert.deepEqual(got, want);
    assert.throws(
      () => k.softmaxGrad(p, g, got, 256),
      /multiple of 256/,
    );
  },
});

Deno.test({
  name:
    "C batched products equal the one-by-one OpenBLAS loop, with broadcasting and transposes",
  ignore,
  fn: () => {
    const k = kernels();
    const blas = openBlas();
    if (blas === undefined) return;
    const sgemm = blas.sgemmAddress;
    assert.ok(sgemm, "OpenBLAS gives the address of cblas_sgemm");
    k.setThreads(2);
    for (
      const [aShape, bShape, transA, transB] of [
        [[2, 3, 17, 8], [2, 3, 9, 8], false, true],
        [[4, 8, 17], [1, 8, 5], true, false],
        [[5, 1, 7, 3], [1, 4, 3, 6], false, false],
      ] as [number[], number[], boolean, boolean][]
    ) {
      const plan = planBatchMatMul(aShape, bShape, transA, transB);
      const a = values(aShape.reduce((p, d) => p * d), 5);
      const b = values(bShape.reduce((p, d) => p * d), 6);
      const size = plan.outShape.reduce((p, d) => p * d);
      const want = new Float32Array(size).fill(0.25);
      const got = new Float32Array(size).fill(0.25);
      runBatchMatMul(blas, plan, { a, b, out: want }, { beta: 1 });
      runBatchMatMul(blas, plan, { a, b, out: got }, { beta: 1, c: k });
      assert.deepEqual(got, want, `[${aShape}] x [${bShape}]`);
      assert.equal(blas.threads, 2, "OpenBLAS threads restored");
      // And called directly, on OpenBLAS set to one thread.
      const direct = new Float32Array(size).fill(0.25);
      blas.setThreads(1);
      k.sgemmBatch(sgemm, plan, { a, b, out: direct }, 1);
      blas.setThreads(2);
      assert.deepEqual(direct, want, `direct [${aShape}] x [${bShape}]`);
    }
    assert.throws(
      () =>
        k.sgemmBatch(
          sgemm,
          planBatchMatMul([2, 4, 4], [2, 4, 4], false, false),
          {
            a: new Float32Array(31),
            b: new Float32Array(32),
            out: new Float32Array(32),
          },
          0,
        ),
      /buffers too small/,
    );
  },
});

Deno.test({
  name:
    "GeluParts and SoftmaxGrad through tfjs use the C kernels and match autograd",
  ignore,
  fn: async () => {
    const k = kernels();
    const blas = openBlas();
    if (blas === undefined) return;
    await onWasm(() => {
      const reg = registerNativeKernels("wasm", {
        openblas: blas,
        cKernels: k,
      });
      assert.equal(reg.cKernels?.path, libPath);
      tf.tidy(() => {
        const x = tf.tensor(values(4 * 257, 9), [4, 257]);
        const { y, dydx: slope } = geluParts(x, { derivative: true });
        const auto = tf.grad((t: tf.Tensor) =>
          tf.sum(
            tf.mul(t, tf.mul(0.5, tf.add(1, tf.erf(tf.div(t, Math.SQRT2))))),
          )
        )(x);
        const want = new Float32Array(x.size);
        geluInto(x.dataSync() as Float32Array, want);
        assert.ok(maxUlps(y.dataSync() as Float32Array, want) <= 1);
        const gs = slope!.dataSync() as Float32Array;
        const ga = auto.dataSync() as Float32Array;
        for (let i = 0; i < gs.length; i++) {
          assert.ok(Math.abs(gs[i] - ga[i]) < 1e-5, `slope ${i}`);
        }
        const probs = tf.softmax(x);
        const dy = tf.tensor(values(4 * 257, 10), [4, 257]);
        const viaKernel = softmaxGrad(probs, dy).dataSync() as Float32Array;
        const viaTs = new Float32Array(x.size);
        softmaxGradInto(
          probs.dataSync() as Float32Array,
          dy.dataSync() as Float32Array,
          viaTs,
          257,
        );
        assert.deepEqual(viaKernel, viaTs);
      });
    });
  },
});

/** Largest |a - b| / (1 + |b|). */
function maxRelative(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  }
  return worst;
}

Deno.test({
  name:
    "LayerNorm and its backward in one C pass match the op-by-op forms (stats, residual)",
  ignore,
  fn: async () => {
    const k = kernels();
    const blas = openBlas();
    if (blas === undefined) return;
    await onWasm(() => {
      const rows = 2 * 257 + 5;
      const cols = 384;
      const run = () =>
        tf.tidy(() => {
          const x = tf.add(tf.tensor(values(rows * cols, 21), [rows, cols]), 3);
          const w = tf.tensor(values(cols, 22), [cols]);
          const b = tf.tensor(values(cols, 23), [cols]);
          const dy = tf.tensor(values(rows * cols, 24), [rows, cols]);
          const res = tf.tensor(values(rows * cols, 25), [rows, cols]);
          const plain = layerNormParts(x, w, b).y;
          const { y, stats } = layerNormParts(x, w, b, { stats: true });
          assert.deepEqual(stats!.rstd.shape, [rows, 1]);
          const dx = layerNormBackward(dy, stats!, w);
          const dxRes = layerNormBackward(dy, stats!, w, res);
          return [plain, y, stats!.xhat, stats!.rstd, dx, dxRes].map((t) =>
            t.dataSync() as Float32Array
          );
        });
      const opByOp = run();
      const reg = registerNativeKernels("wasm", {
        openblas: blas,
        cKernels: k,
      });
      assert.ok(reg.cKernels);
      assert.ok(tf.getKernel("LayerNormParts", "wasm"));
      const viaC = run();
      const names = ["y (no stats)", "y", "xhat", "rstd", "dx", "dx + res"];
      names.forEach((name, i) => {
        const err = maxRelative(viaC[i], opByOp[i]);
        assert.ok(err < 2e-5, `${name}: relative error ${err}`);
      });
      // The two forwards, with and without the stats, are one computation.
      assert.deepEqual(viaC[0], viaC[1]);
    });
    assert.equal(
      tf.getKernel("LayerNormParts", "wasm"),
      undefined,
      "unregistered with the other kernels",
    );
  },
});

Deno.test({
  name: "C LayerNorm refuses shapes that do not fit",
  ignore,
  fn: () => {
    const k = kernels();
    const x = new Float32Array(12);
    const w = new Float32Array(4);
    assert.throws(
      () => k.layerNorm(x, w, new Float32Array(3), 1e-6, { y: x.slice() }),
      /layerNorm: .*bias 3/,
    );
    assert.throws(
      () =>
        k.layerNormGrad(
          x,
          { xhat: x, rstd: new Float32Array(2) },
          w,
          x.slice(),
        ),
      /layerNormGrad: .*rstd 2/,
    );
  },
});

Deno.test("sliceRows() and transposeRows() give the runs a plain loop copies", () => {
  // Reference: element by element, through flat indices.
  const strides = (shape: number[]) =>
    shape.map((_, i) => shape.slice(i + 1).reduce((p, d) => p * d, 1));
  const expand = (rows: { offsets: Float64Array; len: number }) =>
    [...rows.offsets].flatMap((o) =>
      Array.from({ length: rows.len }, (_, i) => o + i)
    );
  const each = (dims: number[], f: (idx: number[]) => void) => {
    const total = dims.reduce((p, d) => p * d, 1);
    for (let flat = 0; flat < total; flat++) {
      let rest = flat;
      const idx = dims.map(() => 0);
      for (let d = dims.length - 1; d >= 0; d--) {
        idx[d] = rest % dims[d];
        rest = Math.floor(rest / dims[d]);
      }
      f(idx);
    }
  };
  for (
    const [shape, begin, size] of [
      [[4, 7, 5], [0, 1, 0], [4, 6, 5]],
      [[4, 7, 5], [1, 0, 2], [2, 7, 3]],
      [[3, 4], [0, 0], [3, 4]],
      [[2, 3, 4, 5], [1, 1, 0, 0], [1, 2, 4, 5]],
      [[6], [2], [0]],
    ]
  ) {
    const st = strides(shape);
    const want: number[] = [];
    each(
      size,
      (idx) =>
        want.push(idx.reduce((p, v, d) => p + (v + begin[d]) * st[d], 0)),
    );
    assert.deepEqual(expand(sliceRows(shape, begin, size)), want, `${shape}`);
  }
  assert.throws(
    () => sliceRows([4, 5], [2, 0], [3, 5]),
    /leave the tensor on axis 0/,
  );
  for (
    const [shape, perm] of [
      [[16, 5, 6, 4], [0, 2, 1, 3]],
      [[2, 3, 4, 5, 6], [2, 0, 3, 1, 4]],
      [[3, 1, 4, 2], [1, 2, 0, 3]],
    ]
  ) {
    const st = strides(shape);
    const want: number[] = [];
    each(
      perm.map((a) => shape[a]),
      (idx) => want.push(idx.reduce((p, v, d) => p + v * st[perm[d]], 0)),
    );
    assert.deepEqual(expand(transposeRows(shape, perm)!), want, `${shape}`);
  }
  // The last axis moves: not rows.
  assert.equal(transposeRows([4, 5], [1, 0]), undefined);
  assert.equal(
    transposeRows([4, 5, 3], [1, 0, 2], 4),
    undefined,
    "rows under minLen",
  );
});

Deno.test({
  name:
    "Softmax, Slice, Transpose, Multiply, Add and Sub in C match the original kernels",
  ignore,
  fn: async () => {
    const k = kernels();
    const blas = openBlas();
    if (blas === undefined) return;
    await onWasm(() => {
      const [b, h, n, d] = [3, 4, 67, 64]; // 51456 values: x2 for C_MIN_SIZE
      assert.ok(2 * b * h * n * d >= C_MIN_SIZE);
      const run = () =>
        tf.tidy(() => {
          const x = tf.tensor(values(2 * b * n * h * d, 31), [2 * b, n, h, d]);
          const s = tf.tensor(values(2 * b * h * n * n, 32), [2 * b * h, n, n]);
          const flat = tf.reshape(x, [2 * b * n, h * d]);
          const row = tf.tensor(values(h * d, 33), [h * d]);
          const other = tf.tensor(values(2 * b * n * h * d, 34), flat.shape);
          return [
            tf.softmax(tf.mul(s, 4)),
            tf.slice(x, [1, 1, 0, 0], [2 * b - 1, n - 2, h, d]),
            tf.transpose(x, [0, 2, 1, 3]),
            tf.mul(flat, other),
            tf.add(flat, row),
            tf.sub(flat, other),
          ].map((t) => t.dataSync() as Float32Array);
        });
      const original = run();
      registerNativeKernels("wasm", { openblas: blas, cKernels: k });
      const viaC = run();
      const names = ["softmax", "slice", "transpose", "mul", "add", "sub"];
      // Softmax: two float32 exps, each within ~2 ulp.
      for (let i = 0; i < original[0].length; i++) {
        assert.ok(
          Math.abs(viaC[0][i] - original[0][i]) <=
            1e-6 * original[0][i] + 1e-12,
          `softmax ${i}: ${viaC[0][i]} vs ${original[0][i]}`,
        );
      }
      for (let i = 1; i < names.length; i++) {
        assert.deepEqual(viaC[i], original[i], names[i]);
      }
    });
  },
});

Deno.test("cKernelTakes() leaves small, scalar and broadcast-first calls to the originals", () => {
  const big = [4112, 384];
  assert.equal(cKernelTakes("Add", [big, big]), true);
  assert.equal(cKernelTakes("Multiply", [big, [384]]), true);
  assert.equal(cKernelTakes("Multiply", [big, [1, 384]]), true);
  assert.equal(cKernelTakes("Multiply", [big, []]), false);
  assert.equal(cKernelTakes("Multiply", [big, [4112, 1]]), false);
  assert.equal(cKernelTakes("Multiply", [[384], big]), false);
  assert.equal(cKernelTakes("Add", [[16, 16], [16, 16]]), false);
  assert.equal(cKernelTakes("Softmax", [[96, 257, 257]]), true);
  assert.equal(cKernelTakes("Slice", [[16, 257, 384]]), true);
  assert.equal(cKernelTakes("Exp", [big]), false);
});

Deno.test({
  name:
    "A library built from other source, or from no library at all, is refused with the fix",
  ignore,
  fn: async () => {
    const missing = loadCKernels({ path: `${dir}/none/${cKernelsFileName()}` });
    assert.ok("error" in missing);
    assert.match(missing.error, /not built: run deno task build:native/);
    const source = decodeURIComponent(C_KERNELS_SOURCE.pathname);
    const id = cufitSourceId(await Deno.readFile(source));
    const stale = `${dir}/stale-${cKernelsFileName()}`;
    const wrong = `0x${(id ^ 1n).toString(16).padStart(16, "0")}ULL`;
    const out = await new Deno.Command("cc", {
      args: [...cFlags(), `-DCUFIT_SOURCE_ID=${wrong}`, "-o", stale, source],
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const refused = loadCKernels({ path: stale });
    assert.ok("error" in refused);
    assert.match(
      refused.error,
      /built from other source: run deno task build:native/,
    );
  },
});

Deno.test("buildCKernels() names a missing or failing compiler and leaves nothing behind", async () => {
  const out = `${dir}/failed/${cKernelsFileName()}`;
  await assert.rejects(
    () => buildCKernels({ cc: "cufit-no-such-cc", out, log: () => {} }),
    /No C compiler "cufit-no-such-cc" found: install one/,
  );
  await assert.rejects(
    () => buildCKernels({ cc: "false", out, log: () => {} }),
    /false failed \(exit 1\)/,
  );
  const left = [...Deno.readDirSync(`${dir}/failed`)].map((e) => e.name);
  assert.deepEqual(left, [], "no library and no temporary file");
});

Deno.test("cufitSourceId is 64-bit FNV-1a", () => {
  // Published FNV-1a 64 test vectors.
  assert.equal(cufitSourceId(new Uint8Array()), 0xcbf29ce484222325n);
  assert.equal(
    cufitSourceId(new TextEncoder().encode("a")),
    0xaf63dc4c8601ec8cn,
  );
  assert.equal(
    cufitSourceId(new TextEncoder().encode("foobar")),
    0x85944171f73967e8n,
  );
});

Deno.test({
  name: "cleanup: C kernel test folder",
  sanitizeResources: false,
  fn: async () => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  },
});
