import assert from "node:assert/strict";
import { join } from "node:path";
import {
  APTOS_MANIFEST,
  type AptosRow,
  checkAptos,
  prepareAptos,
  readAptosCsv,
  splitAptos,
} from "../lib/prepare/aptos.ts";
import { main } from "../tasks/prepare_aptos.ts";

/** Rows with Kaggle's APTOS-2019 grade counts (3,662 in all) or scaled ones. */
function kaggleRows(perGrade = [1805, 370, 999, 193, 295]): AptosRow[] {
  const rows: AptosRow[] = [];
  let k = 0;
  perGrade.forEach((count, grade) => {
    for (let i = 0; i < count; i++) {
      rows.push({
        id: (k++ * 2654435761 % 2 ** 32).toString(16).padStart(8, "0"),
        grade,
      });
    }
  });
  return rows;
}

function gradeCounts(rows: AptosRow[]): number[] {
  const counts = [0, 0, 0, 0, 0];
  for (const r of rows) counts[r.grade]++;
  return counts;
}

/** A Kaggle-like download: `train.csv` and `train_images/<id>.png`. */
async function kaggleTree(dir: string, n = 20) {
  const images = join(dir, "kaggle", "train_images");
  await Deno.mkdir(images, { recursive: true });
  const lines = ["id_code,diagnosis"];
  for (let i = 0; i < n; i++) {
    const id = `img${String(i).padStart(3, "0")}`;
    lines.push(`${id},${i % 5}`);
    await Deno.writeTextFile(join(images, `${id}.png`), `png ${id}`);
  }
  const csv = join(dir, "kaggle", "train.csv");
  await Deno.writeTextFile(csv, lines.join("\n") + "\n");
  return { csv, images };
}

Deno.test("splitAptos() defaults to the paper's 2,930 train / 366 test, stratified by grade", () => {
  const all = kaggleRows();
  assert.equal(all.length, 3662);
  const split = splitAptos(all);
  assert.equal(split.train.length, 2930);
  assert.equal(split.test.length, 366);
  assert.equal(split.val.length, 366);
  const whole = gradeCounts(all);
  for (const part of [split.train, split.test, split.val]) {
    gradeCounts(part).forEach((c, g) => {
      const ideal = (whole[g] * part.length) / all.length;
      assert.ok(Math.abs(c - ideal) <= 1, `grade ${g}: ${c} vs ${ideal}`);
    });
  }
  const ids = new Set(
    [...split.train, ...split.test, ...split.val].map((r) => r.id),
  );
  assert.equal(ids.size, 3662);

  // 3,296 rows (Kaggle less 366) split exactly into the paper's counts.
  const fewer = splitAptos(kaggleRows([1625, 333, 899, 174, 265]));
  assert.deepEqual(
    [fewer.train.length, fewer.test.length, fewer.val.length],
    [2930, 366, 0],
  );
});

Deno.test("splitAptos() depends on the seed, not on the order of the rows", () => {
  const rows = kaggleRows([50, 10, 30, 5, 8]);
  const options = { testSize: 0.2, trainSize: 0.8 };
  const a = splitAptos(rows, options);
  const b = splitAptos([...rows].reverse(), options);
  assert.deepEqual(a, b);
  const c = splitAptos(rows, { ...options, seed: 1 });
  assert.notDeepEqual(a.test, c.test);
  assert.deepEqual(gradeCounts(a.test), gradeCounts(c.test));
  assert.deepEqual(gradeCounts(a.test), [10, 2, 6, 1, 2]);
  assert.ok(a.test.every((r, i) => i === 0 || a.test[i - 1].id < r.id));
});

Deno.test("splitAptos() rejects sizes the rows cannot fill", () => {
  assert.throws(
    () => splitAptos(kaggleRows([10, 2, 6, 1, 2])),
    /APTOS split asks for 2930 train \+ 366 test rows but 21 are given/,
  );
  assert.throws(
    () => splitAptos(kaggleRows([10, 2, 6, 1, 2]), { testSize: 2.5 }),
    /Option testSize is 2\.5: expected a whole count or a fraction below 1/,
  );
});

Deno.test("prepareAptos() builds the reference layout that checkAptos() accepts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const source = await kaggleTree(dir);
    const root = join(dir, "APTOS-2019");
    let started = 0;
    let placed = 0;
    const report = await prepareAptos(source, root, {
      testSize: 0.2,
      trainSize: 0.6,
      onStart: (n) => (started = n),
      onImage: () => placed++,
    });
    assert.deepEqual(report.counts, { train: 12, test: 4, val: 4 });
    // 4 rows per grade; largest remainders, ties to the lower grade.
    assert.deepEqual(report.perGrade, {
      test: [1, 1, 1, 1, 0],
      val: [1, 1, 1, 0, 1],
      train: [2, 2, 2, 3, 3],
    });
    assert.equal(started, 16);
    assert.equal(placed, 16);
    const trainCsv = await Deno.readTextFile(join(root, "train_1.csv"));
    assert.ok(trainCsv.startsWith("id_code,diagnosis\n"));
    assert.equal(trainCsv.trimEnd().split("\n").length, 13);
    const [firstId] = trainCsv.split("\n")[1].split(",");
    assert.equal(
      await Deno.readTextFile(
        join(root, "train_images", "train_images", `${firstId}.png`),
      ),
      `png ${firstId}`,
    );
    const check = await checkAptos(root);
    assert.equal(check.ok, true);
    assert.equal(check.train.rows, 12);
    assert.equal(check.test.rows, 4);
    assert.deepEqual(check.test.perGrade, report.perGrade.test);
    const manifest = JSON.parse(
      await Deno.readTextFile(join(root, APTOS_MANIFEST)),
    );
    assert.equal(manifest.complete, true);
    assert.equal(manifest.seed, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareAptos() run twice rewrites no image", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const source = await kaggleTree(dir);
    const root = join(dir, "APTOS-2019");
    const options = { testSize: 0.25, trainSize: 0.75 };
    await prepareAptos(source, root, options);
    const before = await Deno.readTextFile(join(root, "test.csv"));
    const again = await prepareAptos(source, root, options);
    assert.equal(again.trees.train.updated, false);
    assert.equal(again.trees.test.updated, false);
    assert.equal(await Deno.readTextFile(join(root, "test.csv")), before);
    await assert.rejects(
      Deno.stat(join(root, "val.csv")),
      Deno.errors.NotFound,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareAptos() refuses a root holding Kaggle's own test.csv", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const source = await kaggleTree(dir);
    const kaggleRoot = join(dir, "kaggle");
    await Deno.writeTextFile(join(kaggleRoot, "test.csv"), "id_code\nabc\n");
    await assert.rejects(
      prepareAptos(source, kaggleRoot, { testSize: 0.2, trainSize: 0.8 }),
      /".*kaggle\/test\.csv" exists and was not made by prepare:aptos/,
    );
    assert.equal(
      await Deno.readTextFile(join(kaggleRoot, "test.csv")),
      "id_code\nabc\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareAptos() names a missing image, or skips it with skipBad", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const source = await kaggleTree(dir);
    await Deno.remove(join(source.images, "img007.png"));
    const root = join(dir, "APTOS-2019");
    await assert.rejects(
      prepareAptos(source, root, { testSize: 0.2, trainSize: 0.8 }),
      /Image of "img007" listed in ".*train\.csv" is missing: expected .*img007\.png/,
    );
    const report = await prepareAptos(source, root, {
      testSize: 0.2,
      trainSize: 0.8,
      skipBad: true,
    });
    assert.deepEqual(report.skipped, ["img007"]);
    assert.equal(report.counts.train + report.counts.test, 19);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readAptosCsv() names the file, line and value of a bad diagnosis", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const csv = join(dir, "train.csv");
    await Deno.writeTextFile(csv, "id_code,diagnosis\r\nabc,2\r\ndef,7\r\n");
    await assert.rejects(
      readAptosCsv(csv),
      new RegExp(
        `^Error: CSV "${csv}" line 3: diagnosis "7": expected an integer 0-4$`,
      ),
    );
    await Deno.writeTextFile(csv, "id,label\nabc,2\n");
    await assert.rejects(
      readAptosCsv(csv),
      /line 1 is "id,label": expected id_code,diagnosis/,
    );
    await Deno.writeTextFile(csv, "id_code,diagnosis\nabc,2\nabc,1\n");
    await assert.rejects(
      readAptosCsv(csv),
      /line 3: id_code "abc" already listed on line 2/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkAptos() reports missing files and the lines the reference skips", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "train_images", "train_images"), {
      recursive: true,
    });
    await Deno.writeTextFile(
      join(dir, "train_images", "train_images", "a.png"),
      "png",
    );
    await Deno.writeTextFile(
      join(dir, "train_1.csv"),
      "id_code,diagnosis\na,1\nb,2\nc,2,extra\nd,9\n",
    );
    const report = await checkAptos(dir);
    assert.equal(report.ok, false);
    assert.equal(report.train.rows, 2);
    assert.deepEqual(report.train.perGrade, [0, 1, 1, 0, 0]);
    assert.deepEqual(report.train.missing, ["b"]);
    assert.deepEqual(report.train.skippedLines, [4]);
    assert.deepEqual(report.train.badLabels, [{ line: 5, value: "9" }]);
    assert.match(report.test.error ?? "", /".*test\.csv" does not exist/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepare:aptos builds from Kaggle files, checks the result and fails on a broken root", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const source = await kaggleTree(dir);
    const root = join(dir, "APTOS-2019");
    const lines: string[] = [];
    const progress = { writeSync: (p: Uint8Array) => p.length };
    await main([
      "--root",
      root,
      "--from-kaggle",
      source.csv,
      "--images",
      source.images,
      "--test-size",
      "0.2",
      "--train-size",
      "0.6",
    ], { print: (l) => lines.push(l), progress });
    assert.ok(
      lines[0].startsWith(`Writing ${root}/train_1.csv, ${root}/test.csv`),
    );
    assert.match(lines[1], /split is ours/);
    assert.ok(
      lines.includes("train     12           2   2   2   3   3"),
      lines.join("\n"),
    );
    assert.ok(
      lines.includes("test: 4 rows (grades 1/1/1/1/0), 0 images missing"),
    );
    assert.equal(lines.at(-1), `${root}: layout OK`);

    await Deno.remove(join(root, "test_images"), { recursive: true });
    await assert.rejects(
      main(["--root", root], { print: () => {} }),
      /APTOS layout in ".*APTOS-2019" is not usable: 4 images missing from .*test_images/,
    );
    await assert.rejects(
      main(["--root", root, "--from-kaggle", source.csv], { print: () => {} }),
      /--from-kaggle needs --images/,
    );
    await assert.rejects(
      main([
        "--root",
        root,
        "--from-kaggle",
        source.csv,
        "--images",
        source.images,
        "--seed",
        "x",
      ], {
        print: () => {},
      }),
      /--seed is "x": expected a number/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
