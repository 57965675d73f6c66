/**
 * JSON text parsed with an error that names what was being read.
 *
 * @module
 */

/**
 * `JSON.parse(text)`, or a `SyntaxError` "Cannot parse <what>: <reason>",
 * e.g. `parseJson(text, 'sweep file "x.json"')`.
 */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`Cannot parse ${what}: ${(e as Error).message}`);
  }
}
