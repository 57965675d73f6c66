/**
 * Where the tests find the reference goldens: the repository's own copy in
 * `tests/fixtures/reference/` (see its README), or another set of goldens
 * produced the same way when `CUFIT_FIXTURES` names their folder. Every size
 * is read from the files, so other seeds, sizes and class counts work too.
 *
 * @module
 */

function fixturesUrl(): URL {
  const dir = Deno.env.get("CUFIT_FIXTURES");
  if (!dir) return new URL("./fixtures/reference/", import.meta.url);
  const abs = dir.startsWith("/") ? dir : `${Deno.cwd()}/${dir}`;
  return new URL(`file://${abs.endsWith("/") ? abs : `${abs}/`}`);
}

/** The golden fixtures' folder, as a `file:` URL ending in a slash. */
export const FIXTURES_URL: URL = fixturesUrl();
