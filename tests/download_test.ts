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
  /**
   * Send this many body bytes, then nothing, for the first `stallTimes`
   * requests (all when unset). The stall ends after 3 s, so a client without
   * an idle timeout still finishes (with a short file).
   */
  stallAfter?: number;
  stallTimes?: number;
  /** Send no headers for 3 s (or until the client gives up). */
  stallHeaders?: boolean;
  /**
   * Stream 64 KiB chunks without a Content-Length, up to 64 MiB, as a
   * broken server sending an endless body would.
   */
  endless?: boolean;
  /** Content-Length to announce instead of the true one. */
  announce?: number;
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
  const stats = { produced: 0 };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      const quirk = quirks[path] ?? {};
      const range = request.headers.get("range");
      ranges.push(range);
      if (quirk.status) return new Response("nope", { status: quirk.status });
      if (quirk.stallHeaders) {
        await new Promise<void>((resolve) => {
          const id = setTimeout(resolve, 3000);
          request.signal.addEventListener("abort", () => {
            clearTimeout(id);
            resolve();
          });
        });
      }
      if (quirk.endless) {
        const chunk = new Uint8Array(1 << 16).fill(7);
        return new Response(
          new ReadableStream<Uint8Array>({
            pull(c) {
              if (stats.produced >= 64 << 20) return c.close();
              stats.produced += chunk.length;
              c.enqueue(chunk);
            },
          }),
          quirk.announce !== undefined
            ? { headers: { "content-length": String(quirk.announce) } }
            : {},
        );
      }
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
      let stall = false;
      if (quirk.stallAfter !== undefined && (quirk.stallTimes ?? 1) > 0) {
        if (quirk.stallTimes !== undefined) quirk.stallTimes--;
        sent = slice.subarray(0, quirk.stallAfter);
        stall = true;
      }
      let stallTimer: ReturnType<typeof setTimeout> | undefined;
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(sent);
          if (!stall) return controller.close();
          stallTimer = setTimeout(() => controller.close(), 3000);
        },
        cancel() {
          clearTimeout(stallTimer);
        },
      });
      return new Response(stream, { status, headers });
    },
  );
  return {
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    ranges,
    stats,
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

Deno.test("download() drops a stalled request after idleTimeoutMs and resumes it", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE }, {
    "/a.bin": { stallAfter: 1000, stallTimes: 1 },
  });
  try {
    const dest = join(dir, "a.bin");
    const started = Date.now();
    await download(server.url("/a.bin"), dest, {
      md5: md5(FILE),
      idleTimeoutMs: 200,
      retryDelayMs: 10,
    });
    assert.deepEqual(await Deno.readFile(dest), FILE);
    assert.deepEqual(server.ranges, [null, "bytes=1000-"]);
    assert.ok(Date.now() - started < 2500, "gave up on the stall early");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() names the stall once its retries are spent", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({ "/a.bin": FILE, "/b.bin": FILE }, {
    "/a.bin": { stallAfter: 1000 },
    "/b.bin": { stallHeaders: true },
  });
  try {
    const dest = join(dir, "a.bin");
    const url = server.url("/a.bin");
    await assert.rejects(
      download(url, dest, { idleTimeoutMs: 200, retries: 1, retryDelayMs: 10 }),
      (e: Error) =>
        e.message ===
          `Download of ${url} interrupted at 2000 of 4096 bytes (no data from the server for 0.2 s); the partial file "${dest}.part" is kept: run again to resume`,
    );
    assert.deepEqual(server.ranges, [null, "bytes=1000-"]);
    // Each try got 1000 more bytes; a server that never answers gets none.
    const silent = server.url("/b.bin");
    await assert.rejects(
      download(silent, join(dir, "b.bin"), {
        idleTimeoutMs: 200,
        retries: 0,
      }),
      (e: Error) =>
        e.message ===
          `Download of ${silent} failed: no data from the server for 0.2 s`,
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("download() stops a body that runs past the expected size and deletes the .part", async () => {
  const dir = await Deno.makeTempDir();
  const server = serve({}, {
    "/endless": { endless: true },
    "/big": { endless: true, announce: 1 << 20 },
  });
  try {
    const dest = join(dir, "e.bin");
    const url = server.url("/endless");
    await assert.rejects(
      download(url, dest, { size: FILE.length }),
      (e: Error) =>
        e.message ===
          `Download of ${url} stopped: the server sent more than the limit of 4096 bytes; deleted "${dest}.part"`,
    );
    assert.ok(await missing(dest + ".part"));
    assert.ok(
      server.stats.produced < 32 << 20,
      `the server produced ${server.stats.produced} bytes`,
    );
    // An explicit limit without a known size.
    await assert.rejects(
      download(url, dest, { maxBytes: 100_000 }),
      /stopped: the server sent more than the limit of 100000 bytes/,
    );
    // A larger announced size is refused before any byte is written.
    const big = server.url("/big");
    await assert.rejects(
      download(big, dest, { maxBytes: 100_000 }),
      (e: Error) =>
        e.message ===
          `Download of ${big} failed: the server announces 1048576 bytes, more than the limit of 100000`,
    );
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
