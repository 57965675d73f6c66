/**
 * Small PNG thumbnails of dataset images as `data:` URIs, so that an HTML
 * report embeds its images and fetches nothing.
 *
 * @module
 */
import type { Dataset } from "../data/dataset.ts";

/**
 * Sample `i` of `dataset` as a `data:image/png;base64,...` URI, scaled to
 * `size` pixels on its longer side (nearest-neighbour when enlarging, so tiny
 * images stay sharp).
 */
export async function thumbnailDataUri(
  dataset: Dataset,
  i: number,
  size = 64,
): Promise<string> {
  const { default: sharp } = await import("sharp");
  const img = await dataset.image(i);
  const enlarge = Math.max(img.width, img.height) < size;
  const png = await sharp(img.data, {
    raw: { width: img.width, height: img.height, channels: img.channels },
  })
    .resize(size, size, {
      fit: "inside",
      kernel: enlarge ? "nearest" : "lanczos3",
    })
    .png()
    .toBuffer();
  return `data:image/png;base64,${png.toString("base64")}`;
}
