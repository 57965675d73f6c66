/**
 * Headless Chromium for the tests that check a self-contained HTML page
 * renders (the demo report, label_issues.html, table.html): Debian's
 * `/usr/bin/chromium`, started without the background services that would
 * try to reach the network, with a fresh profile folder per call.
 *
 * @module
 */
import { existsSync } from "node:fs";

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether the browser is installed (the tests that need it skip otherwise). */
export const hasChromium: boolean = existsSync(CHROMIUM);

/** Runs headless Chromium with `args` and the profile folder `profile`. */
export async function chromium(
  args: string[],
  profile: string,
): Promise<{ code: number; stdout: string }> {
  const out = await new Deno.Command(CHROMIUM, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--user-data-dir=${profile}`,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}
