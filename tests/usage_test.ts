import assert from "node:assert/strict";
import { splitShortEquals, usageLine, usageMessage } from "../lib/cli/usage.ts";

Deno.test("usageMessage() folds commander's two lines into one clause", () => {
  assert.equal(
    usageMessage("error: unknown option '--epoch'\n(Did you mean --epochs?)"),
    "Unknown option '--epoch' (did you mean --epochs?)",
  );
  assert.equal(
    usageMessage("error: missing required argument 'x'."),
    "Missing required argument 'x'",
  );
});

Deno.test("usageLine() starts with the task and ends with a --help hint", () => {
  assert.equal(
    usageLine(
      "demo",
      "error: unknown option '--nois'\n(Did you mean --noise?)",
    ),
    "demo: Unknown option '--nois' (did you mean --noise?); see `deno task demo --help`",
  );
});

Deno.test("splitShortEquals() splits -n=value, leaves the rest alone", () => {
  assert.deepEqual(splitShortEquals(["-n=-0.1", "--noise=0.2", "-d", "x=y"]), [
    "-n",
    "-0.1",
    "--noise=0.2",
    "-d",
    "x=y",
  ]);
});
