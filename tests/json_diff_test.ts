import assert from "node:assert/strict";
import { firstDifference } from "../lib/io/json_diff.ts";

Deno.test("firstDifference() names the first differing key path, or null", () => {
  const was = { a: 1, b: { c: [1, 2], d: "x" } };
  assert.equal(firstDifference(was, structuredClone(was)), null);
  assert.deepEqual(
    firstDifference(was, { a: 1, b: { c: [1, 3], d: "x" } }),
    { key: "b.c.1", was: 2, now: 3 },
  );
  assert.deepEqual(firstDifference(was, { a: 1, b: { c: [1, 2] } }), {
    key: "b.d",
    was: "x",
    now: undefined,
  });
  assert.deepEqual(firstDifference({ x: null }, { x: {} }), {
    key: "x",
    was: null,
    now: {},
  });
  assert.deepEqual(firstDifference(NaN, 0), { key: "", was: NaN, now: 0 });
  assert.equal(firstDifference(NaN, NaN), null);
});

Deno.test("firstDifference() prefixes a path and skips ignored keys", () => {
  assert.deepEqual(
    firstDifference({ n: 1 }, { n: 2 }, { path: "config" }),
    { key: "config.n", was: 1, now: 2 },
  );
  const ignore = (key: string) => key === "resume" || key === "a.b";
  assert.equal(
    firstDifference(
      { resume: false, a: { b: 1, c: 2 } },
      { resume: true, a: { b: 9, c: 2 } },
      { ignore },
    ),
    null,
  );
  assert.deepEqual(
    firstDifference({ a: { b: 1, c: 2 } }, { a: { b: 9, c: 3 } }, { ignore }),
    { key: "a.c", was: 2, now: 3 },
  );
});
