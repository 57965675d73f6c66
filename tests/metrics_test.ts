import assert from "node:assert/strict";
import {
  accuracy,
  argmaxRows,
  avgAccText,
  bestEpoch,
  confusionMatrix,
  type EpochMetrics,
  evaluationSummary,
  formatEpochLine,
  isImprovement,
  lastEpochsMean,
  parseAvgAcc,
  perClassMetrics,
  pythonFloat,
} from "../lib/train/metrics.ts";

Deno.test("argmaxRows() picks the first largest value of each row", () => {
  const logits = [0.1, 0.9, 0.0, 2, 2, 1, -1, -3, -2];
  assert.deepEqual([...argmaxRows(logits, 3)], [1, 0, 0]);
  assert.throws(
    () => argmaxRows(logits, 4),
    /Cannot split 9 values into rows of 4/,
  );
});

Deno.test("accuracy() is correct over total and refuses mismatched or empty input", () => {
  assert.equal(accuracy([0, 1, 2, 2], [0, 1, 1, 2]), 0.75);
  assert.throws(
    () => accuracy([0], [0, 1]),
    /Cannot score 1 predictions against 2 labels/,
  );
  assert.throws(() => accuracy([], []), /Cannot score an empty set/);
});

Deno.test("confusionMatrix() counts true labels by row and predictions by column", () => {
  const m = confusionMatrix([0, 1, 1, 2, 0], [0, 1, 2, 2, 2], {
    numClasses: 3,
  });
  assert.deepEqual(m, [
    [1, 0, 0],
    [0, 1, 0],
    [1, 1, 1],
  ]);
  assert.deepEqual(confusionMatrix([1], [0]), [[0, 1], [0, 0]]);
  assert.throws(
    () => confusionMatrix([0, 3], [0, 1], { numClasses: 3 }),
    /Sample 1 has prediction 3, expected an integer in \[0, 2\]/,
  );
});

Deno.test("perClassMetrics() gives null for classes never predicted or absent", () => {
  // class 2 is never predicted; class 1 never occurs.
  const m = [
    [2, 1, 0],
    [0, 0, 0],
    [1, 1, 0],
  ];
  const p = perClassMetrics(m);
  assert.deepEqual(p.precision, [2 / 3, 0, null]);
  assert.deepEqual(p.recall, [2 / 3, null, 0]);
  assert.deepEqual(p.f1, [2 / 3, null, null]);
  assert.deepEqual(p.support, [3, 0, 2]);
});

Deno.test("evaluationSummary() reports accuracy, balanced accuracy and macro F1", () => {
  const s = evaluationSummary([0, 0, 1, 1], [0, 1, 1, 1], {
    classNames: ["a", "b"],
  });
  assert.equal(s.accuracy, 0.75);
  assert.equal(s.correct, 3);
  assert.equal(s.balancedAccuracy, (1 + 2 / 3) / 2);
  assert.equal(s.macroF1, (2 / 3 + 0.8) / 2);
  assert.deepEqual(s.confusion, [[1, 0], [1, 2]]);
  assert.throws(
    () => evaluationSummary([0], [0], { numClasses: 3, classNames: ["a"] }),
    /Got 1 class names for 3 classes/,
  );
});

// Test accuracies of 12 epochs on a 1,512-image test set; the expected text
// is what train_cufit.py writes for them (computed with CPython 3).
const ACCS = [
  1100,
  1180,
  1201,
  1190,
  1205,
  1210,
  1199,
  1203,
  1207,
  1211,
  1212,
  1209,
]
  .map((c) => c / 1512);

Deno.test("lastEpochsMean() sums the last 10 in epoch order like the reference", () => {
  assert.equal(lastEpochsMean(ACCS), 0.7967592592592593);
  assert.equal(lastEpochsMean([0.5, 0.7], { count: 10 }), 0.6);
  assert.equal(lastEpochsMean([0.1, 0.5, 0.7], { count: 2 }), 0.6);
  assert.throws(() => lastEpochsMean([]), /empty run/);
});

Deno.test("avgAccText() writes Python's str() of the mean, without newline", () => {
  assert.equal(avgAccText(ACCS), "0.7967592592592593");
  assert.equal(avgAccText([1, 1]), "1.0");
  assert.equal(parseAvgAcc("0.7967592592592593"), lastEpochsMean(ACCS));
  assert.equal(parseAvgAcc("1e-05\n"), 1e-5);
  assert.throws(() => parseAvgAcc("abc"), /Cannot read avgacc text "abc"/);
});

Deno.test("pythonFloat() matches CPython's repr", () => {
  const cases: [number, string][] = [
    [0.1 + 0.2, "0.30000000000000004"],
    [1e-5, "1e-05"],
    [0.0001, "0.0001"],
    [1e16, "1e+16"],
    [1e15, "1000000000000000.0"],
    [123456789012345680, "1.2345678901234568e+17"],
    [1, "1.0"],
    [100, "100.0"],
    [-0, "-0.0"],
    [1.5e-7, "1.5e-07"],
    [1e22, "1e+22"],
    [0.001 * 0.1 ** 3, "1.0000000000000002e-06"],
    [9999999999999998, "9999999999999998.0"],
    [0.5, "0.5"],
    [-2.5e-10, "-2.5e-10"],
    [5e-324, "5e-324"],
    [NaN, "nan"],
    [-Infinity, "-inf"],
  ];
  for (const [x, text] of cases) assert.equal(pythonFloat(x), text, String(x));
});

Deno.test("bestEpoch() keeps the first of equal accuracies, as timm's saver does", () => {
  const rec = (epoch: number, testAcc: number): EpochMetrics => ({
    epoch,
    lr: 1e-3,
    trainLoss: 1,
    trainAcc: 0.5,
    testAcc,
  });
  assert.deepEqual(
    bestEpoch([rec(0, 0.5), rec(1, 0.7), rec(2, 0.7), rec(3, 0.6)]),
    {
      epoch: 1,
      value: 0.7,
    },
  );
  assert.equal(bestEpoch([]), null);
  assert.equal(isImprovement(0.7, { epoch: 1, value: 0.7 }), false);
  assert.equal(isImprovement(0.1, null), true);
});

Deno.test("formatEpochLine() prints the reference's fields, then CUFIT's extras", () => {
  const line = formatEpochLine({
    epoch: 3,
    lr: 1e-4,
    trainLoss: 0.69314,
    trainAcc: 0.5,
    testAcc: 0.61234,
  });
  assert.equal(
    line,
    "EPOCH    3, TRAIN [loss - 0.6931, acc - 0.5000], VALID [acc - 0.6123], LR 0.0001",
  );
  const cufit = formatEpochLine({
    epoch: 0,
    lr: 1e-3,
    trainLoss: 2,
    trainAcc: 0.25,
    testAcc: 0.5,
    heads: {
      lpm: { testAcc: 0.4 },
      iam: { testAcc: 0.45 },
      lam: { testAcc: 0.5 },
    },
    selection: {
      lpm: {
        total: 10,
        selected: 0,
        clean: 8,
        cleanSelected: 0,
        precision: null,
        recall: 0,
      },
    },
    seconds: 12.34,
  }, { epochs: 100 });
  assert.equal(
    cufit,
    "EPOCH    0/100, TRAIN [loss - 2.0000, acc - 0.2500], VALID [acc - 0.5000], " +
      "HEADS [lpm - 0.4000, iam - 0.4500, lam - 0.5000], " +
      "SELECT(lpm) [0/10, precision - n/a, recall - 0.0000], LR 0.001, 12.3 s",
  );
});
