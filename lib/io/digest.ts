/**
 * SHA-256 digests of files, bytes and label lists, as lowercase hex.
 *
 * Files are hashed in chunks so a ViT-L weights file (~1.2 GB) never sits in
 * memory.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** SHA-256 of a file's contents, read as a stream. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const chunk = new Uint8Array(1 << 20);
  while (true) {
    const n = await file.read(chunk);
    if (n === null) break;
    hash.update(chunk.subarray(0, n));
  }
  return hash.digest("hex");
}

/** SHA-256 of bytes, or of a string's UTF-8 encoding. */
export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * SHA-256 of a label list written as text: one decimal label per line, each
 * line ending in `\n` (so `printf '0\n2\n1\n' | sha256sum` reproduces it).
 */
export function sha256Labels(labels: ArrayLike<number>): string {
  let text = "";
  for (let i = 0; i < labels.length; i++) text += `${labels[i]}\n`;
  return sha256(text);
}
