import assert from "node:assert/strict";
import {
  makeNoisyLabels,
  matrixNoise,
  type NoisyLabels,
  pairFlipNoise,
  symmetricNoise,
} from "../lib/noise/label_noise.ts";
import { join } from "node:path";

// Expected label lists were printed by NumPy 2.4 running the reference's
// symmetric noise and Co-teaching's noisify_pairflip / multiclass_noisify.

const c2 = Int32Array.from([0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0]);
const c3 = Int32Array.from({ length: 15 }, (_, i) => i % 3);
const c4 = Int32Array.from({ length: 16 }, (_, i) => i % 4);
const T3 = [[0.7, 0.1, 0.2], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]];

/** Labels spread evenly over k classes, in a fixed scrambled order. */
function spread(n: number, k: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (i * 7919) % k);
}

function checkConsistent(r: NoisyLabels): void {
  let flipped = 0;
  for (let i = 0; i < r.clean.length; i++) {
    assert.equal(r.isNoisy[i], r.noisy[i] !== r.clean[i] ? 1 : 0);
    flipped += r.isNoisy[i];
  }
  assert.equal(r.actualRate, flipped / r.clean.length);
}

Deno.test("symmetricNoise() matches the reference with three classes", () => {
  const r = symmetricNoise(c3, 3, 0.6, { seed: 9 });
  assert.deepEqual(
    Array.from(r.noisy),
    [1, 0, 1, 1, 0, 1, 2, 0, 2, 1, 1, 0, 0, 2, 2],
  );
  assert.equal(r.mode, "symmetric");
  assert.equal(r.rate, 0.6);
  assert.equal(r.seed, 9);
  assert.deepEqual(r.clean, c3);
  checkConsistent(r);
});

Deno.test("symmetricNoise() with two classes draws no index for the flip", () => {
  // choice() over the one other class consumes no draw in NumPy; a draw
  // there would shift every later rand() and change this list.
  const r = symmetricNoise(c2, 2, 0.8, { seed: 7 });
  assert.deepEqual(
    Array.from(r.noisy),
    [1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0],
  );
  checkConsistent(r);
});

Deno.test("symmetricNoise() flips about rate of labels, never to the same class", () => {
  const clean = spread(20000, 7);
  for (const rate of [0, 0.2, 0.6, 1]) {
    const r = symmetricNoise(clean, 7, rate);
    assert.ok(
      Math.abs(r.actualRate - rate) < 0.015,
      `${rate}: ${r.actualRate}`,
    );
    assert.equal(r.seed, 0);
    checkConsistent(r);
  }
});

Deno.test("symmetricNoise() leaves its input untouched and is deterministic", () => {
  const clean = spread(500, 5);
  const copy = clean.slice();
  const a = symmetricNoise(clean, 5, 0.4, { seed: 3 });
  const b = symmetricNoise(clean, 5, 0.4, { seed: 3 });
  const c = symmetricNoise(clean, 5, 0.4, { seed: 4 });
  assert.deepEqual(clean, copy);
  assert.notEqual(a.clean, clean);
  assert.deepEqual(a.noisy, b.noisy);
  assert.notDeepEqual(a.noisy, c.noisy);
});

Deno.test("pairFlipNoise() matches Co-teaching's noisify_pairflip", () => {
  const r = pairFlipNoise(c4, 4, 0.45, { seed: 2 });
  assert.deepEqual(
    Array.from(r.noisy),
    [0, 1, 2, 3, 0, 1, 2, 0, 0, 1, 3, 3, 0, 1, 2, 0],
  );
  assert.equal(r.mode, "pairflip");
  checkConsistent(r);
});

Deno.test("pairFlipNoise() only moves y to (y + 1) mod K, at about rate", () => {
  for (const [k, rate] of [[2, 0.45], [7, 0.2], [11, 0.8]]) {
    const r = pairFlipNoise(spread(20000, k), k, rate, { seed: 1 });
    for (let i = 0; i < r.clean.length; i++) {
      if (r.isNoisy[i]) assert.equal(r.noisy[i], (r.clean[i] + 1) % k);
    }
    assert.ok(Math.abs(r.actualRate - rate) < 0.015, `${k}: ${r.actualRate}`);
    checkConsistent(r);
  }
});

Deno.test("pairFlipNoise() at rate 0 returns the clean labels", () => {
  const r = pairFlipNoise(c4, 4, 0);
  assert.deepEqual(r.noisy, c4);
  assert.equal(r.actualRate, 0);
});

Deno.test("pairFlipNoise() is deterministic per seed", () => {
  const clean = spread(400, 6);
  const a = pairFlipNoise(clean, 6, 0.3, { seed: 8 });
  assert.deepEqual(pairFlipNoise(clean, 6, 0.3, { seed: 8 }).noisy, a.noisy);
  assert.notDeepEqual(pairFlipNoise(clean, 6, 0.3, { seed: 9 }).noisy, a.noisy);
});

Deno.test("matrixNoise() matches Co-teaching's multiclass_noisify", () => {
  const r = matrixNoise(c3, T3, { seed: 17 });
  assert.deepEqual(
    Array.from(r.noisy),
    [0, 1, 2, 2, 1, 2, 0, 1, 1, 2, 1, 2, 0, 1, 2],
  );
  assert.equal(r.mode, "matrix");
  assert.equal(r.seed, 17);
  // Expected flip probability: mean of 1 - T[y][y] = (0.3 + 0 + 0.5) / 3.
  assert.ok(Math.abs(r.rate - 0.8 / 3) < 1e-12);
  checkConsistent(r);
});

Deno.test("matrixNoise() follows the transition frequencies", () => {
  const clean = spread(30000, 3);
  const r = matrixNoise(clean, T3, { seed: 5 });
  const counts = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
  for (let i = 0; i < clean.length; i++) counts[clean[i]][r.noisy[i]]++;
  for (let y = 0; y < 3; y++) {
    const total = counts[y][0] + counts[y][1] + counts[y][2];
    for (let j = 0; j < 3; j++) {
      assert.ok(
        Math.abs(counts[y][j] / total - T3[y][j]) < 0.02,
        `T[${y}][${j}]: ${counts[y][j] / total}`,
      );
    }
  }
  assert.deepEqual(matrixNoise(clean, T3, { seed: 5 }).noisy, r.noisy);
});

Deno.test("makeNoisyLabels() dispatches on mode with the reference defaults", () => {
  const clean = spread(300, 4);
  assert.deepEqual(
    makeNoisyLabels(clean, 4).noisy,
    symmetricNoise(clean, 4, 0.2, { seed: 0 }).noisy,
  );
  assert.deepEqual(
    makeNoisyLabels(clean, 4, { mode: "pairflip", rate: 0.3, seed: 2 }).noisy,
    pairFlipNoise(clean, 4, 0.3, { seed: 2 }).noisy,
  );
  const t = [[0.5, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [
    0.1,
    0.2,
    0.3,
    0.4,
  ]];
  const m = makeNoisyLabels(clean, 4, { mode: "matrix", matrix: t, seed: 6 });
  assert.deepEqual(m.noisy, matrixNoise(clean, t, { seed: 6 }).noisy);
  assert.equal(m.mode, "matrix");
});

Deno.test("makeNoisyLabels() handles an empty label set", () => {
  const r = makeNoisyLabels(new Int32Array(0), 3, { rate: 0.5 });
  assert.equal(r.noisy.length, 0);
  assert.equal(r.actualRate, 0);
});

Deno.test("noise functions reject a bad rate, class count, label or seed", () => {
  for (const rate of [-0.1, 1.5, NaN]) {
    assert.throws(() => symmetricNoise(c3, 3, rate), {
      name: "RangeError",
      message: `Noise rate must be a number in [0, 1], got ${rate}`,
    });
    assert.throws(() => pairFlipNoise(c3, 3, rate), {
      message: `Noise rate must be a number in [0, 1], got ${rate}`,
    });
  }
  for (const k of [1, 0, 2.5]) {
    assert.throws(() => symmetricNoise(new Int32Array(1), k, 0.2), {
      message: `Number of classes must be an integer >= 2, got ${k}`,
    });
    assert.throws(() => pairFlipNoise(new Int32Array(1), k, 0.2), {
      message: `Number of classes must be an integer >= 2, got ${k}`,
    });
  }
  assert.throws(() => symmetricNoise(Int32Array.from([0, 2, 3]), 3, 0.2), {
    message: "Clean label 3 at index 2 is outside [0, 3)",
  });
  assert.throws(() => pairFlipNoise(Int32Array.from([-1]), 3, 0.2), {
    message: "Clean label -1 at index 0 is outside [0, 3)",
  });
  assert.throws(() => matrixNoise(Int32Array.from([0, 3]), T3), {
    message: "Clean label 3 at index 1 is outside [0, 3)",
  });
  for (const seed of [-1, 2 ** 32, 0.5]) {
    assert.throws(() => symmetricNoise(c3, 3, 0.2, { seed }), {
      message: `Noise seed must be an integer in [0, 4294967295], got ${seed}`,
    });
    assert.throws(() => matrixNoise(c3, T3, { seed }), {
      message: `Noise seed must be an integer in [0, 4294967295], got ${seed}`,
    });
  }
});

Deno.test("matrixNoise() rejects a matrix that is not row-stochastic K x K", () => {
  assert.throws(() => matrixNoise(c3, [[1]]), {
    message: "Transition matrix must be a K x K array with K >= 2, got 1 rows",
  });
  assert.throws(() => matrixNoise(c3, [[1, 0], [0, 1, 0]]), {
    message: "Transition matrix row 1 must have 2 entries, got 3",
  });
  assert.throws(() => matrixNoise(c3, [[0.5, 0.4], [0, 1]]), {
    message: "Transition matrix row 0 sums to 0.9, expected 1 (within 1e-6)",
  });
  assert.throws(() => matrixNoise(c3, [[1.5, -0.5], [0, 1]]), {
    message:
      "Transition matrix entry [0][0] must be a number in [0, 1], got 1.5",
  });
  // Within tolerance is accepted.
  matrixNoise(Int32Array.from([0, 1]), [[0.5, 0.5 + 5e-7], [0, 1]]);
});

Deno.test("makeNoisyLabels() rejects an unknown mode and a missing or mis-sized matrix", () => {
  assert.throws(
    () =>
      makeNoisyLabels(c3, 3, {
        mode: "uniform" as unknown as "symmetric",
      }),
    {
      message:
        'Unknown noise mode "uniform": expected one of symmetric, pairflip, matrix',
    },
  );
  assert.throws(() => makeNoisyLabels(c3, 3, { mode: "matrix" }), {
    message: 'Noise mode "matrix" needs a transition matrix',
  });
  assert.throws(
    () => makeNoisyLabels(c3, 4, { mode: "matrix", matrix: T3 }),
    {
      message:
        "Transition matrix has 3 rows, expected 4 (the number of classes)",
    },
  );
});

// tasks/noise.ts is a thin CLI over makeNoisyLabels(); its tests live here.

const ROOT = new URL("../", import.meta.url).pathname;

async function runTask(
  files: Record<string, string>,
  args: (dir: string) => string[],
): Promise<string[]> {
  const { main } = await import("../tasks/noise.ts");
  const dir = await Deno.makeTempDir();
  try {
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    const lines: string[] = [];
    await main(args(dir), { print: (line) => lines.push(line) });
    return lines;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("noise task prints the reference's noisy labels as JSON", async () => {
  const lines = await runTask(
    { "l.json": "[0,1,2,3,4,0,1,2,3,4]" },
    (d) => ["--labels", join(d, "l.json"), "--classes", "5", "--rate", "0.5"],
  );
  assert.deepEqual(lines, [
    '{"noisy":[0,1,2,3,1,4,1,2,2,4],"is_noisy":[0,0,0,0,1,1,0,0,1,0],"actual_rate":0.3}',
  ]);
});

Deno.test("noise task reads {labels} files and runs pairflip and matrix modes", async () => {
  const lines = await runTask(
    {
      "l.json": JSON.stringify({ labels: Array.from(c3) }),
      "m.json": JSON.stringify({ matrix: T3 }),
    },
    (d) => [
      "--labels",
      join(d, "l.json"),
      "--classes",
      "3",
      "--mode",
      "matrix",
      "--matrix",
      join(d, "m.json"),
      "--seed",
      "17",
    ],
  );
  const out = JSON.parse(lines[0]);
  assert.deepEqual(out.noisy, [0, 1, 2, 2, 1, 2, 0, 1, 1, 2, 1, 2, 0, 1, 2]);
  assert.equal(out.actual_rate, 3 / 15);
  const pair = await runTask(
    { "l.json": JSON.stringify(Array.from(c4)) },
    (d) => [
      "--labels",
      join(d, "l.json"),
      "--classes=4",
      "--rate=0.45",
      "--seed=2",
      "--mode=pairflip",
    ],
  );
  assert.deepEqual(
    JSON.parse(pair[0]).noisy,
    [0, 1, 2, 3, 0, 1, 2, 0, 0, 1, 3, 3, 0, 1, 2, 0],
  );
});

Deno.test("noise task rejects bad flags and files with one clear error", async () => {
  const files = {
    "l.json": "[0,1,2]",
    "bad.json": '[0,"one",2]',
    "obj.json": '{"values":[0]}',
    "broken.json": "[0,",
    "m.json": "[[1,0,0],[0,1,0],[0,0,1]]",
  };
  const cases: [(d: string) => string[], RegExp][] = [
    [
      () => ["--classes", "3"],
      /^Required option '--labels <file>' not specified; see `deno task noise --help`$/,
    ],
    [
      (d) => ["--labels", join(d, "l.json"), "--classes", "3"],
      /^--rate is required with --mode symmetric$/,
    ],
    [
      (d) => ["--labels", join(d, "l.json"), "--classes", "x", "--rate", "0.1"],
      /^--classes must be an integer, got "x"$/,
    ],
    [
      (
        d,
      ) => ["--labels", join(d, "l.json"), "--classes", "3", "--rate", "lots"],
      /^--rate must be a number, got "lots"$/,
    ],
    [
      (d) => ["--labels", join(d, "l.json"), "--classes", "3", "--rate", "1.5"],
      /^Noise rate must be a number in \[0, 1\], got 1.5$/,
    ],
    [
      (
        d,
      ) => [
        "--labels",
        join(d, "l.json"),
        "--classes",
        "3",
        "--rate",
        "0.1",
        "--seed",
        "-1",
      ],
      /^Noise seed must be an integer in \[0, 4294967295\], got -1$/,
    ],
    [
      (d) => ["--labels", join(d, "l.json"), "--classes", "2", "--rate", "0.1"],
      /^Clean label 2 at index 2 is outside \[0, 2\)$/,
    ],
    [
      (
        d,
      ) => [
        "--labels",
        join(d, "l.json"),
        "--classes",
        "3",
        "--rate",
        "0.1",
        "--mode",
        "uniform",
      ],
      /^--mode must be one of symmetric, pairflip, matrix, got "uniform"$/,
    ],
    [
      (
        d,
      ) => [
        "--labels",
        join(d, "l.json"),
        "--classes",
        "3",
        "--mode",
        "matrix",
      ],
      /^--matrix is required with --mode matrix$/,
    ],
    [
      (
        d,
      ) => [
        "--labels",
        join(d, "l.json"),
        "--classes",
        "3",
        "--mode",
        "matrix",
        "--rate",
        "0.1",
        "--matrix",
        join(d, "m.json"),
      ],
      /^--rate is not used with --mode matrix/,
    ],
    [
      (
        d,
      ) => [
        "--labels",
        join(d, "l.json"),
        "--classes",
        "3",
        "--rate",
        "0.1",
        "--matrix",
        join(d, "m.json"),
      ],
      /^--matrix is only used with --mode matrix$/,
    ],
    [
      (
        d,
      ) => [
        "--labels",
        join(d, "l.json"),
        "--classes",
        "4",
        "--mode",
        "matrix",
        "--matrix",
        join(d, "m.json"),
      ],
      /^Transition matrix has 3 rows, expected 4/,
    ],
    [
      (
        d,
      ) => [
        "--labels",
        join(d, "l.json"),
        "--classes",
        "3",
        "--mode",
        "matrix",
        "--matrix",
        join(d, "l.json"),
      ],
      /^Matrix file ".*l\.json" must hold a K x K array/,
    ],
    [
      (
        d,
      ) => ["--labels", join(d, "bad.json"), "--classes", "3", "--rate", "0.1"],
      /^Labels file ".*bad\.json" entry 1 is "one", expected an integer$/,
    ],
    [
      (
        d,
      ) => ["--labels", join(d, "obj.json"), "--classes", "3", "--rate", "0.1"],
      /^Labels file ".*obj\.json" must hold an array of integers or \{"labels": \[\.\.\.\]\}$/,
    ],
    [
      (
        d,
      ) => [
        "--labels",
        join(d, "broken.json"),
        "--classes",
        "3",
        "--rate",
        "0.1",
      ],
      /^Cannot read --labels file ".*broken\.json": /,
    ],
    [
      (
        d,
      ) => [
        "--labels",
        join(d, "none.json"),
        "--classes",
        "3",
        "--rate",
        "0.1",
      ],
      /^Cannot read --labels file ".*none\.json": no such file$/,
    ],
    [
      (
        d,
      ) => [
        "--labels",
        join(d, "l.json"),
        "--classes",
        "3",
        "--rate",
        "0.1",
        "--bogus",
      ],
      /^Unknown option '--bogus'; see `deno task noise --help`$/,
    ],
  ];
  for (const [args, pattern] of cases) {
    await assert.rejects(runTask(files, args), (err: Error) => {
      assert.match(err.message, pattern);
      return true;
    });
  }
});

Deno.test("noise task runs with --allow-read only, exits 1 on bad input and 2 on bad usage", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "l.json");
    await Deno.writeTextFile(file, "[1,0,1,0]");
    const run = (extra: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "tasks/noise.ts",
          "--labels",
          file,
          ...extra,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
    const ok = await run(["--classes", "2", "--rate", "0"]);
    const text = new TextDecoder();
    assert.equal(ok.code, 0, text.decode(ok.stderr));
    assert.deepEqual(JSON.parse(text.decode(ok.stdout)), {
      noisy: [1, 0, 1, 0],
      is_noisy: [0, 0, 0, 0],
      actual_rate: 0,
    });
    const bad = await run(["--classes", "2", "--rate", "2"]);
    assert.equal(bad.code, 1);
    assert.equal(
      text.decode(bad.stderr).trim(),
      "noise: Noise rate must be a number in [0, 1], got 2",
    );
    const usage = await run(["--classes", "2", "--rat", "0.1"]);
    assert.equal(usage.code, 2);
    assert.equal(
      text.decode(usage.stderr),
      "noise: Unknown option '--rat' (did you mean --rate?); see `deno task noise --help`\n",
    );
    const help = await run(["--help"]);
    assert.equal(help.code, 0, text.decode(help.stderr));
    assert.match(text.decode(help.stdout), /--mode <mode>/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
