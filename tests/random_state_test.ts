import assert from "node:assert/strict";
import { RandomState } from "../lib/noise/random_state.ts";

// Expected values below were printed by NumPy 2.4's legacy RandomState.

function draws<T>(n: number, fn: () => T): T[] {
  return Array.from({ length: n }, fn);
}

Deno.test("RandomState seeded with 0 gives NumPy's first uint32 outputs", () => {
  const rs = new RandomState(0);
  assert.deepEqual(draws(3, () => rs.randomUint32()), [
    2357136044,
    2546248239,
    3071714933,
  ]);
});

Deno.test("RandomState seeds like np.random.seed for other and extreme seeds", () => {
  const a = new RandomState(1234);
  assert.deepEqual(draws(4, () => a.randomUint32()), [
    822569775,
    2137449171,
    2671936806,
    3512589365,
  ]);
  const b = new RandomState(4294967295);
  assert.deepEqual(draws(3, () => b.randomUint32()), [
    419326371,
    479346978,
    3918654476,
  ]);
});

Deno.test("rand() returns NumPy's 53-bit doubles", () => {
  const rs = new RandomState(0);
  assert.deepEqual(draws(3, () => rs.rand()), [
    0.5488135039273248,
    0.7151893663724195,
    0.6027633760716439,
  ]);
});

Deno.test("seed() restarts the stream", () => {
  const rs = new RandomState(5);
  const first = draws(700, () => rs.randomUint32());
  rs.seed(5);
  assert.deepEqual(draws(700, () => rs.randomUint32()), first);
});

Deno.test("RandomState keeps matching NumPy across state refills", () => {
  // 1247 draws cross two 624-word refills.
  const rs = new RandomState(0);
  for (let i = 0; i < 1247; i++) rs.randomUint32();
  assert.deepEqual(draws(3, () => rs.randomUint32()), [
    1145454359,
    4192857288,
    2422637952,
  ]);
});

Deno.test("randint() matches NumPy's masked rejection for 32- and 64-bit ranges", () => {
  let rs = new RandomState(7);
  assert.deepEqual(draws(12, () => rs.randint(-5, 17)), [
    10,
    -1,
    -2,
    14,
    2,
    9,
    3,
    9,
    5,
    3,
    2,
    1,
  ]);
  rs = new RandomState(7);
  assert.deepEqual(draws(12, () => rs.randint(10)), [
    4,
    9,
    6,
    3,
    3,
    7,
    7,
    9,
    7,
    8,
    9,
    8,
  ]);
  rs = new RandomState(7);
  assert.deepEqual(draws(3, () => rs.randint(3, 2 ** 40 + 3)), [
    752595690695,
    108744157689,
    291964244182,
  ]);
});

Deno.test("randint() over a single value consumes no draw", () => {
  const rs = new RandomState(9);
  assert.equal(rs.randint(4, 5), 4);
  assert.equal(rs.randomUint32(), new RandomState(9).randomUint32());
});

Deno.test("choice() draws the index np.random.choice(arr, 1) draws", () => {
  const rs = new RandomState(3);
  assert.deepEqual(draws(12, () => rs.choice(5)), [
    2,
    0,
    1,
    3,
    0,
    0,
    0,
    3,
    2,
    3,
    1,
    1,
  ]);
});

Deno.test("choice() of one element consumes no draw, as NumPy's", () => {
  const rs = new RandomState(3);
  for (let i = 0; i < 3; i++) assert.equal(rs.choice(1), 0);
  assert.equal(rs.rand(), 0.5507979025745755);
});

Deno.test("permutation() and shuffle() match NumPy's legacy shuffle", () => {
  assert.deepEqual(
    Array.from(new RandomState(42).permutation(10)),
    [8, 1, 5, 0, 7, 2, 9, 4, 3, 6],
  );
  const list = [0, 1, 2, 3, 4, 5, 6, 7];
  const out = new RandomState(5).shuffle(list);
  assert.equal(out, list);
  assert.deepEqual(list, [7, 2, 4, 1, 0, 5, 6, 3]);
  const perm = new RandomState(1).permutation(1000);
  assert.deepEqual(
    Array.from(perm).sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.deepEqual(Array.from(new RandomState(0).permutation(0)), []);
});

Deno.test("multinomialIndex() matches np.random.multinomial(1, pvals)", () => {
  const rs = new RandomState(11);
  assert.deepEqual(draws(20, () => rs.multinomialIndex([0.1, 0, 0.6, 0.3])), [
    2,
    3,
    2,
    2,
    0,
    3,
    3,
    2,
    2,
    2,
    3,
    2,
    2,
    3,
    2,
    2,
    3,
    2,
    0,
    0,
  ]);
});

Deno.test("RandomState rejects seeds NumPy rejects", () => {
  for (const seed of [-1, 2 ** 32, 1.5, NaN]) {
    assert.throws(() => new RandomState(seed), {
      name: "RangeError",
      message: `Seed must be an integer in [0, 4294967295], got ${seed}`,
    });
  }
});

Deno.test("randint(), choice() and permutation() reject bad bounds", () => {
  const rs = new RandomState(0);
  assert.throws(() => rs.randint(3, 3), {
    message: "randint() needs low < high, got low 3, high 3",
  });
  assert.throws(() => rs.randint(0.5, 3), {
    message: "randint() bounds must be integers, got low 0.5, high 3",
  });
  const low = -(2 ** 53 - 1);
  assert.throws(() => rs.randint(low, 2 ** 53), {
    message: `randint() range must be below 2**53, got low ${low}, high ${
      2 ** 53
    }`,
  });
  assert.throws(() => rs.choice(0), {
    message: "choice() needs a positive integer population size, got 0",
  });
  assert.throws(() => rs.permutation(-1), {
    message: "permutation() needs a non-negative integer size, got -1",
  });
});
