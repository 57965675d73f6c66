import assert from "node:assert/strict";
import { join } from "node:path";
import { noiseParity } from "../lib/parity/noise.ts";
import type { HostTensor } from "../lib/weights/host_tensor.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const FIXTURES = FIXTURES_URL
  .pathname;

async function withFixture(
  doc: unknown,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      join(dir, "noise_golden.json"),
      typeof doc === "string" ? doc : JSON.stringify(doc),
    );
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function labels(t: HostTensor | undefined): number[] {
  assert.ok(t, "missing tensor");
  assert.equal(t.dtype, "I64");
  assert.deepEqual(t.shape, [t.data.length]);
  return Array.from(t.data as BigInt64Array, Number);
}

Deno.test("noiseParity() reproduces every golden noisy label set exactly", async () => {
  const golden = JSON.parse(
    await Deno.readTextFile(join(FIXTURES, "noise_golden.json")),
  );
  const got = await noiseParity(FIXTURES);
  const datasets = ["ham10000", "aptos", "bloodmnist", "organcmnist"];
  let count = 0;
  for (const name of datasets) {
    const rates = Object.keys(golden[name].noisy);
    assert.ok(rates.length >= 7, name);
    for (const rate of rates) {
      const key = `noise.${name}.${rate}`;
      const mine = labels(got.get(key));
      const want: number[] = golden[name].noisy[rate];
      assert.equal(mine.length, want.length, key);
      const bad = mine.findIndex((y, i) => y !== want[i]);
      assert.equal(bad, -1, `${key} differs first at index ${bad}`);
      count++;
    }
  }
  assert.equal(got.size, count);
});

Deno.test("noiseParity() uses the seed, derives the class count and never reads golden labels", async () => {
  // Expected labels printed by NumPy running the reference's symmetric noise.
  const doc = {
    seed: 123456789,
    binary: {
      classes: ["benign", "malignant"],
      clean: [0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0],
      noisy: { "0.8": "not read", "0.25": null },
    },
    derived: {
      seed: 42,
      clean: [3, 0, 2, 1, 3, 3, 0, 1, 2, 0, 1, 3],
      noisy: { "0.50": [] },
    },
    explicit: {
      seed: 42,
      num_classes: 5,
      clean: [3, 0, 2, 1, 3, 3, 0, 1, 2, 0, 1, 3],
      noisy: { "0.5": [] },
    },
    note: "ignored",
  };
  await withFixture(doc, async (dir) => {
    const got = await noiseParity(dir);
    assert.deepEqual([...got.keys()], [
      "noise.binary.0.8",
      "noise.binary.0.25",
      "noise.derived.0.50",
      "noise.explicit.0.5",
    ]);
    assert.deepEqual(
      labels(got.get("noise.binary.0.8")),
      [1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 1],
    );
    assert.deepEqual(
      labels(got.get("noise.binary.0.25")),
      [0, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0],
    );
    // No num_classes or classes: K = max(clean) + 1 = 4.
    assert.deepEqual(
      labels(got.get("noise.derived.0.50")),
      [0, 1, 2, 3, 0, 3, 0, 2, 2, 0, 0, 3],
    );
    assert.deepEqual(
      labels(got.get("noise.explicit.0.5")),
      [0, 4, 2, 3, 2, 3, 0, 1, 1, 0, 1, 4],
    );
  });
});

Deno.test("noiseParity() defaults the seed to 0", async () => {
  const clean = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0];
  const a = await withResult({ d: { clean, noisy: { "0.6": 0 } } });
  const b = await withResult({ seed: 0, d: { clean, noisy: { "0.6": 0 } } });
  const c = await withResult({ seed: 1, d: { clean, noisy: { "0.6": 0 } } });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

async function withResult(doc: unknown): Promise<number[]> {
  let out: number[] = [];
  await withFixture(doc, async (dir) => {
    out = labels((await noiseParity(dir)).get("noise.d.0.6"));
  });
  return out;
}

Deno.test("noiseParity() names the file and value it cannot use", async () => {
  const missing = await Deno.makeTempDir();
  try {
    await assert.rejects(noiseParity(missing), (err: Error) => {
      assert.match(
        err.message,
        /^Cannot read noise fixture ".*noise_golden\.json": /,
      );
      return true;
    });
  } finally {
    await Deno.remove(missing, { recursive: true });
  }
  const cases: [unknown, RegExp][] = [
    ["{not json", /^Cannot read noise fixture ".*": /],
    [[1, 2], /noise_golden\.json: expected a JSON object at the top level$/],
    [
      { seed: -3, d: { clean: [0], noisy: {} } },
      /: top-level "seed" must be an integer in \[0, 4294967295\], got -3$/,
    ],
    [
      { d: { seed: "x", clean: [0, 1], noisy: { "0.1": [] } } },
      /: dataset "d" "seed" must be an integer in \[0, 4294967295\], got "x"$/,
    ],
    [
      { d: { noisy: { "0.1": [] } } },
      /: dataset "d" needs a "clean" array of labels$/,
    ],
    [
      { d: { clean: [0, 1.5], noisy: {} } },
      /: dataset "d" clean\[1\] is 1.5, expected a non-negative integer$/,
    ],
    [
      { d: { clean: [0, 1] } },
      /: dataset "d" needs a "noisy" object keyed by rate$/,
    ],
    [
      { d: { clean: [0, 1], noisy: { "high": [] } } },
      /: dataset "d" noisy key "high" is not a noise rate in \[0, 1\]$/,
    ],
    [
      { d: { clean: [0, 1], noisy: { "0.9": [], "1.2": [] } } },
      /: dataset "d" noisy key "1.2" is not a noise rate in \[0, 1\]$/,
    ],
    [
      { d: { num_classes: 1, clean: [0], noisy: { "0.1": [] } } },
      /: dataset "d" num_classes is 1, expected an integer >= 2$/,
    ],
    [
      { d: { classes: ["a", "b"], clean: [0, 2], noisy: { "0.1": [] } } },
      /: dataset "d" rate "0.1": Clean label 2 at index 1 is outside \[0, 2\)$/,
    ],
    [
      { d: { clean: [0, 0], noisy: { "0.1": [] } } },
      /: dataset "d" rate "0.1": Number of classes must be an integer >= 2, got 1$/,
    ],
  ];
  for (const [doc, pattern] of cases) {
    await withFixture(doc, async (dir) => {
      await assert.rejects(noiseParity(dir), (err: Error) => {
        assert.match(err.message, pattern);
        return true;
      });
    });
  }
});
