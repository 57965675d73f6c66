import assert from "node:assert/strict";
import sharp from "sharp";
import { loadAptos, parseAptosCsv } from "../lib/data/aptos.ts";
import { FIXTURES_URL } from "./_fixtures.ts";

const fixtures = FIXTURES_URL.pathname;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseAptosCsv() reproduces the reference's labels for its train_1.csv", async () => {
  const golden =
    JSON.parse(await Deno.readTextFile(`${fixtures}noise_golden.json`)).aptos;
  const rows = parseAptosCsv(golden.csv, "train_1.csv");
  assert.equal(rows.length, golden.clean.length);
  assert.deepEqual(rows.map((r) => r.diagnosis), golden.clean);
  assert.deepEqual(rows[0], { id: "00af3a32e4c4", diagnosis: 0, line: 2 });
});

Deno.test("parseAptosCsv() skips the first line and rows without exactly two fields", () => {
  const text = "3,3\r\na,1\r\n\r\nb,2,extra\r\nlonely\r\n c , 4 \r\n";
  assert.deepEqual(parseAptosCsv(text, "t.csv"), [
    { id: "a", diagnosis: 1, line: 2 },
    { id: "c", diagnosis: 4, line: 6 },
  ]);
});

Deno.test("parseAptosCsv() names the file, line and value of a bad diagnosis", () => {
  assert.throws(
    () => parseAptosCsv("id_code,diagnosis\nx,0\ny,two\n", "data/train_1.csv"),
    /APTOS file "data\/train_1\.csv" line 3: diagnosis "two" is not an integer/,
  );
  assert.throws(
    () => parseAptosCsv("id_code,diagnosis\nx,1.5\n", "f.csv"),
    /line 2: diagnosis "1\.5" is not an integer/,
  );
  assert.throws(
    () => parseAptosCsv("id_code,diagnosis\nx,0\ny,5\n", "f.csv"),
    /APTOS file "f\.csv" line 3: diagnosis 5 is out of range \(expected 0 to 4\)/,
  );
  assert.throws(
    () => parseAptosCsv("h\nx,-1\n", "f.csv"),
    /diagnosis -1 is out of range/,
  );
});

Deno.test("loadAptos() reads each split's CSV and image folder", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/train_images/train_images`, { recursive: true });
    await Deno.mkdir(`${dir}/test_images`);
    await Deno.writeTextFile(
      `${dir}/train_1.csv`,
      "id_code,diagnosis\nbb,3\naa,0\n",
    );
    await Deno.writeTextFile(`${dir}/test.csv`, "id_code,diagnosis\ncc,4\n");
    const px = new Uint8Array(6 * 5 * 3).fill(90);
    await sharp(px, { raw: { width: 6, height: 5, channels: 3 } }).png().toFile(
      `${dir}/train_images/train_images/bb.png`,
    );
    await sharp(px, { raw: { width: 6, height: 5, channels: 3 } }).png().toFile(
      `${dir}/test_images/cc.png`,
    );

    const train = await loadAptos(dir, { split: "train" });
    assert.equal(train.name, "aptos");
    assert.equal(train.numClasses, 5);
    assert.deepEqual(Array.from(train.labels), [3, 0]);
    assert.equal(train.describe(1), `${dir}/train_images/train_images/aa.png`);
    const img = await train.image(0);
    assert.deepEqual([img.width, img.height, img.channels, img.data[0]], [
      6,
      5,
      3,
      90,
    ]);
    await assert.rejects(
      train.image(1),
      /Cannot read image ".*train_images\/train_images\/aa\.png": no such file/,
    );

    const test = await loadAptos(dir, { split: "test" });
    assert.deepEqual(Array.from(test.labels), [4]);
    assert.equal((await test.image(0)).width, 6);
  });
});

Deno.test("loadAptos() rejects a missing or row-less CSV, naming it", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      loadAptos(dir, { split: "test" }),
      /APTOS file ".*\/test\.csv" does not exist; build the layout from Kaggle's files with `deno task prepare:aptos --from-kaggle train\.csv --images DIR`$/,
    );
    await Deno.writeTextFile(`${dir}/test.csv`, "id_code,diagnosis\n");
    await assert.rejects(
      loadAptos(dir, { split: "test" }),
      /APTOS file ".*\/test\.csv" has no id_code,diagnosis rows/,
    );
  });
});
