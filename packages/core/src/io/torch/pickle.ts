/**
 * A restricted pickle reader, written by hand: a small stack machine over the opcodes of pickle
 * protocols 2–5 (torch.save writes protocol 2) that builds inert values (values.ts) and executes
 * nothing. GLOBAL / STACK_GLOBAL names are checked against the allowlist the moment they are read;
 * REDUCE / NEWOBJ only ever reach the allowlist's pure handlers or make records.
 *
 * Every read is bounds-checked against the input; string and bytes lengths are checked against the
 * bytes left before anything is allocated; the stack, the mark stack and the memo can only grow by
 * one entry per opcode, so they are bounded by the input length. Opcode reference: CPython's
 * Lib/pickletools.py and PEP 307 / 3154 / 574.
 */
import { AdapterFormatError } from '../../errors.js';
import { callGlobal, describe, isAllowedGlobal, seq } from './allowlist.js';
import { UnsafePickleError } from './errors.js';
import { PyDict, PyGlobal, PyObject, PySet, PyTuple, TorchTensor, type PyValue } from './values.js';

export interface UnpickleOptions {
  /** File name for error messages. */
  file?: string;
  /** Resolves BINPERSID ids (torch: storage references); without it a persistent id is an error. */
  persistentLoad?: (pid: PyValue) => PyValue;
}

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** Unpickle `bytes` (one pickle, up to STOP) into inert values. */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): PyValue {
  const file = opts.file;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();

  const fail = (msg: string, found?: unknown): AdapterFormatError =>
    new AdapterFormatError(`malformed pickle: ${msg}`, { file, field: `byte ${pos}`, ...(found !== undefined ? { found } : {}) });
  const need = (n: number): void => {
    if (n < 0 || pos + n > bytes.length) throw fail('truncated', `${bytes.length - pos} bytes left, ${n} needed`);
  };
  const u8 = (): number => {
    need(1);
    return bytes[pos++]!;
  };
  const u16 = (): number => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) throw fail('length larger than the file', v.toString());
    return Number(v);
  };
  const take = (n: number): Uint8Array => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const utf8 = (n: number): string => {
    const b = take(n);
    try {
      return textDecoder.decode(b);
    } catch {
      throw fail('invalid UTF-8 in a string');
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw fail('unterminated text line');
    const s = utf8(end - pos);
    pos = end + 1;
    return s;
  };
  const push = (v: PyValue): void => {
    stack.push(v);
  };
  const pop = (): PyValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) throw fail('stack underflow');
    const v = stack.pop()!;
    if (v === MARK) throw fail('unexpected MARK');
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw fail('stack underflow');
    return v;
  };
  const popMark = (): PyValue[] => {
    const at = marks.pop();
    if (at === undefined) throw fail('no MARK to pop to');
    const items = stack.splice(at) as PyValue[];
    return items;
  };
  const global = (module: string, name: string): PyGlobal => {
    if (!isAllowedGlobal(module, name)) {
      throw new UnsafePickleError('pickle names a global outside the allowlist (nothing was executed)', {
        file,
        field: `byte ${pos}`,
        expected: 'tensor rebuilders, storages, containers and the documented torch.nn / tltorch / TensLoRA classes',
        found: `${module}.${name}`,
      });
    }
    return new PyGlobal(module, name);
  };
  const memoPut = (i: number): void => {
    memo.set(i, top());
  };
  const memoGet = (i: number): void => {
    const v = memo.get(i);
    if (v === undefined) throw fail('memo key not found', i);
    push(v);
  };
  const setItems = (target: PyValue, items: PyValue[]): void => {
    if (items.length % 2 !== 0) throw fail('SETITEMS with an odd number of items');
    if (target instanceof PyDict) {
      for (let i = 0; i < items.length; i += 2) target.set(items[i]!, items[i + 1]!);
      return;
    }
    if (target instanceof PyObject) {
      // An allowlisted dict subclass (e.g. ParameterDict's items): keep them as the record's state.
      const d = target.state instanceof PyDict ? target.state : new PyDict();
      for (let i = 0; i < items.length; i += 2) d.set(items[i]!, items[i + 1]!);
      target.state = d;
      return;
    }
    throw fail('SETITEM on a value that is not a dict', describe(target));
  };
  const appendItems = (target: PyValue, items: PyValue[]): void => {
    if (Array.isArray(target)) {
      for (const v of items) target.push(v);
      return;
    }
    throw fail('APPEND on a value that is not a list', describe(target));
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: {
        // PROTO
        const v = u8();
        if (v > 5) throw fail('unsupported pickle protocol', v);
        break;
      }
      case 0x95: // FRAME: an 8-byte length; frames are a buffering hint, the opcodes simply follow.
        need(8);
        pos += 8;
        break;
      case 0x2e: {
        // STOP
        const v = pop();
        return v;
      }
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (stack.length > 0 && stack[stack.length - 1] === MARK) {
          stack.pop();
          marks.pop();
        } else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        need(4);
        push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement of n ≤ 255 bytes.
        const n = u8();
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        push(utf8(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(utf8(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(utf8(u64()));
        break;
      case 0x55: // SHORT_BINSTRING (protocol-2 str of Python 2: bytes read as latin-1 text)
        push(latin1(take(u8())));
        break;
      case 0x54: {
        // BINSTRING
        need(4);
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw fail('negative string length', n);
        push(latin1(take(n)));
        break;
      }
      case 0x43: // SHORT_BINBYTES
        push(take(u8()).slice());
        break;
      case 0x42: // BINBYTES
        push(take(u32()).slice());
        break;
      case 0x8e: // BINBYTES8
        push(take(u64()).slice());
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x85: // TUPLE1
        push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        push(new PyTuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        push(new PyTuple([a, b, c]));
        break;
      }
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new PyDict());
        break;
      case 0x64: {
        // DICT
        const d = new PyDict();
        setItems(d, popMark());
        push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        push(new PySet([]));
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof PySet)) throw fail('ADDITEMS on a value that is not a set', describe(s));
        s.items.push(...items);
        break;
      }
      case 0x91: // FROZENSET
        push(new PySet(popMark()));
        break;
      case 0x63: {
        // GLOBAL: "module\nname\n"
        const module = line();
        const name = line();
        push(global(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail('STACK_GLOBAL needs two strings');
        push(global(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        push(callGlobal(fn, seq(args, `byte ${at}`), `byte ${at}`));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args) — records only.
        const args = pop();
        const cls = pop();
        push(newObject(cls, seq(args, `byte ${at}`), at));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop(); // kwargs
        const args = pop();
        const cls = pop();
        push(newObject(cls, seq(args, `byte ${at}`), at));
        break;
      }
      case 0x62: {
        // BUILD: set the state of the object below.
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        else if (obj instanceof PyDict) obj.attrs = state;
        else if (!(obj instanceof TorchTensor)) throw fail('BUILD on a value that takes no state', describe(obj));
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) throw fail('persistent id outside a checkpoint');
        push(opts.persistentLoad(pid));
        break;
      }
      case 0x71: // BINPUT
        memoPut(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoPut(u32());
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size);
        break;
      case 0x68: // BINGET
        memoGet(u8());
        break;
      case 0x6a: // LONG_BINGET
        memoGet(u32());
        break;
      default:
        pos = at;
        throw fail('unsupported or unsafe opcode', `0x${op.toString(16).padStart(2, '0')}`);
    }
  }

  function newObject(cls: PyValue, args: PyValue[], at: number): PyValue {
    if (!(cls instanceof PyGlobal)) throw fail('NEWOBJ on a value that is not a class', describe(cls));
    if (cls.qualified === 'collections.OrderedDict') return new PyDict();
    if (cls.qualified === 'builtins.set') return new PySet([]);
    return callGlobal(cls, args, `byte ${at}`);
  }
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}
