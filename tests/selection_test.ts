import assert from "node:assert/strict";
import {
  agreementMask,
  noisyMask,
  SelectionAccumulator,
  selectionStats,
} from "../lib/train/selection.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const i32 = (xs: number[]) => Int32Array.from(xs);
const u8 = (xs: number[]) => Uint8Array.from(xs);
const FIXTURES = FIXTURES_URL;

Deno.test("agreementMask() selects the samples whose prediction equals the label", () => {
  const mask = agreementMask(i32([0, 2, 1, 1]), i32([0, 1, 1, 2]));
  assert.deepEqual([...mask], [1, 0, 1, 0]);
});

Deno.test("agreementMask() matches the reference's golden CUFIT masks", async () => {
  const { readSafetensors } = await import("../lib/weights/safetensors.ts");
  const golden = await readSafetensors(
    new URL("cufit_golden.safetensors", FIXTURES).pathname,
  );
  const t = golden.tensors;
  const asInts = (name: string) =>
    Int32Array.from(t.get(name)!.data as ArrayLike<number | bigint>, Number);
  let compared = 0;
  for (const step of [0, 1, 2]) {
    const labels = asInts(`step${step}.targets`);
    for (const head of ["linear", "rein1"]) {
      const logits = t.get(`step${step}.${head}_logits`)!;
      const [n, k] = logits.shape;
      const predicted = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let j = 1; j < k; j++) {
          if (logits.data[i * k + j] > logits.data[i * k + best]) best = j;
        }
        predicted[i] = best;
      }
      assert.deepEqual(
        agreementMask(predicted, labels),
        Uint8Array.from(asInts(`step${step}.${head}_agrees`)),
        `step${step}.${head}_agrees`,
      );
      compared++;
    }
  }
  assert.equal(compared, 6);
});

Deno.test("agreementMask() refuses arrays of different lengths", () => {
  assert.throws(
    () => agreementMask(i32([0, 1]), i32([0])),
    /Cannot compare predictions with labels: lengths differ \(2 and 1\)/,
  );
});

Deno.test("noisyMask() marks labels that differ from the clean ones", () => {
  assert.deepEqual([...noisyMask([0, 1, 2, 2], [0, 2, 2, 1])], [0, 1, 0, 1]);
});

Deno.test("selectionStats() gives precision among selected and recall among clean", () => {
  // selected: 0, 1, 2; clean: 0, 2, 3 -> clean selected: 0, 2
  const s = selectionStats(u8([1, 1, 1, 0, 0]), u8([0, 1, 0, 0, 1]));
  assert.deepEqual(s, {
    total: 5,
    selected: 3,
    clean: 3,
    cleanSelected: 2,
    precision: 2 / 3,
    recall: 2 / 3,
  });
});

Deno.test("selectionStats() reports 0/0 ratios as null so JSON keeps them", () => {
  const none = selectionStats(u8([0, 0]), u8([1, 1]));
  assert.equal(none.precision, null);
  assert.equal(none.recall, null);
  assert.equal(JSON.stringify({ p: none.precision }), '{"p":null}');
  const empty = selectionStats(u8([]), u8([]));
  assert.deepEqual([empty.total, empty.precision, empty.recall], [
    0,
    null,
    null,
  ]);
});

Deno.test("SelectionAccumulator sums counts over batches, not ratios", () => {
  const acc = new SelectionAccumulator();
  acc.add(u8([1, 0]), u8([0, 0])); // precision 1/1
  acc.add(u8([1, 1, 1]), u8([1, 1, 0])); // precision 1/3
  const s = acc.stats();
  assert.deepEqual([s.total, s.selected, s.clean, s.cleanSelected], [
    5,
    4,
    3,
    2,
  ]);
  assert.equal(s.precision, 2 / 4); // not the mean of 1 and 1/3
  assert.equal(s.recall, 2 / 3);
  acc.reset();
  assert.deepEqual(acc.stats().total, 0);
  assert.equal(acc.stats().precision, null);
});
