/**
 * Native (OpenBLAS) kernels against the original tfjs kernels, on the wasm and
 * cpu backends. Skipped when OpenBLAS cannot be loaded (it is optional).
 */
import assert from "node:assert/strict";
import "@tensorflow/tfjs-backend-wasm";
import { tf } from "../lib/backend/tf.ts";
import {
  activeNativeKernels,
  type NativeBackendName,
  registerNativeKernels,
  unregisterNativeKernels,
} from "../lib/backend/native/kernels.ts";
import { loadOpenBlas, type OpenBlas } from "../lib/backend/native/openblas.ts";
import { geluParts, softmaxGrad } from "../lib/models/layers.ts";

const loaded = loadOpenBlas({ threads: 2 });
const blas: OpenBlas | undefined = "error" in loaded ? undefined : loaded;
const ignore = blas === undefined;
if (ignore) {
  console.warn(
    `Native kernel tests skipped: ${"error" in loaded && loaded.error}`,
  );
}

const BACKENDS: NativeBackendName[] = ["wasm", "cpu"];

/** Runs `fn` on `backend`, then restores the original kernels and backend. */
async function onBackend(
  backend: NativeBackendName,
  fn: () => void | Promise<void>,
): Promise<void> {
  // Undefined before the first backend is initialised.
  const previous: string | undefined = tf.getBackend();
  assert.ok(await tf.setBackend(backend), `cannot set backend ${backend}`);
  try {
    await fn();
  } finally {
    unregisterNativeKernels();
    if (previous) await tf.setBackend(previous);
  }
}

/**
 * Values of `reference()` (default: `build`) with the original kernels, then
 * of `build()` with the native ones.
 */
function originalAndNative(
  backend: NativeBackendName,
  build: () => tf.Tensor | tf.Tensor[],
  reference = build,
): { original: Float32Array[]; native: Float32Array[]; shapes: number[][] } {
  const run = (f: () => tf.Tensor | tf.Tensor[]) =>
    tf.tidy(() => {
      const out = f();
      const list = Array.isArray(out) ? out : [out];
      return list.map((t) => ({
        shape: t.shape,
        data: t.dataSync() as Float32Array,
      }));
    });
  const original = run(reference);
  const reg = registerNativeKernels(backend, { openblas: blas });
  assert.ok(reg.active.length > 0, `nothing registered: ${reg.reason}`);
  const native = run(build);
  unregisterNativeKernels(backend);
  for (let i = 0; i < original.length; i++) {
    assert.deepEqual(native[i].shape, original[i].shape, `output ${i} shape`);
  }
  return {
    original: original.map((o) => o.data),
    native: native.map((o) => o.data),
    shapes: original.map((o) => o.shape),
  };
}

/** max |got - want| <= rtol * max |want| + 1e-6, with a message naming the case. */
function assertClose(
  got: Float32Array,
  want: Float32Array,
  what: string,
  rtol = 2e-5,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    const d = Math.abs(got[i] - want[i]);
    worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
  }
  assert.ok(
    worst <= rtol * scale + 1e-6,
    `${what}: max abs diff ${worst} exceeds ${rtol} x max |value| ${scale}`,
  );
}

function compare(
  backend: NativeBackendName,
  what: string,
  build: () => tf.Tensor | tf.Tensor[],
  reference = build,
) {
  const { original, native } = originalAndNative(backend, build, reference);
  original.forEach((o, i) =>
    assertClose(native[i], o, `${backend} ${what} output ${i}`)
  );
}

/** The unfused form of a tfjs fused activation (leakyrelu alpha 0.1). */
function activate(y: tf.Tensor, activation: string): tf.Tensor {
  switch (activation) {
    case "relu":
      return tf.relu(y);
    case "relu6":
      return tf.relu6(y);
    case "leakyrelu":
      return tf.leakyRelu(y, 0.1);
    case "sigmoid":
      return tf.sigmoid(y);
    case "elu":
      return tf.elu(y);
    default:
      return y;
  }
}

let seed = 1;
function rand(shape: number[]): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, "float32", seed++);
}

/** `[...batch, m, k]` (or `[...batch, k, m]` when transposed) operand shapes. */
function operands(
  batchA: number[],
  batchB: number[],
  m: number,
  k: number,
  n: number,
  ta: boolean,
  tb: boolean,
) {
  return {
    a: rand([...batchA, ...(ta ? [k, m] : [m, k])]),
    b: rand([...batchB, ...(tb ? [n, k] : [k, n])]),
  };
}

const TRANSPOSES = [[false, false], [false, true], [true, false], [true, true]];

const MATMUL_CASES: {
  batchA: number[];
  batchB: number[];
  m: number;
  k: number;
  n: number;
}[] = [
  { batchA: [], batchB: [], m: 1, k: 1, n: 1 },
  { batchA: [], batchB: [], m: 7, k: 13, n: 5 },
  { batchA: [3], batchB: [3], m: 7, k: 13, n: 5 },
  { batchA: [3], batchB: [1], m: 7, k: 13, n: 5 },
  { batchA: [1], batchB: [3], m: 7, k: 13, n: 5 },
  { batchA: [3], batchB: [], m: 7, k: 13, n: 5 },
  { batchA: [2, 3], batchB: [3], m: 4, k: 6, n: 2 },
  { batchA: [], batchB: [], m: 200, k: 384, n: 1152 },
];

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `BatchMatMul on ${backend}: native matches tfjs for transposes, odd shapes and batch broadcasting`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        for (const c of MATMUL_CASES) {
          for (
            const [ta, tb] of [[false, false], [false, true], [true, false], [
              true,
              true,
            ]]
          ) {
            const { a, b } = operands(
              c.batchA,
              c.batchB,
              c.m,
              c.k,
              c.n,
              ta,
              tb,
            );
            compare(
              backend,
              `matMul [${a.shape}]${ta ? "^T" : ""} x [${b.shape}]${
                tb ? "^T" : ""
              }`,
              () => tf.matMul(a, b, ta, tb),
            );
            tf.dispose([a, b]);
          }
        }
      }),
  });

  Deno.test({
    name:
      `BatchMatMul on ${backend}: batch dims [2,1] and [1,3] broadcast like numpy`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const a = rand([2, 1, 4, 6]);
        const b = rand([1, 3, 6, 5]);
        // Reference: explicit tiling, so no broadcasting is involved.
        const want = tf.tidy(() =>
          tf.matMul(tf.tile(a, [1, 3, 1, 1]), tf.tile(b, [2, 1, 1, 1]))
            .dataSync() as Float32Array
        );
        registerNativeKernels(backend, { openblas: blas });
        const got = tf.tidy(() => {
          const y = tf.matMul(a, b);
          assert.deepEqual(y.shape, [2, 3, 4, 5]);
          return y.dataSync() as Float32Array;
        });
        assertClose(got, want, "broadcast [2,1] x [1,3]");
        tf.dispose([a, b]);
      }),
  });

  Deno.test({
    name: `BatchMatMul on ${backend}: an empty inner dimension gives zeros`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        registerNativeKernels(backend, { openblas: blas });
        const y = tf.matMul(tf.zeros([4, 0]), tf.zeros([0, 3]));
        assert.deepEqual(y.shape, [4, 3]);
        assert.deepEqual(Array.from(y.dataSync()), new Array(12).fill(0));
        tf.dispose(y);
      }),
  });

  Deno.test({
    name:
      `BatchMatMul on ${backend}: tf.grad through native matMul matches tfjs`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        // The large case only in PyTorch's [out, in] weight layout, to keep the
        // original kernels' share of the test time small.
        const cases = [
          ...[MATMUL_CASES[1], MATMUL_CASES[2]].flatMap((c) =>
            TRANSPOSES.map(([ta, tb]) => ({ ...c, ta, tb }))
          ),
          { ...MATMUL_CASES[7], ta: false, tb: true },
        ];
        for (const { ta, tb, ...c } of cases) {
          {
            const { a, b } = operands(
              c.batchA,
              c.batchB,
              c.m,
              c.k,
              c.n,
              ta,
              tb,
            );
            const r = rand([...c.batchA, c.m, c.n]);
            const f = (x: tf.Tensor, y: tf.Tensor) =>
              tf.sum(tf.mul(tf.matMul(x, y, ta, tb), r));
            compare(
              backend,
              `grad matMul [${a.shape}] x [${b.shape}] ${ta} ${tb}`,
              () => {
                const { value, grads } = tf.valueAndGrads(f)([a, b]);
                return [value, ...grads];
              },
            );
            tf.dispose([a, b, r]);
          }
        }
      }),
  });

  Deno.test({
    name:
      `_FusedMatMul on ${backend}: native matches unfused tfjs for bias and each activation`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const activations = [
          "linear",
          "relu",
          "relu6",
          "leakyrelu",
          "sigmoid",
          "elu",
        ] as const;
        for (const activation of activations) {
          for (
            const [ta, tb] of [[false, false], [false, true], [true, true]]
          ) {
            const { a, b } = operands([3], [1], 7, 13, 5, ta, tb);
            const bias = rand([5]);
            const fused = {
              a,
              b,
              transposeA: ta,
              transposeB: tb,
              activation,
              leakyreluAlpha: 0.1,
            };
            compare(
              backend,
              `fused ${activation} ${ta} ${tb}`,
              () => [
                tf.fused.matMul({ ...fused, bias }),
                tf.fused.matMul(fused),
              ],
              () => {
                const y = tf.matMul(a, b, ta, tb);
                return [
                  activate(y.add(bias), activation),
                  activate(y, activation),
                ];
              },
            );
            tf.dispose([a, b, bias]);
          }
        }
      }),
  });

  Deno.test({
    name:
      `_FusedMatMul on ${backend}: prelu and 2-D bias fall back and stay correct`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const a = rand([6, 8]);
        const b = rand([8, 5]);
        const alpha = rand([5]);
        const bias2d = rand([6, 5]);
        // The wasm backend's own kernel rejects a 2-D bias; only cpu has one.
        compare(backend, "fused prelu / 2-D bias", () => [
          tf.fused.matMul({
            a,
            b,
            activation: "prelu",
            preluActivationWeights: alpha,
          }),
          ...(backend === "cpu"
            ? [tf.fused.matMul({ a, b, bias: bias2d })]
            : []),
        ]);
        tf.dispose([a, b, alpha, bias2d]);
      }),
  });

  Deno.test({
    name: `_FusedMatMul on ${backend}: gradients with bias match unfused tfjs`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const a = rand([200, 384]);
        const w = rand([1152, 384]);
        const bias = rand([1152]);
        const r = rand([200, 1152]);
        const f = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
          tf.sum(
            tf.mul(
              tf.fused.matMul({
                a: x as tf.Tensor2D,
                b: y as tf.Tensor2D,
                transposeB: true,
                bias: z,
              }),
              r,
            ),
          );
        const unfused = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
          tf.sum(tf.mul(tf.matMul(x, y, false, true).add(z), r));
        compare(
          backend,
          "fused grads",
          () => {
            const { value, grads } = tf.valueAndGrads(f)([a, w, bias]);
            return [value, ...grads];
          },
          () => {
            const { value, grads } = tf.valueAndGrads(unfused)([a, w, bias]);
            return [value, ...grads];
          },
        );
        tf.dispose([a, w, bias, r]);
      }),
  });

  Deno.test({
    name: `Conv2D on ${backend}: a stride-14 patch embedding matches tfjs`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const filter = rand([14, 14, 3, 8]);
        for (const shape of [[2, 28, 42, 3], [1, 30, 45, 3], [1, 14, 14, 3]]) {
          const x = rand(shape);
          for (const pad of ["valid", "same", 0] as const) {
            if (pad !== "valid" && shape[1] % 14 !== 0) continue;
            compare(backend, `patch conv [${shape}] pad ${pad}`, () =>
              tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 14, pad));
          }
          tf.dispose(x);
        }
        tf.dispose(filter);
      }),
  });

  Deno.test({
    name:
      `Conv2D on ${backend}: 1x1, overlapping and dilated convolutions stay correct`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const x = rand([2, 9, 7, 4]);
        const f1 = rand([1, 1, 4, 6]);
        const f3 = rand([3, 3, 4, 6]);
        compare(backend, "1x1 / 3x3 / dilated conv", () => [
          tf.conv2d(x as tf.Tensor4D, f1 as tf.Tensor4D, 1, "valid"),
          tf.conv2d(x as tf.Tensor4D, f3 as tf.Tensor4D, 1, "same"),
          tf.conv2d(x as tf.Tensor4D, f3 as tf.Tensor4D, 3, "valid"),
          tf.conv2d(x as tf.Tensor4D, f3 as tf.Tensor4D, 1, "valid", "NHWC", 2),
        ]);
        tf.dispose([x, f1, f3]);
      }),
  });

  Deno.test({
    name:
      `FusedConv2D on ${backend}: patch embedding with bias and relu matches tfjs`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const x = rand([2, 28, 28, 3]);
        const filter = rand([14, 14, 3, 8]);
        const bias = rand([8]);
        compare(backend, "fused patch conv", () => [
          tf.fused.conv2d({
            x: x as tf.Tensor4D,
            filter: filter as tf.Tensor4D,
            strides: 14,
            pad: "valid",
            bias,
          }),
          tf.fused.conv2d({
            x: x as tf.Tensor4D,
            filter: filter as tf.Tensor4D,
            strides: 14,
            pad: "valid",
            bias,
            activation: "relu",
          }),
        ]);
        tf.dispose([x, filter, bias]);
      }),
  });

  Deno.test({
    name:
      `Transpose on ${backend}: native gives tfjs's exact values at every rank`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const cases: [number[], number[]][] = [
          [[16, 5, 3, 2, 8], [2, 0, 3, 1, 4]], // ViT qkv split, rank 5
          [[3, 4, 2, 5, 8], [1, 3, 0, 2, 4]], // its gradient
          [[2, 3, 4, 5, 6, 7], [5, 3, 1, 0, 2, 4]], // innermost axis moves
          [[2, 1, 3, 1, 4], [4, 3, 2, 1, 0]], // size-1 axes
          [[2, 3, 4, 5, 6], [0, 1, 3, 4, 2]], // collapses to rank 3
          [[7, 13], [1, 0]],
          [[4, 0, 3, 2, 2], [4, 3, 2, 1, 0]], // empty
        ];
        for (const [shape, perm] of cases) {
          const x = rand(shape);
          const { original, native } = originalAndNative(
            backend,
            () => tf.transpose(x, perm),
          );
          assert.deepEqual(
            native[0],
            original[0],
            `transpose [${shape}] by [${perm}]`,
          );
          tf.dispose(x);
        }
      }),
  });

  Deno.test({
    name: `native kernels on ${backend} leak no tensors or backend data`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const a = rand([3, 7, 13]);
        const b = rand([13, 5]);
        const x = rand([2, 28, 28, 3]);
        const filter = rand([14, 14, 3, 8]);
        registerNativeKernels(backend, { openblas: blas });
        const step = () =>
          tf.tidy(() => {
            const g = tf.grads((p: tf.Tensor, q: tf.Tensor) =>
              tf.sum(
                tf.fused.matMul({
                  a: p.reshape([21, 13]) as tf.Tensor2D,
                  b: q as tf.Tensor2D,
                  bias: tf.ones([5]),
                }),
              )
            )([a, b]);
            tf.matMul(a, tf.expandDims(b, 0)).dataSync();
            tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, 14, "valid")
              .dataSync();
            tf.transpose(x.reshape([2, 28, 2, 14, 3]), [2, 0, 3, 1, 4])
              .dataSync();
            tf.clone(a).dataSync();
            g.forEach((t) => t.dataSync());
          });
        step();
        const tensors = tf.memory().numTensors;
        const dataIds = tf.engine().backend.numDataIds();
        for (let i = 0; i < 3; i++) step();
        assert.equal(tf.memory().numTensors, tensors);
        assert.equal(tf.engine().backend.numDataIds(), dataIds);
        tf.dispose([a, b, x, filter]);
      }),
  });
}

Deno.test({
  name:
    "Identity on wasm: a native clone shares the data and outlives its source",
  ignore,
  fn: () =>
    onBackend("wasm", () => {
      const backend = tf.engine().backend as unknown as {
        getMemoryOffset(dataId: unknown): number;
        numDataIds(): number;
      };
      const x = rand([5, 7]);
      const want = x.dataSync().slice();
      const dataIds = backend.numDataIds();
      registerNativeKernels("wasm", { openblas: blas, kernels: ["Identity"] });
      const y = tf.clone(x);
      assert.equal(
        backend.getMemoryOffset(y.dataId),
        backend.getMemoryOffset(x.dataId),
      );
      assert.equal(backend.numDataIds(), dataIds);
      x.dispose();
      assert.deepEqual(y.dataSync(), want);
      y.dispose();
      assert.equal(backend.numDataIds(), dataIds - 1);
    }),
});

Deno.test({
  name:
    "registerNativeKernels('cpu') leaves Identity alone (the cpu backend shares already)",
  ignore,
  fn: () => {
    const before = tf.getKernel("Identity", "cpu");
    try {
      assert.deepEqual(
        registerNativeKernels("cpu", { openblas: blas, kernels: ["Identity"] }),
        {
          active: [],
          reason: 'None of the kernels Identity is replaced on backend "cpu"',
        },
      );
      assert.equal(
        registerNativeKernels("cpu", { openblas: blas }).active.includes(
          "Identity",
        ),
        false,
      );
      assert.equal(tf.getKernel("Identity", "cpu"), before);
    } finally {
      unregisterNativeKernels();
    }
  },
});

Deno.test({
  name:
    "registerNativeKernels() reports the kernels it replaced and unregister restores the originals",
  ignore,
  fn: () =>
    onBackend("wasm", () => {
      const before = tf.getKernel("BatchMatMul", "wasm");
      const reg = registerNativeKernels("wasm", {
        openblas: blas,
        kernels: ["BatchMatMul", "Conv2D"],
        cKernels: false,
      });
      assert.deepEqual(reg, {
        active: ["BatchMatMul", "Conv2D"],
        cReason: "disabled",
      });
      assert.deepEqual(activeNativeKernels("wasm"), ["BatchMatMul", "Conv2D"]);
      assert.notEqual(
        tf.getKernel("BatchMatMul", "wasm").kernelFunc,
        before.kernelFunc,
      );
      assert.equal(
        tf.getKernel("BatchMatMul", "wasm").setupFunc,
        before.setupFunc,
      );
      // Registering again replaces, not stacks.
      registerNativeKernels("wasm", {
        openblas: blas,
        kernels: ["BatchMatMul"],
        cKernels: false,
      });
      assert.deepEqual(unregisterNativeKernels("wasm"), ["BatchMatMul"]);
      assert.equal(tf.getKernel("BatchMatMul", "wasm"), before);
      assert.deepEqual(activeNativeKernels("wasm"), []);
    }),
});

Deno.test({
  name:
    "registerNativeKernels() for a backend that is not active takes effect after setBackend",
  ignore,
  fn: () =>
    onBackend("cpu", async () => {
      registerNativeKernels("wasm", {
        openblas: blas,
        kernels: ["BatchMatMul"],
      });
      await tf.setBackend("wasm");
      const a = rand([5, 3]);
      const b = rand([3, 4]);
      const got = tf.matMul(a, b).dataSync() as Float32Array;
      unregisterNativeKernels("wasm");
      const want = tf.matMul(a, b).dataSync() as Float32Array;
      assertClose(got, want, "wasm after setBackend");
      tf.dispose([a, b]);
    }),
});

Deno.test("registerNativeKernels() rejects an unknown backend or kernel name", () => {
  assert.throws(
    () => registerNativeKernels("webgl" as NativeBackendName),
    { message: 'Native kernels: backend must be "wasm" or "cpu", got "webgl"' },
  );
  assert.throws(
    () => registerNativeKernels("cpu", { kernels: ["Softmax" as "Conv2D"] }),
    /unknown kernel "Softmax", expected one of BatchMatMul, _FusedMatMul, Conv2D, FusedConv2D, Transpose, Identity/,
  );
});

Deno.test({
  name: "OpenBlas.sgemm() honours strides, transposes, alpha and beta",
  ignore,
  fn: () => {
    const b = blas!;
    // A is 2x3 stored with row stride 4; B^T is stored as 2x3 (so B is 3x2).
    const a = new Float32Array([1, 2, 3, 99, 4, 5, 6, 99]);
    const bt = new Float32Array([1, 0, 2, 0, 1, 1]);
    const c = new Float32Array([10, 10, 10, 10]);
    b.sgemm({
      m: 2,
      n: 2,
      k: 3,
      a,
      lda: 4,
      b: bt,
      transB: true,
      c,
      alpha: 2,
      beta: 0.5,
    });
    // A @ B = [[1*1+3*2, 2+3], [4+6*2, 5+6]] = [[7, 5], [16, 11]]
    assert.deepEqual(Array.from(c), [19, 15, 37, 27]);
  },
});

Deno.test({
  name: "OpenBlas.sgemm() rejects a buffer too small for the described matrix",
  ignore,
  fn: () => {
    assert.throws(
      () =>
        blas!.sgemm({
          m: 2,
          n: 2,
          k: 3,
          a: new Float32Array(5),
          b: new Float32Array(6),
          c: new Float32Array(4),
        }),
      { message: "sgemm matrix A: 2x3 with stride 3 needs 6 floats, got 5" },
    );
    assert.throws(
      () =>
        blas!.sgemm({
          m: 2,
          n: 2,
          k: 3,
          a: new Float32Array(6),
          b: new Float32Array(6),
          c: new Float32Array(4),
          ldc: 1,
        }),
      { message: "sgemm matrix C: row stride 1 is below its 2 columns" },
    );
  },
});

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `GeluParts on ${backend}: one pass matches the op-by-op GELU and slope, and is left out under a tape`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const x = tf.tidy(() =>
          tf.concat([
            tf.mul(tf.randomNormal([999], 0, 1, "float32", 9), 3),
            tf.tensor1d([0, -0, 8, -8, 30, -30, 1e-8, -1e-8]),
          ])
        );
        const parts = () => {
          const p = geluParts(x, { derivative: true });
          return [p.y, p.dydx!];
        };
        compare(backend, "geluParts", parts);
        const reg = registerNativeKernels(backend, { openblas: blas });
        assert.ok(
          tf.getKernel("GeluParts", backend),
          reg.reason ?? "registered",
        );
        // Under a tape the ops run, so that autograd has gradients.
        const g = tf.grad((t: tf.Tensor) => tf.sum(geluParts(t).y))(x);
        const slope = geluParts(x, { derivative: true }).dydx!;
        assertClose(
          g.dataSync() as Float32Array,
          slope.dataSync() as Float32Array,
          `${backend} autograd of gelu vs the kernel's slope`,
        );
        unregisterNativeKernels(backend);
        assert.equal(tf.getKernel("GeluParts", backend), undefined);
        tf.dispose([x, g, slope]);
      }),
  });
}

Deno.test({
  name:
    "A batched product of small matrices runs on one OpenBLAS thread and restores the count",
  ignore,
  fn: () =>
    onBackend("wasm", () => {
      // The TypeScript loop (the C kernels' batch is tested in
      // c_kernels_test.ts).
      registerNativeKernels("wasm", { openblas: blas, cKernels: false });
      const before = blas!.threads;
      const threads: number[] = [];
      const sgemm = blas!.sgemm;
      blas!.sgemm = (args) => {
        threads.push(blas!.threads);
        sgemm(args);
      };
      try {
        tf.tidy(() => {
          const a = tf.ones([6, 17, 8]);
          tf.matMul(a, a, false, true).dataSync(); // 6 products of 17 x 17 x 8
          tf.matMul(tf.ones([40, 300]), tf.ones([300, 20])).dataSync(); // one product
        });
      } finally {
        blas!.sgemm = sgemm;
      }
      assert.deepEqual(threads, [1, 1, 1, 1, 1, 1, before]);
      assert.equal(blas!.threads, before);
    }),
});

for (const backend of BACKENDS) {
  Deno.test({
    name:
      `SoftmaxGrad on ${backend}: one kernel matches the op-by-op softmax gradient and autograd`,
    ignore,
    fn: () =>
      onBackend(backend, () => {
        const s = tf.randomNormal([3, 4, 257], 0, 3, "float32", 11);
        const probs = tf.softmax(s, -1);
        const dy = tf.randomNormal([3, 4, 257], 0, 1, "float32", 12);
        compare(backend, "softmaxGrad", () => softmaxGrad(probs, dy));
        registerNativeKernels(backend, { openblas: blas });
        assert.ok(tf.getKernel("SoftmaxGrad", backend));
        const viaKernel = softmaxGrad(probs, dy);
        // Autograd of softmax (tfjs's own gradient) gives the same values.
        const auto = tf.grad((t: tf.Tensor) =>
          tf.sum(tf.mul(tf.softmax(t, -1), dy))
        )(s);
        assertClose(
          viaKernel.dataSync() as Float32Array,
          auto.dataSync() as Float32Array,
          `${backend} SoftmaxGrad vs autograd`,
        );
        assert.throws(
          () =>
            tf.engine().runKernel(
              "SoftmaxGrad",
              { probs, dy: s.slice(0, 1) },
              {},
            ),
          /probs and dy must be float32 of one shape, got float32 \[3,4,257\] and float32 \[1,4,257\]/,
        );
        unregisterNativeKernels(backend);
        assert.equal(tf.getKernel("SoftmaxGrad", backend), undefined);
        tf.dispose([s, probs, dy, viaKernel, auto]);
      }),
  });
}
