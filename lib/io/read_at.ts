/**
 * Positioned reads of a file into a caller's buffer, for formats read by
 * offset (zip, safetensors, format sniffing).
 *
 * @module
 */

/**
 * Reads up to `bytes.length` bytes at `position`, looping over short reads;
 * returns how many arrived (fewer only at the end of the file).
 */
export async function readAt(
  file: Deno.FsFile,
  position: number,
  bytes: Uint8Array,
): Promise<number> {
  await file.seek(position, Deno.SeekMode.Start);
  let got = 0;
  while (got < bytes.length) {
    const n = await file.read(bytes.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got;
}
