/**
 * `deno task train:cufit -d <dataset> -n <noise rate> -s <run name>`: see
 * `--help` and lib/train/task.ts.
 *
 * @module
 */
import { trainTask } from "../lib/train/task.ts";

if (import.meta.main) {
  Deno.exitCode = await trainTask("cufit", Deno.args, {
    handleInterrupt: true,
  });
}
