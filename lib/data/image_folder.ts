/**
 * torchvision's `ImageFolder`: `{dir}/{CLASS}/**` image files, labelled by
 * class folder.
 *
 * The order is torchvision's (0.14), which the reference's label noise is
 * drawn in: classes are the sorted sub-folder names; within a class, the
 * folders `os.walk(followlinks=True)` visits are sorted by path and the
 * files of each sorted by name. Sorting compares code points, as Python
 * does. Only files with an image extension count (case-insensitive); a class
 * folder without any is an error, as in torchvision.
 *
 * Symlinks are followed as `os.walk(followlinks=True)` does, but only while
 * they resolve inside the dataset's folder: a link out of it (say
 * `train/a -> /etc`) is refused unless `allowOutsideLinks` is set, so a
 * dataset cannot make the loader read files it was not pointed at.
 *
 * @module
 */
import type { Dataset } from "./dataset.ts";
import { decodeImage, type RawImage } from "./image.ts";

/** torchvision's `IMG_EXTENSIONS`. */
export const imageExtensions = [
  ".jpg",
  ".jpeg",
  ".png",
  ".ppm",
  ".bmp",
  ".pgm",
  ".tif",
  ".tiff",
  ".webp",
] as const;

/** Options of {@linkcode loadImageFolder}. */
export interface ImageFolderOptions {
  /**
   * Dataset name reported by the result.
   * @default the folder's name
   */
  name?: string;
  /**
   * The folder symlinks must resolve inside (compared by real path).
   * @default the image folder itself
   */
  within?: string;
  /**
   * Follow symlinks that resolve outside `within` too.
   * @default false
   */
  allowOutsideLinks?: boolean;
  /**
   * Pixel limit per image, passed to `decodeImage`.
   * @default Pillow's 178,956,970 (or `CUFIT_MAX_IMAGE_PIXELS`)
   */
  maxPixels?: number;
}

/**
 * Index an image folder. Files are not opened until `image(i)`.
 *
 * @throws Error naming the folder when it is missing, has no class folders,
 * or a class folder holds no image.
 */
export async function loadImageFolder(
  dir: string,
  options: ImageFolderOptions = {},
): Promise<Dataset> {
  const root = dir.replace(/\/+$/, "") || "/";
  const guard = options.allowOutsideLinks
    ? undefined
    : await linkGuard(options.within ?? root, root);
  const top = await listDir(root, `Image folder "${root}"`, guard);
  const classes = top.dirs.sort(comparePython);
  if (classes.length === 0) {
    throw new Error(
      `Image folder "${root}" has no class folders (expected ${root}/<CLASS>/<image>)`,
    );
  }
  const files: string[] = [];
  const labelList: number[] = [];
  for (let c = 0; c < classes.length; c++) {
    const classDir = join(root, classes[c]);
    const walked: { path: string; files: string[] }[] = [];
    await walk(classDir, walked, guard);
    walked.sort((a, b) => comparePython(a.path, b.path));
    const before = files.length;
    for (const w of walked) {
      for (const f of w.files.sort(comparePython)) {
        if (isImage(f)) {
          files.push(join(w.path, f));
          labelList.push(c);
        }
      }
    }
    if (files.length === before) {
      throw new Error(
        `Class folder "${classDir}" has no images (expected files ending in ${
          imageExtensions.join(", ")
        })`,
      );
    }
  }
  const labels = Int32Array.from(labelList);
  const n = files.length;
  return {
    name: options.name ?? root.split("/").pop() ?? root,
    classes,
    numClasses: classes.length,
    length: n,
    labels,
    describe: (i) => files[i] ?? `${root}[${i}]`,
    image(i: number): Promise<RawImage> {
      if (!Number.isInteger(i) || i < 0 || i >= n) {
        return Promise.reject(
          new RangeError(
            `Image folder "${root}" has no sample ${i} (it has ${n})`,
          ),
        );
      }
      return decodeImage(files[i], { maxPixels: options.maxPixels });
    },
  };
}

function isImage(name: string): boolean {
  const lower = name.toLowerCase();
  return imageExtensions.some((e) => lower.endsWith(e));
}

function join(a: string, b: string): string {
  return a.endsWith("/") ? a + b : `${a}/${b}`;
}

/** Checks that a symlink resolves inside the dataset; throws naming it. */
type LinkGuard = (link: string, real: string) => void;

async function linkGuard(within: string, root: string): Promise<LinkGuard> {
  let base: string;
  try {
    base = await Deno.realPath(within);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`Image folder "${root}" does not exist`);
    }
    throw e;
  }
  const prefix = base.endsWith("/") ? base : `${base}/`;
  return (link, real) => {
    if (real !== base && !real.startsWith(prefix)) {
      throw new Error(
        `Image folder "${root}": "${link}" is a symlink to "${real}", outside "${base}" (refused; allowOutsideLinks follows it)`,
      );
    }
  };
}

/** Sub-folders (symlinks to folders included) and other entries of a folder. */
async function listDir(
  path: string,
  what: string,
  guard: LinkGuard | undefined,
): Promise<{ dirs: string[]; files: string[] }> {
  const dirs: string[] = [];
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(path)) {
      let isDir = e.isDirectory;
      if (e.isSymlink) {
        const link = join(path, e.name);
        let real: string | undefined;
        try {
          real = await Deno.realPath(link);
          isDir = (await Deno.stat(real)).isDirectory;
        } catch {
          isDir = false; // a dangling link is a file to os.walk
        }
        if (real !== undefined) guard?.(link, real);
      }
      (isDir ? dirs : files).push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`${what} does not exist`);
    }
    if (e instanceof Deno.errors.NotADirectory) {
      throw new Error(`${what} is not a folder`);
    }
    throw e;
  }
  return { dirs, files };
}

/** Every folder under `path` (itself included) with its file names, like `os.walk`. */
async function walk(
  path: string,
  out: { path: string; files: string[] }[],
  guard: LinkGuard | undefined,
  seen = new Set<string>(),
): Promise<void> {
  // followlinks=True can loop; Python would recurse until it fails, here a
  // folder already visited (by real path) is skipped.
  const real = await Deno.realPath(path);
  if (seen.has(real)) return;
  seen.add(real);
  const { dirs, files } = await listDir(path, `Folder "${path}"`, guard);
  out.push({ path, files });
  for (const d of dirs) await walk(join(path, d), out, guard, seen);
}

/** Python's string order: by code point (JS `<` compares UTF-16 units). */
function comparePython(a: string, b: string): number {
  if (!/[\ud800-\udfff]/.test(a + b)) return a < b ? -1 : a > b ? 1 : 0;
  const ca = Array.from(a, (ch) => ch.codePointAt(0)!);
  const cb = Array.from(b, (ch) => ch.codePointAt(0)!);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    if (ca[i] !== cb[i]) return ca[i] - cb[i];
  }
  return ca.length - cb.length;
}
