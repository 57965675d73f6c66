import assert from "node:assert/strict";
import { join, normalize } from "node:path";
import { CliExit, parseTrainArgs, trainCommand } from "../lib/train/cli.ts";

function exitOf(fn: () => unknown): CliExit {
  try {
    fn();
  } catch (e) {
    if (e instanceof CliExit) return e;
    throw e;
  }
  throw new Error("expected a CliExit");
}

Deno.test("parseTrainArgs() reads the reference's flags", () => {
  const c = parseTrainArgs("cufit", [
    "-d",
    "ham10000",
    "-g",
    "1",
    "-n",
    "0.4",
    "-s",
    "exp1",
    "--netsize",
    "b",
  ]);
  assert.equal(c.method, "cufit");
  assert.equal(c.dataset.name, "ham10000");
  assert.equal(c.dataset.numClasses, 7);
  assert.deepEqual([c.gpu, c.noise.rate, c.saveName, c.netsize], [
    1,
    0.4,
    "exp1",
    "b",
  ]);
  assert.equal(c.savePath, "./checkpoints/HAM10000/");
});

Deno.test("parseTrainArgs() leaves unset flags to the dataset file and defaults", () => {
  const c = parseTrainArgs("rein", ["-d", "aptos"]);
  assert.deepEqual([c.epochs, c.batchSize, c.lr, c.noise.rate, c.seed], [
    100,
    32,
    1e-3,
    0.2,
    0,
  ]);
  assert.deepEqual([c.augment, c.shuffle, c.resume, c.cacheFeatures], [
    true,
    true,
    false,
    false,
  ]);
  assert.deepEqual([c.backend, c.maxBatches, c.weights], ["auto", null, null]);
  assert.equal(c.saveName, "rein-noise0.2");
});

Deno.test("parseTrainArgs() reads our flags", () => {
  const c = parseTrainArgs("linear", [
    "--data=synthetic",
    "--epochs",
    "2",
    "--batch-size",
    "4",
    "--lr",
    "1e-4",
    "--seed",
    "7",
    "--noise-mode",
    "symmetric",
    "--noise-seed",
    "3",
    "--backend",
    "wasm",
    "--weights",
    "w.pth",
    "--init",
    "i.safetensors",
    "--no-augment",
    "--no-shuffle",
    "--resume",
    "--cache-features",
    "--data-root",
    "/tmp/x",
    "--max-batches",
    "1",
  ]);
  assert.deepEqual(
    [
      c.epochs,
      c.batchSize,
      c.lr,
      c.seed,
      c.noise.seed,
      c.backend,
      c.weights,
      c.init,
    ],
    [2, 4, 1e-4, 7, 3, "wasm", "w.pth", "i.safetensors"],
  );
  assert.deepEqual([c.augment, c.shuffle, c.resume, c.cacheFeatures], [
    false,
    false,
    true,
    true,
  ]);
  assert.deepEqual([c.dataset.root, c.maxBatches], ["/tmp/x", 1]);
});

Deno.test("parseTrainArgs() accepts a path to a dataset file", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "toy.json");
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      epoch: 1,
      id_dataset: "d",
      batch_size: 2,
      save_path: "s",
      num_classes: 2,
    }),
  );
  const c = parseTrainArgs("rein", ["-d", file]);
  assert.equal(c.dataset.file, file);
  assert.equal(c.dataset.name, "toy");
});

Deno.test("parseTrainArgs() names the option and value of bad input", () => {
  const cases: [string[], RegExp][] = [
    [
      ["-d", "ham10000", "-n", "abc"],
      /^Option --noise must be a number, got "abc"$/,
    ],
    [
      ["-d", "ham10000", "-n", "1.5"],
      /^Option --noise must be a number in \[0, 1\], got 1.5$/,
    ],
    [
      ["-d", "ham10000", "--batch-size", "0"],
      /^Option --batch-size must be a positive integer, got 0$/,
    ],
    [
      ["-d", "ham10000", "--epochs", "2.5"],
      /^Option --epochs must be a positive integer, got 2.5$/,
    ],
    [
      ["-d", "ham10000", "-g", "0x1"],
      /^Option --gpu must be a number, got "0x1"$/,
    ],
    [
      ["-d", "ham10000", "--netsize", "xl"],
      /^Option --netsize must be one of "s", "b", "l", got "xl"$/,
    ],
    [
      ["-d", "ham10000", "--backend", "webgl"],
      /^Option --backend must be one of "auto", .*got "webgl"$/,
    ],
    [
      ["-d", "ham10000", "--cache-features"],
      /^Option --cache-features works only with train:linear, got train:cufit$/,
    ],
    [
      ["-d", "ham10000", "-s", "a/b"],
      /^Option --save must be a folder name without slashes, got "a\/b"$/,
    ],
    [
      ["-d", "ham10000", "--noise-mode", "matrix"],
      /^Option --noise-mode is "matrix" but option --noise-matrix is not given$/,
    ],
    [
      ["-d", "nope"],
      /^Dataset config "nope" not found: .*known datasets: aptos, bloodmnist, demo, ham10000, organcmnist, synthetic/,
    ],
    [
      ["-d", "ham10000", "--bogus"],
      /^Unknown option '--bogus'$/,
    ],
    [["-n", "0.2"], /^Required option '-d, --data <name\|path>' not specified/],
  ];
  for (const [argv, pattern] of cases) {
    const e = exitOf(() => parseTrainArgs("cufit", argv));
    assert.equal(e.exitCode, 2, argv.join(" "));
    assert.match(e.message, pattern);
  }
});

Deno.test("parseTrainArgs() reads a noise matrix from a JSON file", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "t.json");
  const t = [[0.8, 0.2, 0, 0, 0], [0, 0.8, 0.2, 0, 0], [0, 0, 0.8, 0.2, 0], [
    0,
    0,
    0,
    0.8,
    0.2,
  ], [0.2, 0, 0, 0, 0.8]];
  await Deno.writeTextFile(file, JSON.stringify(t));
  const c = parseTrainArgs("rein", [
    "-d",
    "aptos",
    "--noise-mode",
    "matrix",
    "--noise-matrix",
    file,
  ]);
  assert.deepEqual(c.noise.matrix, t);
  await Deno.writeTextFile(file, "[[1]]");
  assert.match(
    exitOf(() =>
      parseTrainArgs("rein", [
        "-d",
        "aptos",
        "--noise-mode",
        "matrix",
        "--noise-matrix",
        file,
      ])
    ).message,
    /^Option --noise-matrix must be a 5 x 5 matrix/,
  );
});

Deno.test("parseTrainArgs() returns the help text with exit code 0", () => {
  const e = exitOf(() => parseTrainArgs("linear", ["--help"]));
  assert.equal(e.exitCode, 0);
  assert.match(e.message, /^Usage: train:linear \[options\]/);
  assert.match(
    e.message,
    /--cache-features +center-crop features computed once, much faster/,
  );
  assert.match(e.message, /-d, --data <name\|path>/);
});

Deno.test("trainCommand() defines the same flags for the three methods", () => {
  const flags = (m: "linear" | "rein" | "cufit") =>
    trainCommand(m).options.map((o) => o.flags);
  assert.deepEqual(flags("linear"), flags("cufit"));
  assert.deepEqual(flags("rein"), flags("cufit"));
  assert.ok(flags("cufit").includes("-n, --noise <rate>"));
});

Deno.test("parseTrainArgs() takes --threads as a positive integer, every core by default", () => {
  assert.equal(parseTrainArgs("cufit", ["-d", "demo"]).threads, null);
  assert.equal(
    parseTrainArgs("cufit", ["-d", "demo", "--threads", "2"]).threads,
    2,
  );
  assert.throws(
    () => parseTrainArgs("cufit", ["-d", "demo", "--threads", "0"]),
    CliExit,
    "--threads",
  );
});

Deno.test("parseTrainArgs() reads -n=-0.1 as -0.1 and refuses it as out of range", () => {
  const e = exitOf(() => parseTrainArgs("cufit", ["-d", "demo", "-n=-0.1"]));
  assert.equal(e.exitCode, 2);
  assert.equal(
    e.message,
    "Option --noise must be a number in [0, 1], got -0.1",
  );
  const c = parseTrainArgs("cufit", ["-d", "demo", "-n=0.3"]);
  assert.equal(c.noise.rate, 0.3);
});

Deno.test("parseTrainArgs() folds commander's suggestion into one line", () => {
  const e = exitOf(() =>
    parseTrainArgs("rein", ["-d", "demo", "--epoch", "3"])
  );
  assert.equal(e.message, "Unknown option '--epoch' (did you mean --epochs?)");
});

Deno.test("train --help names every dataset file in conf/", async () => {
  const help = exitOf(() => parseTrainArgs("cufit", ["--help"])).message;
  const confDir = new URL("../conf/", import.meta.url);
  for await (const e of Deno.readDir(confDir)) {
    if (!e.name.endsWith(".json")) continue;
    assert.match(help, new RegExp(`\\b${e.name.slice(0, -5)}\\b`), e.name);
  }
});

Deno.test("parseTrainArgs() --save-path replaces the dataset file's save_path", () => {
  const c = parseTrainArgs("linear", [
    "-d",
    "demo",
    "--save-path",
    "runs/x/runs",
  ]);
  assert.equal(c.savePath, "runs/x/runs");
  assert.equal(
    parseTrainArgs("linear", ["-d", "demo"]).savePath,
    "./checkpoints/DEMO/",
  );
});

Deno.test("the README's training commands name the folder the run really goes to", async () => {
  const readme = await Deno.readTextFile(
    new URL("../README.md", import.meta.url),
  );
  const found = [
    ...readme.matchAll(/deno task train:(\w+) ([^#\n]*?)\s+# -> (\S+)/g),
  ];
  assert.ok(found.length > 0);
  for (const [, method, args, shown] of found) {
    const c = parseTrainArgs(method as "cufit", args.split(/\s+/));
    assert.equal(
      normalize(join(c.savePath, c.saveName)) + "/",
      normalize(shown),
      args,
    );
  }
});
