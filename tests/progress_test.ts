import assert from "node:assert/strict";
import {
  formatBytes,
  formatDuration,
  Progress,
  type ProgressStream,
} from "../lib/io/progress.ts";

/** A stream that keeps what it is given, and a clock the test moves. */
function harness(isTerminal = false) {
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  const stream: ProgressStream = {
    writeSync(p) {
      chunks.push(decoder.decode(p));
      return p.length;
    },
    isTerminal: () => isTerminal,
  };
  const clock = { ms: 0 };
  return {
    stream,
    now: () => clock.ms,
    clock,
    text: () => chunks.join(""),
    writes: () => chunks.length,
  };
}

Deno.test("Progress prints plain lines only at each tenth of the total", () => {
  const h = harness();
  const bar = new Progress(100, {
    label: "prep",
    unit: "img",
    stream: h.stream,
    now: h.now,
  });
  for (let i = 0; i < 100; i++) {
    h.clock.ms += 10;
    bar.tick();
  }
  const lines = h.text().trimEnd().split("\n");
  assert.equal(lines.length, 10);
  assert.match(lines[0], /^prep +10% 10\/100 img 100 img\/s ETA 0:01$/);
  assert.match(lines[9], /^prep 100% 100\/100 img 100 img\/s$/);
  assert.ok(!h.text().includes("\r"), "plain output must not redraw");
});

Deno.test("Progress prints a plain line after 5 s without a new tenth", () => {
  const h = harness();
  const bar = new Progress(1000, { stream: h.stream, now: h.now });
  bar.tick(1);
  h.clock.ms = 4000;
  bar.tick(1);
  assert.equal(h.writes(), 0);
  h.clock.ms = 6000;
  bar.tick(1, "loss 0.53");
  assert.equal(h.writes(), 1);
  assert.match(h.text(), /3\/1000 it .* loss 0\.53\n$/);
});

Deno.test("Progress redraws a terminal line at most every 100 ms", () => {
  const h = harness(true);
  const bar = new Progress(50, {
    label: "epoch 1",
    stream: h.stream,
    now: h.now,
  });
  for (let i = 0; i < 50; i++) {
    h.clock.ms += 10;
    bar.tick();
  }
  // Ticks at 10, 20, ..., 500 ms: a draw at 10 ms, then one every 100 ms.
  assert.equal(h.writes(), 5);
  assert.ok(h.text().startsWith("\r\x1b[2Kepoch 1 ["));
  assert.ok(!h.text().includes("\n"));
  bar.done("acc 81.2%");
  assert.ok(
    h.text().endsWith(
      "\r\x1b[2Kepoch 1 done: 50 it in 0:01 (100 it/s) acc 81.2%\n",
    ),
  );
});

Deno.test("Progress shows a bar, rate and ETA on a terminal", () => {
  const h = harness(true);
  const bar = new Progress(4, { stream: h.stream, now: h.now, unit: "batch" });
  h.clock.ms = 1000;
  bar.tick(1);
  assert.equal(
    h.text(),
    "\r\x1b[2K[######------------------]  25% 1/4 batch 1.0 batch/s ETA 0:03",
  );
});

Deno.test("Progress counts bytes in binary units and leaves a resumed prefix out of the rate", () => {
  const h = harness();
  const mib = 1024 * 1024;
  const bar = new Progress(10 * mib, {
    bytes: true,
    initial: 5 * mib,
    stream: h.stream,
    now: h.now,
  });
  h.clock.ms = 1000;
  bar.tick(mib);
  assert.equal(h.text(), " 60% 6.0 MiB/10.0 MiB 1.0 MiB/s ETA 0:04\n");
});

Deno.test("Progress with an unknown total shows the count and rate only", () => {
  const h = harness();
  const bar = new Progress(0, { stream: h.stream, now: h.now, unit: "img" });
  h.clock.ms = 6000;
  bar.tick(12);
  assert.equal(h.text(), "12 img 2.0 img/s\n");
  bar.done();
  assert.equal(h.writes(), 2);
  assert.match(h.text(), /done: 12 img in 0:06 \(2\.0 img\/s\)\n$/);
});

Deno.test("Progress ignores ticks after done()", () => {
  const h = harness();
  const bar = new Progress(10, { stream: h.stream, now: h.now });
  bar.done();
  const before = h.writes();
  bar.tick(10);
  bar.done();
  assert.equal(h.writes(), before);
});

Deno.test("formatBytes() and formatDuration() read like a person would write them", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(1.25 * 1024 ** 3), "1.3 GiB");
  assert.equal(formatDuration(59_400), "0:59");
  assert.equal(formatDuration(61_000), "1:01");
  assert.equal(formatDuration(3_725_000), "1:02:05");
  assert.equal(formatDuration(Infinity), "?");
});
