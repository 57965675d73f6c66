import assert from "node:assert/strict";
import { join } from "node:path";
import {
  HAM10000_CLASSES,
  HAM10000_MANIFEST,
  type Ham10000Sources,
  prepareHam10000,
  readIsicCsv,
} from "../lib/prepare/ham10000.ts";
import { main } from "../tasks/prepare_ham10000.ts";

const HEADER = "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC";

function row(image: string, label: string): string {
  const cols = ["MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"];
  return [image, ...cols.map((c) => (c === label ? "1.0" : "0.0"))].join(",");
}

/** A tiny ISIC-like tree: 4 training and 2 test images. */
async function isicTree(root: string): Promise<Ham10000Sources> {
  const sources = {
    trainImages: join(root, "isic", "ISIC2018_Task3_Training_Input"),
    trainCsv: join(root, "isic", "train.csv"),
    testImages: join(root, "isic", "ISIC2018_Task3_Test_Input"),
    testCsv: join(root, "isic", "test.csv"),
  };
  await Deno.mkdir(sources.trainImages, { recursive: true });
  await Deno.mkdir(sources.testImages, { recursive: true });
  const train = [["ISIC_1", "NV"], ["ISIC_2", "MEL"], ["ISIC_3", "NV"], [
    "ISIC_4",
    "VASC",
  ]];
  const test = [["ISIC_5", "BCC"], ["ISIC_6", "NV"]];
  for (const [image] of train) {
    await Deno.writeTextFile(
      join(sources.trainImages, `${image}.jpg`),
      `jpeg ${image}`,
    );
  }
  for (const [image] of test) {
    await Deno.writeTextFile(
      join(sources.testImages, `${image}.jpg`),
      `jpeg ${image}`,
    );
  }
  // ISIC ships a licence file among the images; it must be ignored.
  await Deno.writeTextFile(join(sources.trainImages, "LICENSE.txt"), "CC");
  await Deno.writeTextFile(
    sources.trainCsv,
    [HEADER, ...train.map(([i, l]) => row(i, l))].join("\n") + "\n",
  );
  await Deno.writeTextFile(
    sources.testCsv,
    [HEADER, ...test.map(([i, l]) => row(i, l))].join("\r\n") + "\r\n",
  );
  return sources;
}

async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    for await (const item of Deno.readDir(dir)) {
      const rel = prefix ? `${prefix}/${item.name}` : item.name;
      if (item.isDirectory) {
        out.push(rel + "/");
        await walk(join(dir, item.name), rel);
      } else out.push(rel);
    }
  };
  await walk(root, "");
  return out.sort();
}

Deno.test("prepareHam10000() files each image under its split and class, with every class folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sources = await isicTree(dir);
    const out = join(dir, "ham10000");
    let started = 0;
    let placed = 0;
    const report = await prepareHam10000(sources, out, {
      onStart: (n) => (started = n),
      onImage: () => placed++,
    });
    assert.equal(started, 6);
    assert.equal(placed, 6);
    assert.deepEqual(report.counts.train, {
      MEL: 1,
      NV: 2,
      BCC: 0,
      AKIEC: 0,
      BKL: 0,
      DF: 0,
      VASC: 1,
    });
    assert.equal(report.counts.test.BCC, 1);
    assert.equal(report.counts.test.NV, 1);
    const tree = await listTree(out);
    for (const split of ["train", "test"]) {
      for (const c of HAM10000_CLASSES) {
        assert.ok(tree.includes(`${split}/${c}/`), `${split}/${c}`);
      }
    }
    const files = tree.filter((p) => !p.endsWith("/"));
    assert.deepEqual(files, [
      HAM10000_MANIFEST,
      "test/BCC/ISIC_5.jpg",
      "test/NV/ISIC_6.jpg",
      "train/MEL/ISIC_2.jpg",
      "train/NV/ISIC_1.jpg",
      "train/NV/ISIC_3.jpg",
      "train/VASC/ISIC_4.jpg",
    ]);
    assert.equal(
      await Deno.readTextFile(join(out, "train/NV/ISIC_3.jpg")),
      "jpeg ISIC_3",
    );
    // Copies, not links, by default.
    const copy = await Deno.stat(join(out, "train/NV/ISIC_3.jpg"));
    const source = await Deno.stat(join(sources.trainImages, "ISIC_3.jpg"));
    assert.notEqual(copy.ino, source.ino);
    // No temporary directory left beside the output.
    assert.deepEqual(
      (await listTree(dir)).filter((p) => p.includes(".tmp-")),
      [],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareHam10000() run twice leaves the same tree and rewrites nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sources = await isicTree(dir);
    const out = join(dir, "ham10000");
    await prepareHam10000(sources, out);
    const before = await listTree(out);
    const inode = (await Deno.stat(join(out, "train/MEL/ISIC_2.jpg"))).ino;
    const again = await prepareHam10000(sources, out);
    assert.equal(again.tree.updated, false);
    assert.equal(again.tree.unchanged, 7);
    assert.deepEqual(await listTree(out), before);
    assert.equal(
      (await Deno.stat(join(out, "train/MEL/ISIC_2.jpg"))).ino,
      inode,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareHam10000() moves a relabelled image and reuses the unchanged files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sources = await isicTree(dir);
    const out = join(dir, "ham10000");
    await prepareHam10000(sources, out);
    const inode = (await Deno.stat(join(out, "train/MEL/ISIC_2.jpg"))).ino;
    await Deno.writeTextFile(
      sources.trainCsv,
      [
        HEADER,
        row("ISIC_1", "DF"),
        row("ISIC_2", "MEL"),
        row("ISIC_3", "NV"),
        row("ISIC_4", "VASC"),
      ]
        .join("\n"),
    );
    const report = await prepareHam10000(sources, out);
    assert.equal(report.tree.updated, true);
    assert.equal(report.tree.written, 2); // ISIC_1 and the manifest
    assert.equal(report.tree.removed, 1); // train/NV/ISIC_1.jpg
    const files = (await listTree(out)).filter((p) =>
      p.startsWith("train/") && !p.endsWith("/")
    );
    assert.deepEqual(files, [
      "train/DF/ISIC_1.jpg",
      "train/MEL/ISIC_2.jpg",
      "train/NV/ISIC_3.jpg",
      "train/VASC/ISIC_4.jpg",
    ]);
    assert.equal(
      (await Deno.stat(join(out, "train/MEL/ISIC_2.jpg"))).ino,
      inode,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareHam10000() with link hard-links the images", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sources = await isicTree(dir);
    const out = join(dir, "ham10000");
    await prepareHam10000(sources, out, { link: true });
    const linked = await Deno.stat(join(out, "test/BCC/ISIC_5.jpg"));
    const source = await Deno.stat(join(sources.testImages, "ISIC_5.jpg"));
    assert.equal(linked.ino, source.ino);
    // Switching back to copies replaces the links.
    await prepareHam10000(sources, out);
    const copy = await Deno.stat(join(out, "test/BCC/ISIC_5.jpg"));
    assert.notEqual(copy.ino, source.ino);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareHam10000() fails on a missing image and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sources = await isicTree(dir);
    await Deno.remove(join(sources.trainImages, "ISIC_3.jpg"));
    const out = join(dir, "ham10000");
    await assert.rejects(
      prepareHam10000(sources, out),
      (error: Error) => {
        assert.match(
          error.message,
          /^CSV ".*train\.csv" line 4: image "ISIC_3" is missing: expected .*ISIC_3\.jpg$/,
        );
        return true;
      },
    );
    assert.deepEqual(
      await listTree(dir).then((t) => t.filter((p) => p.startsWith("ham"))),
      [],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareHam10000() with skipBad counts and skips missing images and bad rows", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sources = await isicTree(dir);
    await Deno.remove(join(sources.trainImages, "ISIC_3.jpg"));
    await Deno.writeTextFile(sources.trainCsv, "ISIC_9,1.0,1.0,0,0,0,0,0\n", {
      append: true,
    });
    const report = await prepareHam10000(sources, join(dir, "out"), {
      skipBad: true,
    });
    assert.deepEqual(report.skipped.map((s) => [s.line, s.image]), [[
      6,
      "ISIC_9",
    ], [4, "ISIC_3"]]);
    assert.equal(report.counts.train.NV, 1);
    const manifest = JSON.parse(
      await Deno.readTextFile(join(dir, "out", HAM10000_MANIFEST)),
    );
    assert.equal(manifest.skipped.length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readIsicCsv() rejects a row that is not one-hot, naming file, line and values", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const csv = join(dir, "gt.csv");
    await Deno.writeTextFile(
      csv,
      `${HEADER}\n${
        row("ISIC_1", "NV")
      }\n\nISIC_2,0.0,0.0,0.0,0.0,0.0,0.0,0.0\n`,
    );
    await assert.rejects(
      readIsicCsv(csv),
      new RegExp(
        `^Error: CSV "${csv}" line 4: expected one-hot values for MEL,NV,BCC,AKIEC,BKL,DF,VASC, ` +
          `got 0\\.0,0\\.0,0\\.0,0\\.0,0\\.0,0\\.0,0\\.0$`,
      ),
    );
    await Deno.writeTextFile(csv, `${HEADER}\nISIC_2,0.5,0.5,0,0,0,0,0\n`);
    await assert.rejects(
      readIsicCsv(csv),
      /line 2: expected one-hot values .* got 0\.5,0\.5/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readIsicCsv() reads columns by name and rejects a wrong header or duplicate image", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const csv = join(dir, "gt.csv");
    await Deno.writeTextFile(
      csv,
      "MEL,NV,BCC,AKIEC,BKL,DF,VASC,image\n0,0,0,0,0,1,0,ISIC_7\n",
    );
    const { rows } = await readIsicCsv(csv);
    assert.deepEqual(rows, [{ image: "ISIC_7", label: "DF", line: 2 }]);
    await Deno.writeTextFile(csv, "image,MEL,NV\nISIC_1,1,0\n");
    await assert.rejects(
      readIsicCsv(csv),
      /CSV ".*gt\.csv" has columns image,MEL,NV: expected image,MEL,NV,BCC,AKIEC,BKL,DF,VASC/,
    );
    await Deno.writeTextFile(
      csv,
      `${HEADER}\n${row("ISIC_1", "NV")}\n${row("ISIC_1", "MEL")}\n`,
    );
    await assert.rejects(
      readIsicCsv(csv),
      /line 3: image "ISIC_1" already listed on line 2/,
    );
    await Deno.writeTextFile(csv, `${HEADER}\n${row("../x", "NV")}\n`);
    await assert.rejects(
      readIsicCsv(csv),
      /line 2: image name "\.\.\/x" is not a plain file name/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareHam10000() refuses an output folder it did not make, or one holding the inputs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sources = await isicTree(dir);
    const out = join(dir, "mine");
    await Deno.mkdir(out);
    await Deno.writeTextFile(join(out, "notes.txt"), "keep me");
    await assert.rejects(
      prepareHam10000(sources, out),
      /Output ".*mine" already holds files not made by prepare:ham10000 \(no \.prepare_ham10000\.json\)/,
    );
    assert.equal(await Deno.readTextFile(join(out, "notes.txt")), "keep me");
    await assert.rejects(
      prepareHam10000(sources, dir),
      /Input trainImages ".*" lies inside the output/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepare:ham10000 prints what it writes and the per-class counts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sources = await isicTree(dir);
    const out = join(dir, "ham10000");
    const lines: string[] = [];
    const args = [
      "--train-images",
      sources.trainImages,
      "--train-csv",
      sources.trainCsv,
      "--test-images",
      sources.testImages,
      "--test-csv",
      sources.testCsv,
      "--out",
      out,
    ];
    const progress = { writeSync: (p: Uint8Array) => p.length };
    await main(args, { print: (l) => lines.push(l), progress });
    assert.equal(
      lines[0],
      `Writing ${out}/{train,test}/{AKIEC,BCC,BKL,DF,MEL,NV,VASC}/<image>.jpg ` +
        `and ${out}/.prepare_ham10000.json (built beside ${out}, then renamed)`,
    );
    assert.deepEqual(lines.slice(1, 10), [
      "class   train   test",
      "AKIEC       0      0",
      "BCC         0      1",
      "BKL         0      0",
      "DF          0      0",
      "MEL         1      0",
      "NV          2      1",
      "VASC        1      0",
      "total       4      2",
    ]);
    assert.match(lines.at(-1)!, /7 files written, 0 unchanged, 0 removed$/);
    lines.length = 0;
    await main(args, { print: (l) => lines.push(l), progress });
    assert.match(lines.at(-1)!, /already up to date, nothing rewritten$/);
    await assert.rejects(
      main(args.slice(2), { print: () => {} }),
      /Required option '--train-images <dir>' not specified; see `deno task prepare:ham10000 --help`$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
