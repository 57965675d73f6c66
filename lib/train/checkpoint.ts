/**
 * Checkpoints of a run: `<tag>.safetensors` and `<tag>.json`, with tag `best`
 * or `last`.
 *
 * One file is one checkpoint: `<tag>.safetensors` holds the tensors
 * (trainable parameters, Adam moments, any other tensor of the state) and,
 * in its header's `__metadata__` under `checkpoint`, the rest of the state as
 * JSON. A save writes that file under a temporary name, flushes it, and
 * renames it into place: that single rename is the commit, so a kill at any
 * moment leaves the previous checkpoint or the new one, never a mix, and
 * whatever else the state holds (typed arrays, per-epoch records) moves with
 * it. `<tag>.json` is a readable copy of the same state plus the tensor
 * file's SHA-256, renamed in after the commit; {@linkcode loadCheckpoint}
 * reads the tensor file's own copy, so a stale `<tag>.json` left by a kill
 * between the two renames is harmless. (Checkpoints written before the state
 * moved into the header are still read from `<tag>.json`, after checking its
 * digest.)
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
import {
  removeQuietly,
  siblingTempPath,
  withPath,
  writeTemp,
} from "../io/atomic.ts";

/** The `format` of checkpoint JSON files. */
export const CHECKPOINT_FORMAT = "cufit-ts-checkpoint/1";

// The `__metadata__` key of the tensor file that holds the state's JSON.
const STATE_KEY = "checkpoint";

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
  const state_ = {
    format: CHECKPOINT_FORMAT,
    tag,
    epoch: state.epoch,
    savedAt: (options.now ?? new Date()).toISOString(),
    params: [...state.params.keys()],
    optimizer,
    rngState,
    metrics,
  };
  const stTemp = siblingTempPath(paths.safetensors);
  let jsonTemp: string | null = null;
  try {
    // 2. The tensors and the whole state in one file, flushed, then hashed
    //    as it lies on disk.
    try {
      await write(stTemp, tensors, {
        metadata: {
          format: CHECKPOINT_FORMAT,
          tag,
          epoch: String(state.epoch),
          [STATE_KEY]: JSON.stringify(state_),
        },
      });
      using f = await Deno.open(stTemp, { read: true, write: true });
      await f.syncData();
    } catch (e) {
      throw withPath(e, paths.safetensors);
    }
    const sha256 = await sha256File(stTemp);
    const bytes = (await Deno.stat(stTemp)).size;
    // 3. The readable copy naming that digest, flushed.
    const { params, ...rest } = state_;
    const record = {
      ...rest,
      safetensors: { file: `${tag}.safetensors`, sha256, bytes },
      params,
    };
    jsonTemp = await writeTemp(
      paths.json,
      JSON.stringify(record, null, 2) + "\n",
    );
    // 4. The commit: the tensor file (with its state) replaces the old one
    //    in one rename. The copy follows; a kill in between leaves a stale
    //    copy, which loadCheckpoint() does not read.
    try {
      await Deno.rename(stTemp, paths.safetensors);
    } catch (e) {
      throw withPath(e, paths.safetensors);
    }
    try {
      await Deno.rename(jsonTemp, paths.json);
    } catch (e) {
      throw withPath(e, paths.json);
    }
  } catch (e) {
    await removeQuietly(stTemp);
    if (jsonTemp !== null) await removeQuietly(jsonTemp);
    throw e;
  }
}

/** Whether checkpoint `tag` exists (its tensor file does) in `dir`. */
export async function hasCheckpoint(
  dir: string,
  tag: CheckpointTag,
): Promise<boolean> {
  try {
    return (await Deno.stat(checkpointPaths(dir, tag).safetensors)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Reads checkpoint `tag` from `dir`: the state stored in its tensor file
 * (see the module doc), or, for a checkpoint written before the state moved
 * there, `<tag>.json` after checking that it names the tensor file's
 * SHA-256. A missing checkpoint throws `Deno.errors.NotFound`.
 */
export async function loadCheckpoint(
  dir: string,
  tag: CheckpointTag,
): Promise<LoadedCheckpoint> {
  checkTag(tag);
  const paths = checkpointPaths(dir, tag);
  let file: Awaited<ReturnType<typeof readSafetensors>>;
  try {
    file = await readSafetensors(paths.safetensors);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    if (await exists(paths.json)) {
      throw new Error(
        `Checkpoint "${paths.json}" has no tensor file: "${paths.safetensors}" not found`,
      );
    }
    // Still a NotFound, so callers can tell "no checkpoint yet" apart.
    throw new Deno.errors.NotFound(
      `No "${tag}" checkpoint in "${dir}": "${paths.safetensors}" not found`,
    );
  }
  const embedded = file.metadata[STATE_KEY];
  const sha256 = await sha256File(paths.safetensors);
  const rec = embedded === undefined
    ? await legacyRecord(paths, sha256)
    : parseRecord(embedded, `"${paths.safetensors}" header`);
  const { tensors } = file;
  const params = new Map<string, HostTensor>();
  for (const name of rec.params as string[]) {
    const t = tensors.get(`param.${name}`);
    if (!t) {
      throw new Error(
        `Checkpoint "${paths.safetensors}" lacks parameter "${name}" listed in its state`,
      );
    }
    params.set(name, t);
  }
  const where = paths.safetensors;
  return {
    epoch: rec.epoch as number,
    savedAt: rec.savedAt as string,
    sha256,
    params,
    optimizer: decode(rec.optimizer, tensors, where),
    rngState: decode(rec.rngState, tensors, where),
    metrics: decode(rec.metrics, tensors, where),
  };
}

/** Parses and checks a checkpoint state record (`what` names where it is). */
function parseRecord(text: string, what: string): Record<string, unknown> {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(text);
  } catch (e) {
    throw new SyntaxError(`Cannot parse ${what}: ${(e as Error).message}`);
  }
  if (rec === null || typeof rec !== "object" || Array.isArray(rec)) {
    throw new TypeError(`${what} is not a checkpoint: expected an object`);
  }
  if (rec.format !== CHECKPOINT_FORMAT) {
    throw new TypeError(
      `${what} is not a checkpoint: expected "format": "${CHECKPOINT_FORMAT}", got ${
        JSON.stringify(rec.format)
      }`,
    );
  }
  if (!Number.isSafeInteger(rec.epoch) || (rec.epoch as number) < 0) {
    throw new TypeError(
      `${what} key "epoch" must be a non-negative integer, got ${
        JSON.stringify(rec.epoch)
      }`,
    );
  }
  if (
    !Array.isArray(rec.params) ||
    !rec.params.every((p) => typeof p === "string")
  ) {
    throw new TypeError(`${what} key "params" must be a list of names`);
  }
  return rec;
}

/** The state of a checkpoint written before it moved into the tensor file. */
async function legacyRecord(
  paths: { safetensors: string; json: string },
  sha256: string,
): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(paths.json);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Checkpoint "${paths.safetensors}" holds no state and "${paths.json}" is missing`,
      );
    }
    throw e;
  }
  const rec = parseRecord(text, `"${paths.json}"`);
  const st = rec.safetensors as { sha256?: unknown } | undefined;
  if (typeof st?.sha256 !== "string") {
    throw new TypeError(`"${paths.json}" lacks "safetensors.sha256"`);
  }
  if (sha256 !== st.sha256) {
    throw new Error(
      `Checkpoint "${paths.safetensors}" does not match "${paths.json}": recorded sha256 ${st.sha256}, file has ${sha256} (a save was interrupted between its two files)`,
    );
  }
  return rec;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
