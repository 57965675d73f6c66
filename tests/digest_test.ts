import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256, sha256File, sha256Labels } from "../lib/io/digest.ts";

// sha256("abc") from FIPS 180-2, appendix B.1.
const ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

Deno.test("sha256() hashes bytes and UTF-8 text alike", () => {
  assert.equal(sha256("abc"), ABC);
  assert.equal(sha256(new Uint8Array([0x61, 0x62, 0x63])), ABC);
});

Deno.test("sha256File() streams a file larger than its read chunk", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "big.bin");
  const data = new Uint8Array((1 << 20) * 2 + 17).map((_, i) => i % 251);
  await Deno.writeFile(file, data);
  assert.equal(await sha256File(file), sha256(data));
  await Deno.writeTextFile(file, "abc");
  assert.equal(await sha256File(file), ABC);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sha256Labels() hashes one decimal label per line", () => {
  assert.equal(sha256Labels([0, 2, 1]), sha256("0\n2\n1\n"));
  assert.equal(sha256Labels(Int32Array.from([0, 2, 1])), sha256("0\n2\n1\n"));
  assert.notEqual(sha256Labels([0, 2, 1]), sha256Labels([0, 1, 2]));
});
