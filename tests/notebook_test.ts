import assert from "node:assert/strict";
import { join } from "node:path";

const NOTEBOOK = new URL("../notebooks/quickstart.ipynb", import.meta.url);
const MOD = new URL("../mod.ts", import.meta.url);

interface Cell {
  cell_type: string;
  source: string[] | string;
}

async function codeCells(): Promise<string[]> {
  const nb = JSON.parse(await Deno.readTextFile(NOTEBOOK));
  assert.equal(nb.metadata?.kernelspec?.name, "deno");
  return (nb.cells as Cell[])
    .filter((c) => c.cell_type === "code")
    .map((c) => Array.isArray(c.source) ? c.source.join("") : c.source);
}

Deno.test("quickstart notebook cells end in a newline, as deno fmt --check wants", async () => {
  // deno fmt rewrites nothing here, but --check on a fresh clone (no format
  // cache) fails on a cell whose last line has no newline.
  const nb = JSON.parse(await Deno.readTextFile(NOTEBOOK));
  (nb.cells as Cell[]).forEach((c, i) => {
    const src = Array.isArray(c.source) ? c.source.join("") : c.source;
    assert.ok(
      src === "" || src.endsWith("\n"),
      `cell ${i} lacks a final newline`,
    );
  });
});

Deno.test("quickstart notebook imports only mod.ts and type-checks", async () => {
  const cells = await codeCells();
  assert.ok(
    cells.length >= 4,
    `expected several code cells, got ${cells.length}`,
  );
  const imports = cells.join("\n").matchAll(
    /\bfrom\s+"([^"]+)"|\bimport\(\s*"([^"]+)"/g,
  );
  for (const m of imports) assert.equal(m[1] ?? m[2], "../mod.ts");
  // The cells as one module, with mod.ts imported by absolute URL.
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "notebook.ts");
    await Deno.writeTextFile(
      file,
      cells.join("\n").replaceAll('"../mod.ts"', JSON.stringify(MOD.href)) +
        "\nexport {};\n",
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", file],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(
      out.code,
      0,
      new TextDecoder().decode(out.stderr) +
        new TextDecoder().decode(out.stdout),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
