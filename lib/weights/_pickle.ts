/**
 * A restricted pickle virtual machine: the opcodes `torch.save` emits for a
 * state_dict (protocols 2-4), and no code execution. Every global the pickle
 * names goes through `hooks.findGlobal`, which decides what it means or
 * refuses it; there is no import and no fallback.
 *
 * Values: `null`, booleans, numbers (bigint when a long overflows a safe
 * integer), strings, `Uint8Array` for bytes, arrays for lists and tuples,
 * `Map` for dicts, and whatever the hooks return.
 *
 * @module
 */

/** A global the hooks allow: REDUCE calls `call` with the argument tuple. */
export interface PickleCallable {
  readonly global: string;
  call(args: unknown[]): unknown;
}

/** How the caller gives meaning to globals and persistent ids. */
export interface UnpickleHooks {
  /** Resolve `module.name`, or throw to refuse it. */
  findGlobal(module: string, name: string): unknown;
  /** Resolve a persistent id (BINPERSID), or throw. */
  persistentLoad(pid: unknown): unknown;
}

/** Raised for malformed or unsupported pickles. */
export class PickleError extends Error {
  override name = "PickleError";
}

/**
 * How many MARKs may be open at once. `torch.save` nests a handful; a pickle
 * that opens thousands is hostile or broken.
 */
export const MAX_MARK_DEPTH = 1000;

/**
 * A short text for a value the pickle built, for error messages: bounded in
 * depth and length, so a deeply nested or self-containing value (which
 * `String()` or `JSON.stringify` would recurse into) cannot overflow the stack.
 */
export function describeValue(v: unknown, depth = 3): string {
  if (typeof v === "string") {
    return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  }
  if (v === null || typeof v !== "object") return String(v);
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (depth === 0) return "...";
  if (Array.isArray(v)) {
    const shown = v.slice(0, 5).map((x) => describeValue(x, depth - 1));
    if (v.length > 5) shown.push("...");
    return `[${shown.join(", ")}]`;
  }
  if (v instanceof Map) return `dict(${v.size})`;
  return "object";
}

/** Runs the pickle in `bytes` and returns the value it builds. */
export function unpickle(bytes: Uint8Array, hooks: UnpickleHooks): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder("utf-8", { fatal: true });
  const latin1 = new TextDecoder("latin1");
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;

  const need = (n: number, op: number) => {
    if (pos + n > bytes.length) {
      throw new PickleError(
        `pickle ends inside opcode 0x${
          op.toString(16)
        } at byte ${pos} (truncated data)`,
      );
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0 || marks.at(-1) === stack.length) {
      throw new PickleError(`pickle pops an empty stack at byte ${pos}`);
    }
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) {
      throw new PickleError(`pickle reads an empty stack at byte ${pos}`);
    }
    return stack[stack.length - 1];
  };
  const pushMark = () => {
    if (marks.length >= MAX_MARK_DEPTH) {
      throw new PickleError(
        `pickle opens more than ${MAX_MARK_DEPTH} MARKs at byte ${pos} (nested too deeply)`,
      );
    }
    marks.push(stack.length);
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) {
      throw new PickleError(`pickle has no MARK to pop at byte ${pos}`);
    }
    return stack.splice(m);
  };
  const line = (op: number): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) need(bytes.length + 1, op);
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const str = (n: number, op: number): string => {
    need(n, op);
    const s = text.decode(bytes.subarray(pos, pos + n));
    pos += n;
    return s;
  };
  const raw = (n: number, op: number): Uint8Array => {
    need(n, op);
    const b = bytes.slice(pos, pos + n);
    pos += n;
    return b;
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) {
      throw new PickleError(
        `pickle sets items on a non-dict at byte ${pos}`,
      );
    }
    if (items.length % 2) {
      throw new PickleError(`pickle has an odd SETITEMS list at byte ${pos}`);
    }
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
  };
  const append = (list: unknown, items: unknown[]) => {
    if (!Array.isArray(list) || Object.isFrozen(list)) {
      throw new PickleError(`pickle appends to a non-list at byte ${pos}`);
    }
    // One push per item: spreading a long APPENDS into push() would pass
    // every item as an argument and overflow the stack.
    for (const item of items) list.push(item);
  };
  const getMemo = (key: number) => {
    if (!memo.has(key)) {
      throw new PickleError(`pickle reads unset memo slot ${key}`);
    }
    return memo.get(key);
  };
  const tuple = (items: unknown[]) => Object.freeze(items);
  const global = (module: string, name: string) => {
    stack.push(hooks.findGlobal(module, name));
  };

  while (true) {
    need(1, 0);
    const op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        need(1, op);
        if (bytes[pos] > 5) {
          throw new PickleError(
            `pickle protocol ${bytes[pos]} is not supported`,
          );
        }
        pos += 1;
        break;
      case 0x95: // FRAME: framing is only a hint for buffered readers
        need(8, op);
        pos += 8;
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) {
          throw new PickleError(
            `pickle stops with ${stack.length} values on the stack`,
          );
        }
        return stack[0];
      case 0x28: // MARK
        pushMark();
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        need(1, op);
        stack.push(bytes[pos++]);
        break;
      case 0x4d: // BININT2
        need(2, op);
        stack.push(view.getUint16(pos, true));
        pos += 2;
        break;
      case 0x4a: // BININT
        need(4, op);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x8a: { // LONG1
        need(1, op);
        const n = bytes[pos++];
        need(n, op);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]);
        if (n > 0 && bytes[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        pos += n;
        const safe = v >= BigInt(Number.MIN_SAFE_INTEGER) &&
          v <= BigInt(Number.MAX_SAFE_INTEGER);
        stack.push(safe ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8, op);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: { // BINUNICODE
        need(4, op);
        const n = view.getUint32(pos, true);
        pos += 4;
        stack.push(str(n, op));
        break;
      }
      case 0x8c: { // SHORT_BINUNICODE
        need(1, op);
        const n = bytes[pos++];
        stack.push(str(n, op));
        break;
      }
      case 0x8d: { // BINUNICODE8
        need(8, op);
        const n = Number(view.getBigUint64(pos, true));
        pos += 8;
        stack.push(str(n, op));
        break;
      }
      case 0x54: { // BINSTRING (Python 2 str)
        need(4, op);
        const n = view.getInt32(pos, true);
        pos += 4;
        need(n, op);
        stack.push(latin1.decode(bytes.subarray(pos, pos + n)));
        pos += n;
        break;
      }
      case 0x55: { // SHORT_BINSTRING
        need(1, op);
        const n = bytes[pos++];
        need(n, op);
        stack.push(latin1.decode(bytes.subarray(pos, pos + n)));
        pos += n;
        break;
      }
      case 0x42: { // BINBYTES
        need(4, op);
        const n = view.getUint32(pos, true);
        pos += 4;
        stack.push(raw(n, op));
        break;
      }
      case 0x43: { // SHORT_BINBYTES
        need(1, op);
        const n = bytes[pos++];
        stack.push(raw(n, op));
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push(tuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(tuple([pop(), b, c]));
        break;
      }
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: { // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: { // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        need(1, op);
        memo.set(bytes[pos++], top());
        break;
      case 0x72: // LONG_BINPUT
        need(4, op);
        memo.set(view.getUint32(pos, true), top());
        pos += 4;
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        need(1, op);
        stack.push(getMemo(bytes[pos++]));
        break;
      case 0x6a: // LONG_BINGET
        need(4, op);
        stack.push(getMemo(view.getUint32(pos, true)));
        pos += 4;
        break;
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line(op);
        global(module, line(op));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          throw new PickleError(`pickle STACK_GLOBAL needs two strings`);
        }
        global(module, name);
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        if (!Array.isArray(args)) {
          throw new PickleError(`pickle REDUCE needs an argument tuple`);
        }
        if (!isCallable(fn)) {
          throw new PickleError(
            `pickle calls something that is not an allowed callable at byte ${pos}`,
          );
        }
        stack.push(fn.call([...args]));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        // An OrderedDict's state is its `_metadata` attribute (module
        // versions), which a state_dict reader does not need.
        if (!(obj instanceof Map)) {
          throw new PickleError(
            `pickle BUILD on an unsupported object at byte ${pos}`,
          );
        }
        void state;
        break;
      }
      case 0x51: // BINPERSID
        stack.push(hooks.persistentLoad(pop()));
        break;
      default:
        throw new PickleError(
          `pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${
            pos - 1
          } is not supported`,
        );
    }
  }
}

function isCallable(v: unknown): v is PickleCallable {
  return typeof v === "object" && v !== null &&
    typeof (v as PickleCallable).call === "function" &&
    typeof (v as PickleCallable).global === "string";
}
