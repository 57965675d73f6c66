/**
 * Reading PyTorch `torch.save` files (the zip format, PyTorch >= 1.6) that
 * hold a state_dict, such as Meta's `dinov2_vits14_pretrain.pth`.
 *
 * The zip holds `<dir>/data.pkl` (the pickled dict) and `<dir>/data/<key>`
 * (one raw little-endian storage per key). The pickle is run by a restricted
 * VM that knows only the globals listed in {@linkcode ALLOWED_GLOBALS}; any
 * other global is refused, so a malicious file cannot run code.
 *
 * @module
 */
import { openZip, type ZipArchive } from "../io/zip.ts";
import type { HostTensor } from "./host_tensor.ts";
import { sizeOf } from "./host_tensor.ts";
import { hostTensorFromBytes } from "./safetensors.ts";
import { describeValue, PickleError, unpickle } from "./_pickle.ts";

/** Storage classes, with the safetensors dtype and element width they hold. */
const STORAGES: Record<string, { dtype: string; width: number }> = {
  FloatStorage: { dtype: "F32", width: 4 },
  HalfStorage: { dtype: "F16", width: 2 },
  BFloat16Storage: { dtype: "BF16", width: 2 },
  LongStorage: { dtype: "I64", width: 8 },
  IntStorage: { dtype: "I32", width: 4 },
  ByteStorage: { dtype: "U8", width: 1 },
};

/** The only globals a `.pth` pickle may name. */
export const ALLOWED_GLOBALS: readonly string[] = [
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  ...Object.keys(STORAGES).map((s) => `torch.${s}`),
];

interface StorageRef {
  kind: "storage";
  key: string;
  dtype: string;
  width: number;
  numel: number;
}

interface TensorRef {
  kind: "tensor";
  storage: StorageRef;
  offset: number;
  size: number[];
  stride: number[];
}

function isTensorRef(v: unknown): v is TensorRef {
  return typeof v === "object" && v !== null &&
    (v as TensorRef).kind === "tensor";
}

function intList(v: unknown): v is number[] {
  return Array.isArray(v) &&
    v.every((x) => Number.isSafeInteger(x) && x >= 0);
}

/** The globals' meanings; `fail` builds errors that name the file. */
function makeHooks(fail: (msg: string) => Error) {
  const storageTypes = new Map<unknown, string>();
  const rebuildTensor = {
    global: "torch._utils._rebuild_tensor_v2",
    call(args: unknown[]): TensorRef {
      const [storage, offset, size, stride] = args;
      if (
        typeof storage !== "object" || storage === null ||
        (storage as StorageRef).kind !== "storage" ||
        !Number.isSafeInteger(offset) || !intList(size) || !intList(stride) ||
        size.length !== stride.length
      ) {
        throw fail("_rebuild_tensor_v2 got arguments it does not understand");
      }
      return {
        kind: "tensor",
        storage: storage as StorageRef,
        offset: offset as number,
        size,
        stride,
      };
    },
  };
  const rebuildParameter = {
    global: "torch._utils._rebuild_parameter",
    call: (args: unknown[]) => {
      if (!isTensorRef(args[0])) {
        throw fail("_rebuild_parameter got something other than a tensor");
      }
      return args[0];
    },
  };
  const orderedDict = {
    global: "collections.OrderedDict",
    call: (args: unknown[]) => {
      if (args.length !== 0) {
        throw fail("OrderedDict is only supported without arguments");
      }
      return new Map();
    },
  };
  return {
    findGlobal(module: string, name: string): unknown {
      const full = `${module}.${name}`;
      if (full === orderedDict.global) return orderedDict;
      if (full === rebuildTensor.global) return rebuildTensor;
      if (full === rebuildParameter.global) return rebuildParameter;
      if (module === "torch" && name in STORAGES) {
        const marker = { storageType: name };
        storageTypes.set(marker, name);
        return marker;
      }
      throw new Error(
        `the pickle names the global "${full}", which is not allowed`,
      );
    },
    persistentLoad(pid: unknown): StorageRef {
      if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length !== 5) {
        throw fail(
          `persistent id ${describeValue(pid)} is not a storage reference`,
        );
      }
      const [, type, key, , numel] = pid;
      const name = storageTypes.get(type);
      if (!name || typeof key !== "string" || !Number.isSafeInteger(numel)) {
        throw fail(
          `storage reference for key ${describeValue(key)} is malformed`,
        );
      }
      return { kind: "storage", key, numel, ...STORAGES[name] };
    },
  };
}

/** Picks the state_dict out of what the pickle built. */
function findStateDict(
  root: unknown,
  fail: (msg: string) => Error,
): Map<unknown, unknown> {
  if (!(root instanceof Map)) {
    throw fail("the pickle holds no dict of tensors");
  }
  const hasTensors = (m: Map<unknown, unknown>) =>
    [...m.values()].some(isTensorRef);
  if (hasTensors(root)) return root;
  // Training checkpoints nest the weights under one well-known key.
  for (const key of ["state_dict", "model"]) {
    const inner = root.get(key);
    if (inner instanceof Map && hasTensors(inner)) return inner;
  }
  const keys = [...root.keys()].slice(0, 10).map((k) => describeValue(k));
  throw fail(
    `the pickle holds a dict without tensors (keys ${
      keys.join(", ")
    }), expected a state_dict or one under "state_dict" or "model"`,
  );
}

/** Copies a strided view of `src` into a fresh row-major array. */
function gather<T extends HostTensor["data"]>(
  src: T,
  offset: number,
  size: number[],
  stride: number[],
): T {
  const n = sizeOf(size);
  const out = new (src.constructor as { new (n: number): T })(n);
  if (n === 0) return out;
  const rank = size.length;
  const index = new Array(rank).fill(0);
  let at = offset;
  for (let i = 0; i < n; i++) {
    out[i] = src[at];
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      at += stride[d];
      if (index[d] < size[d]) break;
      at -= stride[d] * size[d];
      index[d] = 0;
    }
  }
  return out;
}

function isContiguous(size: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = size.length - 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expected) return false;
    expected *= size[d];
  }
  return true;
}

/** Options of {@linkcode readPth}. */
export interface ReadPthOptions {
  /**
   * Largest uncompressed zip member (the pickle, one storage); see `openZip`.
   * @default 4 GiB, or `CUFIT_ZIP_MAX_MEMBER_BYTES`
   */
  maxMemberBytes?: number;
  /**
   * Largest total to inflate from the file; see `openZip`.
   * @default 8 GiB, or `CUFIT_ZIP_MAX_TOTAL_BYTES`
   */
  maxTotalBytes?: number;
}

/**
 * Reads the state_dict of a `torch.save` zip file into host tensors, in the
 * file's key order. Half and bfloat16 tensors become F32; views with an
 * offset or non-contiguous strides are copied out contiguous.
 */
export async function readPth(
  path: string,
  options: ReadPthOptions = {},
): Promise<{ tensors: Map<string, HostTensor> }> {
  const fail = (msg: string) => new Error(`Cannot read "${path}": ${msg}`);
  const head = new Uint8Array(4);
  {
    using f = await Deno.open(path, { read: true });
    await f.read(head);
  }
  if (head[0] !== 0x50 || head[1] !== 0x4b) {
    throw fail(
      head[0] === 0x80
        ? "it is a legacy (pre-1.6) torch.save file; re-save it with a newer PyTorch"
        : "it is not a torch.save zip file",
    );
  }
  const zip = await openZip(path, {
    maxMemberBytes: options.maxMemberBytes,
    maxTotalBytes: options.maxTotalBytes,
  });
  const pkl = zip.names().find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) {
    throw fail("the zip has no <dir>/data.pkl (not a torch.save file)");
  }
  const dir = pkl.slice(0, -"data.pkl".length);
  const order = zip.names().find((n) => n === `${dir}byteorder`);
  if (order) {
    const value = new TextDecoder().decode(await zip.read(order)).trim();
    if (value !== "little") {
      throw fail(`its byteorder is "${value}", only "little" is supported`);
    }
  }

  const pickle = await zip.read(pkl);
  let root: unknown;
  try {
    root = unpickle(pickle, makeHooks(fail));
  } catch (e) {
    const msg = (e as Error).message;
    if (msg.startsWith("the pickle names the global")) {
      throw new Error(`Refusing to load "${path}": ${msg}`);
    }
    if (e instanceof PickleError) throw fail(`${pkl}: ${msg}`);
    if (msg.startsWith(`Cannot read "${path}"`)) throw e;
    // Whatever else escapes (a RangeError) still names the file.
    throw fail(`${pkl}: ${msg}`);
  }
  const dict = findStateDict(root, fail);

  const refs = new Map<string, TensorRef>();
  const users = new Map<string, number>();
  for (const [key, value] of dict) {
    if (typeof key !== "string") {
      throw fail(
        `the state_dict has a non-string key ${describeValue(key)}`,
      );
    }
    if (!isTensorRef(value)) {
      throw fail(`state_dict entry "${key}" is not a tensor`);
    }
    refs.set(key, value);
    users.set(value.storage.key, (users.get(value.storage.key) ?? 0) + 1);
  }
  return { tensors: await materialize(zip, dir, refs, users, fail) };
}

async function materialize(
  zip: ZipArchive,
  dir: string,
  refs: Map<string, TensorRef>,
  users: Map<string, number>,
  fail: (msg: string) => Error,
): Promise<Map<string, HostTensor>> {
  const storages = new Map<string, HostTensor["data"]>();
  const out = new Map<string, HostTensor>();
  for (const [name, ref] of refs) {
    const s = ref.storage;
    let data = storages.get(s.key);
    if (!data) {
      const member = `${dir}data/${s.key}`;
      if (!zip.entry(member)) {
        throw fail(
          `tensor "${name}" needs storage "${member}", which is missing`,
        );
      }
      const bytes = await zip.read(member);
      if (bytes.length !== s.numel * s.width) {
        throw fail(
          `storage "${member}" has ${bytes.length} bytes, expected ${s.numel} x ${s.width} for tensor "${name}"`,
        );
      }
      data = hostTensorFromBytes(s.dtype, [s.numel], bytes).data;
      if ((users.get(s.key) ?? 0) > 1) storages.set(s.key, data);
    }
    const { offset, size, stride } = ref;
    const n = sizeOf(size);
    let last = offset;
    for (let d = 0; d < size.length; d++) {
      if (size[d] > 0) last += (size[d] - 1) * stride[d];
    }
    if (n > 0 && (offset < 0 || last >= s.numel)) {
      throw fail(
        `tensor "${name}" [${size}] at offset ${offset} with strides [${stride}] reaches past its storage of ${s.numel} elements`,
      );
    }
    // A view inside its storage can still repeat elements (a zero stride):
    // 6 stored values could expand to billions. Weights never need that, and
    // refusing it keeps memory bounded by the file's own size.
    if (n > s.numel) {
      throw fail(
        `tensor "${name}" [${size}] with strides [${stride}] has ${n} elements, more than the ${s.numel} of its storage (a view that repeats elements)`,
      );
    }
    const shared = (users.get(s.key) ?? 0) > 1;
    let values: HostTensor["data"];
    if (!isContiguous(size, stride)) {
      values = gather(data, offset, size, stride);
    } else if (offset === 0 && n === data.length && !shared) {
      values = data;
    } else {
      // Copy so tensors never alias each other's memory.
      values = data.slice(offset, offset + n);
    }
    const dtype = s.dtype === "F16" || s.dtype === "BF16" ? "F32" : s.dtype;
    out.set(name, {
      dtype: dtype as HostTensor["dtype"],
      shape: size,
      data: values,
    });
  }
  return out;
}
