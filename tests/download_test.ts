import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { download } from "../lib/io/download.ts";

/** How the test server misbehaves for one path. */
interface Quirks {
  /** Close the connection after this many body bytes, for the first `times` requests. */
  cutAfter?: number;
  times?: number;
  /** Answer 200 with the whole file even to a Range request. */
  ignoreRange?: boolean;
  /** Send these bytes instead of the file (same headers otherwise). */
  wrongBody?: Uint8Array;
  status?: number;
}

/**
 * A local file server: Range requests (206, 416), connections cut midway,
 * wrong bodies. Records each request's Range header.
 */
function serve(
  files: Record<string, Uint8Array>,
  quirks: Record<string, Quirks> = {},
) {
  const ranges: (string | null)[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      const quirk = quirks[path] ?? {};
      const range = request.headers.get("range");
      ranges.push(range);
      if (quirk.status) return new Response("nope", { status: quirk.status });
      const file = files[path];
      if (!file) return new Response("not found", { status: 404 });
      const body = quirk.wrongBody ?? file;
      let start = 0;
      let status = 200;
      const headers = new Headers();
      const match = range && !quirk.ignoreRange
        ? /^bytes=(\d+)-$/.exec(range)
        : null;
      if (match) {
        start = Number(match[1]);
        if (start >= body.length) {
          return new Response(null, {
            status: 416,
            headers: { "content-range": `bytes */${body.length}` },
          });
        }
        status = 206;
        headers.set(
          "content-range",
          `bytes ${start}-${body.length - 1}/${body.length}`,
        );
      }
      const slice = body.subarray(start);
      headers.set("content-length", String(slice.length));
      let sent = slice;
      if (quirk.cutAfter !== undefined && (quirk.times ?? 1) > 0) {
        quirk.times = (quirk.times ?? 1) - 1;
        sent = slice.subarray(0, quirk.cutAfter);
      }
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(sent);
          controller.close();
        },
      });
      return new Response(stream, { status, headers });
    },
  );
  return {
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    ranges,
    close: () => server.shutdown(),
  };
}

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function missing(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return false;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}

const FILE = bytes(4096);

Deno.test("download() fetches into a new folder, verifies md5 and sha256, and leaves no .part", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE });
  try {
    const dest = join(dir, "new", "a.bin");
    const seen: [number, number | undefined][] = [];
    const result = await download(server.url("/a.bin"), dest, {
      md5: md5(FILE),
      sha256: sha256(FILE).toUpperCase(),
      size: FILE.length,
      onProgress: (r, t) => seen.push([r, t]),
    });
    assert.deepEqual(await Deno.readFile(dest), FILE);
    assert.equal(result.bytes, 4096);
    assert.equal(result.md5, md5(FILE));
    assert.equal(result.skipped, false);
    assert.deepEqual(seen[0], [0, 4096]);
    assert.deepEqual(seen.at(-1), [4096, 4096]);
    assert.ok(await missing(dest + ".part"));
    assert.deepEqual(server.ranges, [null]);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() resumes a .part with a Range request and hashes the prefix too", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE });
  try {
    const dest = join(dir, "a.bin");
    await Deno.writeFile(dest + ".part", FILE.subarray(0, 1000));
    const result = await download(server.url("/a.bin"), dest, {
      md5: md5(FILE),
    });
    assert.deepEqual(server.ranges, ["bytes=1000-"]);
    assert.equal(result.resumedFrom, 1000);
    assert.equal(result.sha256, sha256(FILE));
    assert.deepEqual(await Deno.readFile(dest), FILE);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() starts over when the server answers a Range request with 200", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE }, { "/a.bin": { ignoreRange: true } });
  try {
    const dest = join(dir, "a.bin");
    await Deno.writeFile(dest + ".part", new Uint8Array(1000).fill(7));
    const result = await download(server.url("/a.bin"), dest, {
      md5: md5(FILE),
    });
    assert.deepEqual(server.ranges, ["bytes=1000-"]);
    assert.equal(result.resumedFrom, 0);
    assert.deepEqual(await Deno.readFile(dest), FILE);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() takes a 416 for a complete .part as done", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE });
  try {
    const dest = join(dir, "a.bin");
    await Deno.writeFile(dest + ".part", FILE);
    const result = await download(server.url("/a.bin"), dest, {
      md5: md5(FILE),
    });
    assert.deepEqual(server.ranges, ["bytes=4096-"]);
    assert.equal(result.md5, md5(FILE));
    assert.ok(await missing(dest + ".part"));
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() restarts from zero after a 416 for a .part longer than the file", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE });
  try {
    const dest = join(dir, "a.bin");
    await Deno.writeFile(dest + ".part", bytes(5000, 9));
    await download(server.url("/a.bin"), dest, { md5: md5(FILE) });
    assert.deepEqual(server.ranges, ["bytes=5000-", null]);
    assert.deepEqual(await Deno.readFile(dest), FILE);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() keeps the .part of a cut connection and the next call resumes it", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE }, { "/a.bin": { cutAfter: 1000 } });
  try {
    const dest = join(dir, "a.bin");
    await assert.rejects(
      download(server.url("/a.bin"), dest, { md5: md5(FILE), retries: 0 }),
      /interrupted at 1000 of 4096 bytes .*a\.bin\.part" is kept: run again to resume/,
    );
    assert.equal((await Deno.stat(dest + ".part")).size, 1000);
    assert.ok(await missing(dest));
    const result = await download(server.url("/a.bin"), dest, {
      md5: md5(FILE),
    });
    assert.equal(result.resumedFrom, 1000);
    assert.deepEqual(server.ranges, [null, "bytes=1000-"]);
    assert.deepEqual(await Deno.readFile(dest), FILE);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() resumes by itself after a cut connection when retries remain", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE }, {
    "/a.bin": { cutAfter: 700, times: 2 },
  });
  try {
    const dest = join(dir, "a.bin");
    const result = await download(server.url("/a.bin"), dest, {
      sha256: sha256(FILE),
      retries: 2,
      retryDelayMs: 0,
    });
    assert.deepEqual(server.ranges, [null, "bytes=700-", "bytes=1400-"]);
    assert.equal(result.resumedFrom, 1400);
    assert.deepEqual(await Deno.readFile(dest), FILE);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() deletes the .part on a checksum mismatch and names file and digests", async () => {
  const dir = await Deno.makeTempDir();
  const wrong = bytes(4096, 2);
  const server = serve({ "/a.bin": FILE }, { "/a.bin": { wrongBody: wrong } });
  try {
    const dest = join(dir, "a.bin");
    await assert.rejects(
      download(server.url("/a.bin"), dest, { md5: md5(FILE) }),
      (error: Error) => {
        assert.ok(error.message.includes(`"${dest}"`), error.message);
        assert.ok(error.message.includes(`expected md5 ${md5(FILE)}`));
        assert.ok(error.message.includes(`found ${md5(wrong)}`));
        return true;
      },
    );
    assert.ok(await missing(dest));
    assert.ok(await missing(dest + ".part"));
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() does not fetch a file already present and verified", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE });
  try {
    const dest = join(dir, "a.bin");
    await Deno.writeFile(dest, FILE);
    const result = await download(server.url("/a.bin"), dest, {
      md5: md5(FILE),
    });
    assert.equal(result.skipped, true);
    assert.equal(result.sha256, sha256(FILE));
    assert.deepEqual(server.ranges, []);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() keeps an existing file that fails verification and says so", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE });
  try {
    const dest = join(dir, "a.bin");
    await Deno.writeFile(dest, FILE.subarray(0, 10));
    await assert.rejects(
      download(server.url("/a.bin"), dest, { size: 4096 }),
      /Existing file ".*a\.bin" does not match: expected 4096 bytes, found 10; delete it/,
    );
    assert.equal((await Deno.stat(dest)).size, 10);
    assert.deepEqual(server.ranges, []);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() refuses a file whose announced size differs from the expected size", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE });
  try {
    const dest = join(dir, "a.bin");
    await assert.rejects(
      download(server.url("/a.bin"), dest, { size: 5000 }),
      /failed: the server announces 4096 bytes, expected 5000/,
    );
    assert.ok(await missing(dest + ".part"));
    assert.ok(await missing(dest));
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() reports an HTTP error with its status", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({}, { "/gone.bin": { status: 404 } });
  try {
    await assert.rejects(
      download(server.url("/gone.bin"), join(dir, "gone.bin")),
      /Download of http:\/\/127\.0\.0\.1:\d+\/gone\.bin failed: HTTP 404/,
    );
    assert.ok(await missing(join(dir, "gone.bin.part")));
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() rejects a checksum option that is not hexadecimal", async () => {
  await assert.rejects(
    download("http://127.0.0.1:9/x", "/nonexistent/x", { md5: "abc" }),
    /Option md5 is "abc": expected 32 hexadecimal digits/,
  );
});

Deno.test("download() uses the fetch it is given", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const urls: string[] = [];
    const fake = ((input: string | URL | Request) => {
      urls.push(String(input));
      return Promise.resolve(new Response(FILE.slice()));
    }) as typeof fetch;
    const dest = join(dir, "a.bin");
    const result = await download("https://example.invalid/a.bin", dest, {
      fetch: fake,
    });
    assert.deepEqual(urls, ["https://example.invalid/a.bin"]);
    assert.equal(result.md5, md5(FILE));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
