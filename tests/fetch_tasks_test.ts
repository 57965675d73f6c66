import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { main as fetchMedmnist } from "../tasks/fetch_medmnist.ts";
import { main as fetchWeights } from "../tasks/fetch_weights.ts";
import type { ProgressStream } from "../lib/io/progress.ts";

interface Route {
  body?: Uint8Array;
  /** Close the connection after this many bytes, once. */
  cutAfter?: number;
  /** Answer 302 to this path, with these extra headers. */
  redirect?: string;
  headers?: Record<string, string>;
  /** Send the headers, then no body byte (for 3 s at most). */
  stall?: boolean;
  /** Stream 1 MiB chunks without a Content-Length, up to 1 GiB. */
  endless?: boolean;
}

/** A local stand-in for Zenodo, Meta's host and the Hub (with its CDN redirect). */
function serve(routes: Record<string, Route>) {
  const log: string[] = [];
  const stats = { produced: 0 };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const url = new URL(request.url);
      const range = request.headers.get("range");
      log.push(`${request.method} ${url.pathname}${range ? ` ${range}` : ""}`);
      const route = routes[url.pathname];
      if (!route) return new Response("not found", { status: 404 });
      if (route.redirect) {
        return new Response(null, {
          status: 302,
          headers: { location: route.redirect, ...route.headers },
        });
      }
      if (route.endless) {
        const chunk = new Uint8Array(1 << 20).fill(3);
        return new Response(
          new ReadableStream<Uint8Array>({
            pull(c) {
              if (stats.produced >= 2 ** 30) return c.close();
              stats.produced += chunk.length;
              c.enqueue(chunk);
            },
          }),
        );
      }
      const body = route.body!;
      const start = range ? Number(/^bytes=(\d+)-$/.exec(range)![1]) : 0;
      const headers = new Headers({
        "content-length": String(body.length - start),
      });
      if (range) {
        headers.set(
          "content-range",
          `bytes ${start}-${body.length - 1}/${body.length}`,
        );
      }
      let sent = body.subarray(start);
      if (route.cutAfter !== undefined) {
        sent = sent.subarray(0, route.cutAfter);
        route.cutAfter = undefined;
      }
      if (request.method === "HEAD") {
        return new Response(null, { status: 200, headers });
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          if (!route.stall) {
            c.enqueue(sent);
            return c.close();
          }
          timer = setTimeout(() => c.close(), 3000);
        },
        cancel() {
          clearTimeout(timer);
        },
      });
      return new Response(stream, { status: range ? 206 : 200, headers });
    },
  );
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    log,
    stats,
    close: () => server.shutdown(),
  };
}

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const hex = (algo: string, b: Uint8Array) =>
  createHash(algo).update(b).digest("hex");

/** Captured output of one `main()` call. */
function io() {
  const lines: string[] = [];
  const progress: ProgressStream = {
    writeSync: (p) => p.length,
    isTerminal: () => false,
  };
  return { lines, options: { print: (l: string) => lines.push(l), progress } };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("fetch:medmnist downloads <flag>_<size>.npz and checks its MD5", async () => {
  const dir = await Deno.makeTempDir();
  const npz = bytes(3000, 1);
  const server = serve({ "/organcmnist_64.npz": { body: npz } });
  try {
    const out = io();
    await fetchMedmnist([
      "organcmnist",
      "--size",
      "64",
      "--out",
      dir,
      "--md5",
      hex("md5", npz),
      "--base-url",
      server.base,
    ], out.options);
    assert.deepEqual(await Deno.readFile(join(dir, "organcmnist_64.npz")), npz);
    assert.deepEqual(server.log, ["GET /organcmnist_64.npz"]);
    assert.match(
      out.lines[0],
      /^Writing .*organcmnist_64\.npz \(from http:\/\/127\.0\.0\.1:\d+\/organcmnist_64\.npz\?download=1\)$/,
    );
    assert.match(
      out.lines.at(-1)!,
      new RegExp(`md5 ${hex("md5", npz)} \\(verified\\)$`),
    );

    // A second run finds the verified file and fetches nothing.
    const again = io();
    await fetchMedmnist(
      [
        "organcmnist",
        "--size",
        "64",
        "--out",
        dir,
        "--md5",
        hex("md5", npz),
        "--base-url",
        server.base,
      ],
      again.options,
    );
    assert.equal(server.log.length, 1);
    assert.match(again.lines.at(-1)!, /\(already present, verified\)$/);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch:medmnist checks against the published MD5 and deletes a wrong download", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/bloodmnist_224.npz": { body: bytes(500, 2) } });
  try {
    await assert.rejects(
      fetchMedmnist(
        ["bloodmnist", "--out", dir, "--base-url", server.base],
        io().options,
      ),
      /bloodmnist_224\.npz" does not match: expected md5 b718ff6835fcbdb22ba9eacccd7b2601, found [0-9a-f]{32}/,
    );
    assert.equal(await exists(join(dir, "bloodmnist_224.npz.part")), false);
    assert.equal(await exists(join(dir, "bloodmnist_224.npz")), false);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch:medmnist names 28 px archives like upstream and resumes a cut download", async () => {
  const dir = await Deno.makeTempDir();
  const npz = bytes(5000, 3);
  const server = serve({ "/bloodmnist.npz": { body: npz, cutAfter: 2000 } });
  const args = [
    "bloodmnist",
    "--size",
    "28",
    "--out",
    dir,
    "--md5",
    hex("md5", npz),
    "--base-url",
    server.base,
  ];
  try {
    // The first run retries by itself after the cut.
    await fetchMedmnist(args, io().options);
    assert.deepEqual(server.log, [
      "GET /bloodmnist.npz",
      "GET /bloodmnist.npz bytes=2000-",
    ]);
    assert.deepEqual(await Deno.readFile(join(dir, "bloodmnist.npz")), npz);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch:medmnist rejects an unknown flag, a bad size and a missing flag", async () => {
  await assert.rejects(
    fetchMedmnist(["pathmnist"], io().options),
    /MedMNIST flag "pathmnist" has no recorded MD5: expected one of bloodmnist, organcmnist/,
  );
  await assert.rejects(
    fetchMedmnist(["bloodmnist", "--size", "32"], io().options),
    /MedMNIST size 32: expected one of 28, 64, 128, 224/,
  );
  await assert.rejects(
    fetchMedmnist([], io().options),
    /Missing required argument 'flag'; see `deno task fetch:medmnist --help`$/,
  );
  const help = io();
  await fetchMedmnist(["--help"], help.options);
  assert.match(
    help.lines.join("\n"),
    /Usage: fetch:medmnist \[options\] <flag>/,
  );
});

Deno.test("fetch:weights --source meta saves <name>_pretrain.pth and its .sha256", async () => {
  const dir = await Deno.makeTempDir();
  const pth = bytes(4000, 4);
  const server = serve({
    "/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth": { body: pth },
  });
  try {
    const out = io();
    await fetchWeights([
      "dinov2_vits14",
      "--out",
      dir,
      "--base-url",
      server.base,
    ], out.options);
    const dest = join(dir, "dinov2_vits14_pretrain.pth");
    assert.deepEqual(await Deno.readFile(dest), pth);
    assert.equal(
      await Deno.readTextFile(`${dest}.sha256`),
      `${hex("sha256", pth)}  dinov2_vits14_pretrain.pth\n`,
    );
    assert.match(out.lines.at(-1)!, /size checked; no published checksum\)$/);

    // The re-run verifies the file against the recorded digest.
    const again = io();
    await fetchWeights([
      "dinov2_vits14",
      "--out",
      dir,
      "--base-url",
      server.base,
    ], again.options);
    assert.equal(server.log.length, 1);
    assert.match(again.lines.at(-1)!, /matches .*\.sha256, already present\)$/);
    await Deno.writeFile(dest, bytes(4000, 5));
    await assert.rejects(
      fetchWeights(
        ["dinov2_vits14", "--out", dir, "--base-url", server.base],
        io().options,
      ),
      /Existing file ".*dinov2_vits14_pretrain\.pth" does not match: expected sha256 [0-9a-f]{64}, found/,
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch:weights --source hf checks the SHA-256 the Hub announces before redirecting", async () => {
  const dir = await Deno.makeTempDir();
  const st = bytes(6000, 6);
  const hubPath = "/facebook/dinov2-base/resolve/main/model.safetensors";
  const server = serve({
    [hubPath]: {
      redirect: "/cdn/blob",
      headers: {
        "x-linked-etag": `"${hex("sha256", st)}"`,
        "x-linked-size": String(st.length),
      },
    },
    "/cdn/blob": { body: st },
  });
  try {
    const out = io();
    await fetchWeights(
      [
        "dinov2_vitb14",
        "--source",
        "hf",
        "--out",
        dir,
        "--base-url",
        server.base,
      ],
      out.options,
    );
    const dest = join(dir, "dinov2_vitb14_hf.safetensors");
    assert.deepEqual(await Deno.readFile(dest), st);
    assert.deepEqual(server.log, [
      `HEAD ${hubPath}`,
      `GET ${hubPath}`,
      "GET /cdn/blob",
    ]);
    assert.match(out.lines.at(-1)!, /matches the SHA-256 the Hub announces\)$/);
    assert.ok(
      (await Deno.readTextFile(`${dest}.sha256`)).startsWith(hex("sha256", st)),
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch:weights --source hf rejects a file that differs from the announced SHA-256", async () => {
  const dir = await Deno.makeTempDir();
  const hubPath = "/facebook/dinov2-small/resolve/main/model.safetensors";
  const server = serve({
    [hubPath]: {
      redirect: "/cdn/blob",
      headers: { "x-linked-etag": `"${"ab".repeat(32)}"` },
    },
    "/cdn/blob": { body: bytes(100, 7) },
  });
  try {
    await assert.rejects(
      fetchWeights([
        "dinov2_vits14",
        "--source",
        "hf",
        "--out",
        dir,
        "--base-url",
        server.base,
      ], io().options),
      new RegExp(
        `dinov2_vits14_hf\\.safetensors" does not match: expected sha256 ${
          "ab".repeat(32)
        }, found`,
      ),
    );
    assert.equal(
      await exists(join(dir, "dinov2_vits14_hf.safetensors")),
      false,
    );
    assert.equal(
      await exists(join(dir, "dinov2_vits14_hf.safetensors.sha256")),
      false,
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch:weights rejects an unknown model or source", async () => {
  await assert.rejects(
    fetchWeights(["dinov2_vitg14"], io().options),
    /DINOv2 model "dinov2_vitg14": expected one of dinov2_vits14, dinov2_vitb14, dinov2_vitl14/,
  );
  await assert.rejects(
    fetchWeights(["dinov2_vits14", "--source", "torchhub"], io().options),
    /Weights source "torchhub": expected meta or hf/,
  );
});

Deno.test("fetch:medmnist gives up on a silent server after --timeout and --retries", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({
    "/organcmnist_64.npz": { body: bytes(3000, 8), stall: true },
  });
  try {
    const started = Date.now();
    await assert.rejects(
      fetchMedmnist([
        "organcmnist",
        "--size",
        "64",
        "--out",
        dir,
        "--base-url",
        server.base,
        "--timeout",
        "0.2",
        "--retries",
        "1",
      ], io().options),
      (e: Error) =>
        e.message ===
          `Download of ${server.base}/organcmnist_64.npz?download=1 failed: no data from the server for 0.2 s`,
    );
    // One retry after a 1 s pause: well under the server's 3 s stall.
    assert.ok(Date.now() - started < 2800, "stopped waiting early");
    assert.deepEqual(server.log, [
      "GET /organcmnist_64.npz",
      "GET /organcmnist_64.npz",
    ]);
    await assert.rejects(
      fetchMedmnist(["organcmnist", "--timeout", "soon"], io().options),
      /--timeout is "soon": expected a positive number of seconds/,
    );
    await assert.rejects(
      fetchMedmnist(["organcmnist", "--retries", "-1"], io().options),
      /--retries is "-1": expected a whole number from 0 to 100/,
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch:weights stops an endless body at the size the model's parameters allow", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({
    "/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth": { endless: true },
  });
  try {
    const dest = join(dir, "dinov2_vits14_pretrain.pth");
    await assert.rejects(
      fetchWeights(
        ["dinov2_vits14", "--out", dir, "--base-url", server.base],
        io().options,
      ),
      (e: Error) =>
        e.message ===
          `Download of ${server.base}/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth stopped: the server sent more than the limit of 90157144 bytes; deleted "${dest}.part"`,
    );
    assert.equal(await exists(`${dest}.part`), false);
    assert.ok(
      server.stats.produced < 256 << 20,
      `the server produced ${server.stats.produced} bytes`,
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
