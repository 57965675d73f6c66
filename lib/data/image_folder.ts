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
  const top = await listDir(root, `Image folder "${root}"`);
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
    await walk(classDir, walked);
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
      return decodeImage(files[i]);
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

/** Sub-folders (symlinks to folders included) and other entries of a folder. */
async function listDir(
  path: string,
  what: string,
): Promise<{ dirs: string[]; files: string[] }> {
  const dirs: string[] = [];
  const files: string[] = [];
  try {
    for await (const e of Deno.readDir(path)) {
      let isDir = e.isDirectory;
      if (e.isSymlink) {
        try {
          isDir = (await Deno.stat(join(path, e.name))).isDirectory;
        } catch {
          isDir = false; // a dangling link is a file to os.walk
        }
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
  seen = new Set<string>(),
): Promise<void> {
  // followlinks=True can loop; Python would recurse until it fails, here a
  // folder already visited (by real path) is skipped.
  const real = await Deno.realPath(path);
  if (seen.has(real)) return;
  seen.add(real);
  const { dirs, files } = await listDir(path, `Folder "${path}"`);
  out.push({ path, files });
  for (const d of dirs) await walk(join(path, d), out, seen);
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
