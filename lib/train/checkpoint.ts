/**
 * Checkpoints of a run: `<tag>.safetensors` (trainable parameters, Adam
 * moments and any other tensors of the training state) and `<tag>.json` (the
 * rest of the state, and the safetensors file's SHA-256), with tag `best` or
 * `last`.
 *
 * A save writes both files to temporary names, flushes them, then renames the
 * safetensors file and the JSON file, in that order. A save that fails before
 * the renames (a full disk, a bad value in the state) leaves the previous
 * checkpoint as it was; a crash between the two renames leaves a JSON file
 * that names the digest of another safetensors file, which
 * {@linkcode loadCheckpoint} detects and reports.
 *
 * Tensors are stored under `param.<name>` for parameters and
 * `state.<path>` for tensors found inside `optimizer`, `rngState` and
 * `metrics` (`path` joins object keys with dots), where the JSON holds
 * `{"$tensor": "state.<path>"}` in their place.
 *
 * @module
 */
import { join } from "node:path";
import { sha256File } from "../io/digest.ts";
import type { HostTensor } from "../weights/host_tensor.ts";
import { sizeOf } from "../weights/host_tensor.ts";
import {
  readSafetensors,
  writeSafetensors,
  type WriteSafetensorsOptions,
} from "../weights/safetensors.ts";
import { removeQuietly, siblingTempPath, writeTemp } from "../io/atomic.ts";

/** The `format` of checkpoint JSON files. */
export const CHECKPOINT_FORMAT = "cufit-ts-checkpoint/1";

/** Which checkpoint: the best epoch so far, or the latest. */
export type CheckpointTag = "best" | "last";
const TAGS: readonly CheckpointTag[] = ["best", "last"];

/**
 * A value that can be stored: JSON values, plus {@linkcode HostTensor}s,
 * `Map`s with string keys, numeric typed arrays and non-finite numbers,
 * anywhere inside.
 */
export type StateValue =
  | null
  | boolean
  | number
  | string
  | HostTensor
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint32Array
  | Uint8Array
  | StateValue[]
  | Map<string, StateValue>
  | { [key: string]: StateValue | undefined };

/** The training state saved in a checkpoint. */
export interface CheckpointState {
  /** Trainable parameters by name (e.g. `reins.scale`, `linear.weight`). */
  params: Map<string, HostTensor>;
  /** Optimizer state(s): step counts, hyper-parameters, Adam moments as HostTensors. */
  optimizer: StateValue;
  /** Epochs completed (0-based index of the epoch just finished). */
  epoch: number;
  /** Generator state(s), to continue shuffling/augmentation where they were. */
  rngState: StateValue;
  /** Metrics at this epoch (e.g. the {@linkcode EpochMetrics} record). */
  metrics: StateValue;
}

/** A checkpoint read back. */
export interface LoadedCheckpoint extends CheckpointState {
  /** When it was saved (ISO time). */
  savedAt: string;
  /** SHA-256 of its safetensors file. */
  sha256: string;
}

/** Options of {@linkcode saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /**
   * The safetensors writer (replaceable to use another writer, or to make a
   * write fail in tests).
   * @default writeSafetensors from lib/weights/safetensors.ts
   */
  writeSafetensors?: (
    path: string,
    tensors: Map<string, HostTensor>,
    options: WriteSafetensorsOptions,
  ) => Promise<void>;
  /**
   * Save time to record.
   * @default new Date()
   */
  now?: Date;
}

function checkTag(tag: string): asserts tag is CheckpointTag {
  if (!(TAGS as readonly string[]).includes(tag)) {
    throw new TypeError(
      `Checkpoint tag must be one of ${
        TAGS.map((t) => `"${t}"`).join(", ")
      }, got ${JSON.stringify(tag)}`,
    );
  }
}

const TYPED = {
  Float32Array,
  Float64Array,
  Int32Array,
  Uint32Array,
  Uint8Array,
} as const;
type TypedName = keyof typeof TYPED;

const HOST_DATA: Record<string, new (n: number) => ArrayBufferView> = {
  F32: Float32Array,
  I64: BigInt64Array,
  I32: Int32Array,
  U8: Uint8Array,
};

function isHostTensor(v: object): v is HostTensor {
  return "dtype" in v && "shape" in v && "data" in v &&
    ArrayBuffer.isView((v as HostTensor).data);
}

function checkHostTensor(t: HostTensor, where: string): void {
  const Ctor = HOST_DATA[t.dtype];
  if (!Ctor || !(t.data instanceof Ctor)) {
    throw new TypeError(
      `Cannot save ${where}: dtype ${
        JSON.stringify(t.dtype)
      } with ${t.data?.constructor?.name} data, expected F32/Float32Array, I64/BigInt64Array, I32/Int32Array or U8/Uint8Array`,
    );
  }
  if (
    !Array.isArray(t.shape) ||
    !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
    sizeOf(t.shape) !== t.data.length
  ) {
    throw new RangeError(
      `Cannot save ${where}: ${t.data.length} values do not fill shape ${
        JSON.stringify(t.shape)
      }`,
    );
  }
}

const RESERVED = ["$tensor", "$map", "$typed", "$float"];

/** Replaces tensors (into `tensors`) and non-JSON values by tagged objects. */
function encode(
  value: unknown,
  path: string,
  tensors: Map<string, HostTensor>,
): unknown {
  const where = `checkpoint value "${path}"`;
  if (
    value === null || typeof value === "boolean" || typeof value === "string"
  ) {
    return value;
  }
  if (typeof value === "number") {
    return Number.isFinite(value) ? value : { $float: String(value) };
  }
  if (typeof value !== "object") {
    throw new TypeError(
      `Cannot save ${where}: a ${typeof value} is not storable (use a HostTensor of dtype I64 for 64-bit integers)`,
    );
  }
  if (isHostTensor(value)) {
    checkHostTensor(value, where);
    const name = `state.${path}`;
    if (tensors.has(name)) {
      throw new Error(
        `Cannot save ${where}: another tensor is already stored as "${name}" (keys with dots collide)`,
      );
    }
    tensors.set(name, value);
    return { $tensor: name };
  }
  if (ArrayBuffer.isView(value)) {
    const typed = value.constructor.name;
    if (!(typed in TYPED)) {
      throw new TypeError(
        `Cannot save ${where}: ${typed} is not storable, expected one of ${
          Object.keys(TYPED).join(", ")
        } or a HostTensor`,
      );
    }
    return { $typed: typed, data: Array.from(value as Float64Array) };
  }
  const at = (k: string) => (path === "" ? k : `${path}.${k}`);
  if (Array.isArray(value)) {
    return value.map((v, i) =>
      v === undefined ? null : encode(v, at(String(i)), tensors)
    );
  }
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) {
      if (typeof k !== "string") {
        throw new TypeError(
          `Cannot save ${where}: a Map key is ${typeof k}, expected a string`,
        );
      }
      out[k] = encode(v, at(k), tensors);
    }
    return { $map: out };
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(
      `Cannot save ${where}: a ${value.constructor?.name} is not storable, expected plain objects, arrays, Maps and HostTensors`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (RESERVED.includes(k)) {
      throw new TypeError(
        `Cannot save ${where}: key "${k}" is reserved by the checkpoint format`,
      );
    }
    if (v !== undefined) out[k] = encode(v, at(k), tensors);
  }
  return out;
}

/** Inverse of {@linkcode encode}. */
function decode(
  value: unknown,
  tensors: Map<string, HostTensor>,
  file: string,
): StateValue {
  if (value === null || typeof value !== "object") return value as StateValue;
  if (Array.isArray(value)) return value.map((v) => decode(v, tensors, file));
  const obj = value as Record<string, unknown>;
  if (typeof obj.$tensor === "string") {
    const t = tensors.get(obj.$tensor);
    if (!t) {
      throw new Error(
        `Checkpoint "${file}" refers to tensor "${obj.$tensor}", which its safetensors file lacks`,
      );
    }
    return t;
  }
  if (typeof obj.$float === "string") return Number(obj.$float);
  if (typeof obj.$typed === "string" && obj.$typed in TYPED) {
    return TYPED[obj.$typed as TypedName].from(obj.data as number[]);
  }
  if (obj.$map !== undefined) {
    const m = new Map<string, StateValue>();
    for (const [k, v] of Object.entries(obj.$map as Record<string, unknown>)) {
      m.set(k, decode(v, tensors, file));
    }
    return m;
  }
  const out: Record<string, StateValue> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = decode(v, tensors, file);
  return out;
}

/** The two files of a checkpoint. */
export function checkpointPaths(
  dir: string,
  tag: CheckpointTag,
): { safetensors: string; json: string } {
  return {
    safetensors: join(dir, `${tag}.safetensors`),
    json: join(dir, `${tag}.json`),
  };
}

/**
 * Saves the training state as checkpoint `tag` in the run folder `dir`,
 * replacing the previous one only once both new files are fully written.
 */
export async function saveCheckpoint(
  dir: string,
  tag: CheckpointTag,
  state: CheckpointState,
  options: SaveCheckpointOptions = {},
): Promise<void> {
  checkTag(tag);
  if (!Number.isSafeInteger(state.epoch) || state.epoch < 0) {
    throw new TypeError(
      `Cannot save checkpoint "${tag}": epoch must be a non-negative integer, got ${state.epoch}`,
    );
  }
  if (!(state.params instanceof Map)) {
    throw new TypeError(
      `Cannot save checkpoint "${tag}": params must be a Map of HostTensors`,
    );
  }
  // 1. Collect every tensor and the JSON remainder; bad values fail here,
  //    before anything is written.
  const tensors = new Map<string, HostTensor>();
  for (const [name, t] of state.params) {
    checkHostTensor(t, `parameter "${name}"`);
    tensors.set(`param.${name}`, t);
  }
  const optimizer = encode(state.optimizer, "optimizer", tensors);
  const rngState = encode(state.rngState, "rngState", tensors);
  const metrics = encode(state.metrics, "metrics", tensors);

  const paths = checkpointPaths(dir, tag);
  const write = options.writeSafetensors ?? writeSafetensors;
  const stTemp = siblingTempPath(paths.safetensors);
  let jsonTemp: string | null = null;
  try {
    // 2. The tensors, flushed, then hashed as they lie on disk.
    await write(stTemp, tensors, {
      metadata: { format: CHECKPOINT_FORMAT, tag, epoch: String(state.epoch) },
    });
    {
      using f = await Deno.open(stTemp, { read: true, write: true });
      await f.syncData();
    }
    const sha256 = await sha256File(stTemp);
    const bytes = (await Deno.stat(stTemp)).size;
    // 3. The JSON naming that digest, flushed.
    const record = {
      format: CHECKPOINT_FORMAT,
      tag,
      epoch: state.epoch,
      savedAt: (options.now ?? new Date()).toISOString(),
      safetensors: { file: `${tag}.safetensors`, sha256, bytes },
      params: [...state.params.keys()],
      optimizer,
      rngState,
      metrics,
    };
    jsonTemp = await writeTemp(
      paths.json,
      JSON.stringify(record, null, 2) + "\n",
    );
    // 4. Tensors first, JSON last: a crash in between leaves a JSON whose
    //    digest does not match, which loadCheckpoint() reports.
    await Deno.rename(stTemp, paths.safetensors);
    await Deno.rename(jsonTemp, paths.json);
  } catch (e) {
    await removeQuietly(stTemp);
    if (jsonTemp !== null) await removeQuietly(jsonTemp);
    throw e;
  }
}

/** Whether checkpoint `tag` exists (its JSON file does) in `dir`. */
export async function hasCheckpoint(
  dir: string,
  tag: CheckpointTag,
): Promise<boolean> {
  try {
    return (await Deno.stat(checkpointPaths(dir, tag).json)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Reads checkpoint `tag` from `dir`, after checking that its safetensors file
 * is the one its JSON names (same SHA-256). A missing checkpoint throws
 * `Deno.errors.NotFound`.
 */
export async function loadCheckpoint(
  dir: string,
  tag: CheckpointTag,
): Promise<LoadedCheckpoint> {
  checkTag(tag);
  const paths = checkpointPaths(dir, tag);
  let text: string;
  try {
    text = await Deno.readTextFile(paths.json);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      // Still a NotFound, so callers can tell "no checkpoint yet" apart.
      throw new Deno.errors.NotFound(
        `No "${tag}" checkpoint in "${dir}": "${paths.json}" not found`,
      );
    }
    throw e;
  }
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(
      `Cannot parse "${paths.json}": ${(e as Error).message}`,
    );
  }
  if (rec?.format !== CHECKPOINT_FORMAT) {
    throw new TypeError(
      `"${paths.json}" is not a checkpoint: expected "format": "${CHECKPOINT_FORMAT}", got ${
        JSON.stringify(rec?.format)
      }`,
    );
  }
  const st = rec.safetensors as { sha256?: unknown } | undefined;
  if (typeof st?.sha256 !== "string" || !Array.isArray(rec.params)) {
    throw new TypeError(
      `"${paths.json}" lacks "safetensors.sha256" or "params"`,
    );
  }
  let actual: string;
  try {
    actual = await sha256File(paths.safetensors);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Checkpoint "${paths.json}" has no tensor file: "${paths.safetensors}" not found`,
      );
    }
    throw e;
  }
  if (actual !== st.sha256) {
    throw new Error(
      `Checkpoint "${paths.safetensors}" does not match "${paths.json}": recorded sha256 ${st.sha256}, file has ${actual} (a save was interrupted between its two files)`,
    );
  }
  const { tensors } = await readSafetensors(paths.safetensors);
  const params = new Map<string, HostTensor>();
  for (const name of rec.params as string[]) {
    const t = tensors.get(`param.${name}`);
    if (!t) {
      throw new Error(
        `Checkpoint "${paths.safetensors}" lacks parameter "${name}" listed in "${paths.json}"`,
      );
    }
    params.set(name, t);
  }
  return {
    epoch: rec.epoch as number,
    savedAt: rec.savedAt as string,
    sha256: actual,
    params,
    optimizer: decode(rec.optimizer, tensors, paths.json),
    rngState: decode(rec.rngState, tensors, paths.json),
    metrics: decode(rec.metrics, tensors, paths.json),
  };
}
