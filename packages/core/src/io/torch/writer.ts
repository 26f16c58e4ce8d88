/**
 * Writing `torch.save`-format files: a small pickle writer (protocol 2, what torch.save emits) and
 * the zip container (`archive/data.pkl`, `archive/data/<key>` raw little-endian storages,
 * `archive/version`, `archive/byteorder`; torch/serialization.py). Used to hand adapters back to
 * the official Python code (`export --to official`) and, in tests, to build official-format files
 * from their documented byte layouts. Opcodes per CPython's Lib/pickletools.py.
 */
import { zipSync } from 'fflate';

export type W =
  | null
  | boolean
  | number
  | string
  | { float: number }
  | { tuple: W[] }
  | { list: W[] }
  | { dict: [W, W][] }
  | { global: [string, string] }
  | { reduce: W; args: W[] }
  | { newobj: [string, string]; args?: W[]; state?: W }
  | { persid: W }
  | { put: string; value: W }
  | { ref: string }
  | { odict: [W, W][]; state?: W }
  | { bytes: Uint8Array };

export class PickleWriter {
  private readonly out: number[] = [];
  private readonly memo = new Map<string, number>();

  op(...b: number[]): this {
    this.out.push(...b);
    return this;
  }
  private u32(n: number): void {
    this.out.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  private str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.op(0x58);
    this.u32(b.length);
    this.out.push(...b);
  }
  private int(v: number): void {
    if (v >= 0 && v < 256) this.op(0x4b, v);
    else if (v >= 0 && v < 65536) this.op(0x4d, v & 0xff, v >> 8);
    else if (v >= -(2 ** 31) && v < 2 ** 31) {
      this.op(0x4a);
      this.u32(v >>> 0);
    } else {
      // LONG1, 8 bytes two's complement
      let x = BigInt.asUintN(64, BigInt(v));
      this.op(0x8a, 8);
      for (let i = 0; i < 8; i++, x >>= 8n) this.out.push(Number(x & 0xffn));
    }
  }
  private float(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, false);
    this.op(0x47, ...b);
  }
  global(module: string, name: string): void {
    this.op(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }
  write(v: W): this {
    if (v === null) return this.op(0x4e);
    if (v === true) return this.op(0x88);
    if (v === false) return this.op(0x89);
    if (typeof v === 'number') {
      if (Number.isInteger(v)) this.int(v);
      else this.float(v);
      return this;
    }
    if (typeof v === 'string') {
      this.str(v);
      return this;
    }
    if ('float' in v) this.float(v.float);
    else if ('tuple' in v) {
      this.op(0x28);
      for (const x of v.tuple) this.write(x);
      this.op(0x74);
    } else if ('list' in v) {
      this.op(0x5d);
      if (v.list.length) {
        this.op(0x28);
        for (const x of v.list) this.write(x);
        this.op(0x65);
      }
    } else if ('dict' in v) {
      this.op(0x7d);
      this.items(v.dict);
    } else if ('global' in v) this.global(v.global[0], v.global[1]);
    else if ('reduce' in v) {
      this.write(v.reduce);
      this.write({ tuple: v.args });
      this.op(0x52);
    } else if ('newobj' in v) {
      this.global(v.newobj[0], v.newobj[1]);
      this.write({ tuple: v.args ?? [] });
      this.op(0x81);
      if (v.state !== undefined) {
        this.write(v.state);
        this.op(0x62);
      }
    } else if ('persid' in v) {
      this.write(v.persid);
      this.op(0x51);
    } else if ('put' in v) {
      this.write(v.value);
      const i = this.memo.size;
      this.memo.set(v.put, i);
      this.op(0x71, i);
    } else if ('ref' in v) {
      const i = this.memo.get(v.ref);
      if (i === undefined) throw new Error(`no memo ${v.ref}`);
      this.op(0x68, i);
    } else if ('odict' in v) {
      this.global('collections', 'OrderedDict');
      this.op(0x29, 0x52);
      this.items(v.odict);
      if (v.state !== undefined) {
        this.write(v.state);
        this.op(0x62);
      }
    } else if ('bytes' in v) {
      this.op(0x42);
      this.u32(v.bytes.length);
      this.out.push(...v.bytes);
    }
    return this;
  }
  private items(items: [W, W][]): void {
    if (!items.length) return;
    this.op(0x28);
    for (const [k, x] of items) {
      this.write(k);
      this.write(x);
    }
    this.op(0x75);
  }
  /** PROTO 2, the value, STOP. */
  static pickle(v: W): Uint8Array {
    const w = new PickleWriter().op(0x80, 2);
    w.write(v);
    w.op(0x2e);
    return new Uint8Array(w.out);
  }
}

export interface StorageSpec {
  key: string;
  data: Float32Array;
}

/** `torch._utils._rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel), offset, size, stride, False, OrderedDict())`. */
export function tensorW(key: string, numel: number, shape: number[], opts: { offset?: number; stride?: number[]; storageType?: string; parameter?: boolean } = {}): W {
  const stride = opts.stride ?? shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const t: W = {
    reduce: { global: ['torch._utils', '_rebuild_tensor_v2'] },
    args: [
      { persid: { tuple: ['storage', { global: ['torch', opts.storageType ?? 'FloatStorage'] }, key, 'cpu', numel] } },
      opts.offset ?? 0,
      { tuple: shape },
      { tuple: stride },
      false,
      { odict: [] },
    ],
  };
  return opts.parameter ? { reduce: { global: ['torch._utils', '_rebuild_parameter'] }, args: [t, true, { odict: [] }] } : t;
}

/** A `torch.save` zip: `archive/data.pkl` + `archive/data/<key>` (raw little-endian float32) + version/byteorder. */
export function torchSaveZip(pkl: Uint8Array, storages: { key: string; bytes: Uint8Array }[]): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {
    'archive/data.pkl': [pkl, { level: 0 }],
    'archive/byteorder': [new TextEncoder().encode('little'), { level: 0 }],
  };
  for (const s of storages) files[`archive/data/${s.key}`] = [s.bytes, { level: 0 }];
  files['archive/version'] = [new TextEncoder().encode('3\n'), { level: 0 }];
  return zipSync(files);
}

/**
 * `torch.save(OrderedDict(name → tensor))` of float32 tensors (one storage per tensor, keys "0", "1", …),
 * as PEFT's `adapter_model.bin`; `torch.load(…, weights_only=True)` needs nothing beyond its default allowlist.
 */
export function writeTorchStateDict(tensors: Iterable<[string, { shape: number[]; data: Float32Array }]>): Uint8Array {
  const items: [W, W][] = [];
  const storages: { key: string; bytes: Uint8Array }[] = [];
  let i = 0;
  for (const [name, t] of tensors) {
    const key = String(i++);
    items.push([name, tensorW(key, t.data.length, t.shape)]);
    storages.push({ key, bytes: new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)) });
  }
  return torchSaveZip(PickleWriter.pickle({ odict: items, state: { dict: [['_metadata', { odict: [] }]] } }), storages);
}
