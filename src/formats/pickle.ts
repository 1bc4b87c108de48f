// a safe pickle interpreter for the opcodes torch.save emits (protocol 2, plus the few
// protocol 4 ones that cost nothing). it never imports or calls anything itself: globals,
// calls and persistent ids all go through hooks, which decide what exists.
// value model: str -> string, int/float -> number, bool, None -> null, tuple -> frozen array,
// list -> array, dict -> Map. BUILD state is dropped (state dicts only carry _metadata there).
import { EagleError } from "../util/errors.ts";

export interface PickleHooks {
  global(module: string, name: string): unknown; // throws for anything not allowed
  call(callable: unknown, args: readonly unknown[]): unknown; // REDUCE and NEWOBJ
  persistentLoad(pid: unknown): unknown; // BINPERSID
}

const MAX_STACK = 1 << 20;
const MAX_MEMO = 1 << 20;
const MARK = Symbol("mark");

class Machine {
  stack: unknown[] = [];
  marks: number[] = [];
  memo = new Map<number, unknown>();
  pos = 0;
  constructor(readonly bytes: Uint8Array, readonly where: string, readonly hooks: PickleHooks) {}

  fail(what: string): never {
    throw new EagleError(`${this.where}: ${what} (pickle offset ${this.pos})`);
  }

  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.bytes.length) this.fail(`needs ${n} more bytes but the pickle ends`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  uint(n: number): number {
    const b = this.take(n);
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i];
    return v;
  }

  // signed little-endian two's complement of any width (LONG1/LONG4), kept only when exact
  long(n: number): number {
    if (n > 16) this.fail(`${n}-byte integer is too large`);
    const b = this.take(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`integer ${v} is too large`);
    return Number(v);
  }

  text(n: number): string {
    return Buffer.from(this.take(n)).toString("utf8");
  }

  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) this.fail("GLOBAL name has no newline");
    const s = this.text(end - this.pos);
    this.pos++;
    return s;
  }

  push(v: unknown): void {
    if (this.stack.length >= MAX_STACK) this.fail(`stack deeper than ${MAX_STACK}`);
    this.stack.push(v);
  }

  pop(): unknown {
    const floor = this.marks.length ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length <= floor) this.fail("pop from an empty stack");
    return this.stack.pop();
  }

  top(): unknown {
    const floor = this.marks.length ? this.marks[this.marks.length - 1] : 0;
    if (this.stack.length <= floor) this.fail("empty stack");
    return this.stack[this.stack.length - 1];
  }

  mark(): void {
    if (this.marks.length >= MAX_STACK) this.fail("too many marks");
    this.marks.push(this.stack.length);
  }

  popMark(): unknown[] {
    const at = this.marks.pop();
    if (at === undefined) this.fail("no MARK to pop to");
    return this.stack.splice(at);
  }

  put(index: number): void {
    if (this.memo.size >= MAX_MEMO && !this.memo.has(index)) this.fail(`more than ${MAX_MEMO} memo entries`);
    this.memo.set(index, this.top());
  }

  get(index: number): void {
    if (!this.memo.has(index)) this.fail(`memo entry ${index} was never stored`);
    this.push(this.memo.get(index));
  }

  setItems(dict: unknown, items: unknown[]): void {
    if (!(dict instanceof Map)) this.fail("SETITEM(S) on something that is not a dict");
    if (items.length % 2) this.fail("SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
  }

  append(list: unknown, items: unknown[]): void {
    if (!Array.isArray(list) || Object.isFrozen(list)) this.fail("APPEND(S) on something that is not a list");
    for (const x of items) {
      if (list.length >= MAX_STACK) this.fail(`list longer than ${MAX_STACK}`);
      list.push(x);
    }
  }

  tuple(items: unknown[]): void {
    this.push(Object.freeze(items));
  }

  call(args: unknown): void {
    const callable = this.pop();
    if (!Array.isArray(args) || !Object.isFrozen(args)) this.fail("call arguments are not a tuple");
    this.push(this.hooks.call(callable, args));
  }
}

// one opcode; returns false at STOP
function step(m: Machine): boolean {
  const at = m.pos;
  const op = m.take(1)[0];
  switch (op) {
    case 0x80: m.take(1); break; // PROTO (any version: we only know the opcodes anyway)
    case 0x95: m.take(8); break; // FRAME: framing is only a hint for buffered readers
    case 0x2e: return false; // STOP
    case 0x28: m.mark(); break; // MARK
    case 0x7d: m.push(new Map()); break; // EMPTY_DICT
    case 0x5d: m.push([]); break; // EMPTY_LIST
    case 0x29: m.tuple([]); break; // EMPTY_TUPLE
    case 0x58: m.push(m.text(m.uint(4))); break; // BINUNICODE
    case 0x8c: m.push(m.text(m.uint(1))); break; // SHORT_BINUNICODE
    case 0x8d: m.push(m.text(m.uint(8))); break; // BINUNICODE8
    case 0x4a: m.push(m.long(4)); break; // BININT
    case 0x4b: m.push(m.uint(1)); break; // BININT1
    case 0x4d: m.push(m.uint(2)); break; // BININT2
    case 0x8a: m.push(m.long(m.uint(1))); break; // LONG1
    case 0x8b: m.push(m.long(m.uint(4))); break; // LONG4
    case 0x47: m.push(Buffer.from(m.take(8)).readDoubleBE(0)); break; // BINFLOAT
    case 0x88: m.push(true); break; // NEWTRUE
    case 0x89: m.push(false); break; // NEWFALSE
    case 0x4e: m.push(null); break; // NONE
    case 0x74: m.tuple(m.popMark()); break; // TUPLE
    case 0x85: m.tuple([m.pop()]); break; // TUPLE1
    case 0x86: { const b = m.pop(); m.tuple([m.pop(), b]); break; } // TUPLE2
    case 0x87: { const c = m.pop(); const b = m.pop(); m.tuple([m.pop(), b, c]); break; } // TUPLE3
    case 0x63: { const mod = m.line(); m.push(m.hooks.global(mod, m.line())); break; } // GLOBAL
    case 0x93: { const name = m.pop(); const mod = m.pop(); stackGlobal(m, mod, name); break; } // STACK_GLOBAL
    case 0x71: m.put(m.uint(1)); break; // BINPUT
    case 0x72: m.put(m.uint(4)); break; // LONG_BINPUT
    case 0x94: m.put(m.memo.size); break; // MEMOIZE
    case 0x68: m.get(m.uint(1)); break; // BINGET
    case 0x6a: m.get(m.uint(4)); break; // LONG_BINGET
    case 0x52: m.call(m.pop()); break; // REDUCE
    case 0x81: m.call(m.pop()); break; // NEWOBJ: cls.__new__(cls, *args), same hook
    case 0x62: m.pop(); m.top(); break; // BUILD: drop the state, keep the object
    case 0x73: { const v = m.pop(); const k = m.pop(); m.setItems(m.top(), [k, v]); break; } // SETITEM
    case 0x75: { const items = m.popMark(); m.setItems(m.top(), items); break; } // SETITEMS
    case 0x61: { const v = m.pop(); m.append(m.top(), [v]); break; } // APPEND
    case 0x65: { const items = m.popMark(); m.append(m.top(), items); break; } // APPENDS
    case 0x51: m.push(m.hooks.persistentLoad(m.pop())); break; // BINPERSID
    case 0x30: m.pop(); break; // POP
    case 0x31: m.popMark(); break; // POP_MARK
    case 0x32: m.push(m.top()); break; // DUP
    default:
      m.pos = at;
      m.fail(`unknown or unsupported opcode 0x${op.toString(16).padStart(2, "0")}`);
  }
  return true;
}

function stackGlobal(m: Machine, mod: unknown, name: unknown): void {
  if (typeof mod !== "string" || typeof name !== "string") m.fail("STACK_GLOBAL needs two strings");
  m.push(m.hooks.global(mod, name));
}

// `where` prefixes every error, e.g. "model.bin: archive/data.pkl"
export function unpickle(bytes: Uint8Array, hooks: PickleHooks, where: string): unknown {
  const m = new Machine(bytes, where, hooks);
  while (step(m)) {
    if (m.pos >= bytes.length) m.fail("pickle ends without STOP");
  }
  if (m.stack.length !== 1 || m.marks.length) m.fail(`STOP with ${m.stack.length} values on the stack`);
  return m.stack[0];
}
