/**
 * Reading `torch.save` files without PyTorch and without executing anything.
 *
 * Layout (torch/serialization.py, PyTorch ≥ 1.6 "zipfile" format): a ZIP archive whose entries all
 * sit under one folder `<archive>/`: `data.pkl` (the pickled object, protocol 2), `data/<key>`
 * (one raw little-endian storage per key, stored uncompressed), plus `version`, `byteorder` and
 * `.data/…` bookkeeping. Tensors in `data.pkl` are `torch._utils._rebuild_tensor_v2(storage,
 * offset, size, stride, …)` where `storage` is a persistent id `('storage', torch.<T>Storage,
 * key, location, numel)`. The ZIP container is read with fflate; the pickle with our restricted
 * reader (pickle.ts). The legacy pre-1.6 format (a bare pickle stream) is recognised and refused.
 */
import { unzipSync } from 'fflate';
import { AdapterFormatError, NonFiniteError, TensorPeftError } from '../../errors.js';
import type { Tensor } from '../../tensor.js';
import { decodeToFloat32 } from '../dtype.js';
import { STORAGE_TYPES, describe, seq, toIndex } from './allowlist.js';
import { unpickle } from './pickle.js';
import { PyDict, PyGlobal, TORCH_ITEMSIZE, TorchStorage, TorchTensor, type PyValue } from './values.js';

/** Largest tensor (elements) decoded from a checkpoint. */
export const MAX_TORCH_TENSOR_ELEMENTS = 1 << 28;

export interface TorchCheckpoint {
  /** The unpickled object (inert values; tensors are views not yet decoded). */
  root: PyValue;
  /** Raw storages by key. */
  storages: Map<string, Uint8Array>;
  file?: string;
}

export interface ReadTorchOptions {
  file?: string;
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** `torch.save` legacy format starts with a pickled magic number (protocol 2, LONG1 of 10 bytes). */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/** Whether `bytes` look like a `torch.save` file (zip or legacy), judged by the first bytes only. */
export function isTorchCheckpoint(bytes: Uint8Array): boolean {
  return startsWith(bytes, ZIP_MAGIC) || startsWith(bytes, LEGACY_MAGIC);
}

/** The entries of the zip container, uncompressed entries only, each checked against its header. */
function readZip(bytes: Uint8Array, file: string | undefined): Map<string, Uint8Array> {
  const infos = new Map<string, { size: number; originalSize: number }>();
  // A central-directory entry takes at least 46 bytes: more entries than that cannot be real.
  const maxEntries = Math.floor(bytes.length / 46);
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter: (f) => {
        if (infos.size >= maxEntries) throw new AdapterFormatError('zip directory lists more entries than the file can hold', { file, found: `> ${maxEntries}` });
        if (f.compression !== 0) {
          throw new AdapterFormatError('compressed zip entry: torch.save stores every record uncompressed', { file, tensor: f.name, expected: 'compression 0 (stored)', found: f.compression });
        }
        if (f.size !== f.originalSize || f.size > bytes.length) {
          throw new AdapterFormatError('zip entry size is inconsistent with the file', { file, tensor: f.name, expected: `≤ ${bytes.length} bytes`, found: { size: f.size, originalSize: f.originalSize } });
        }
        infos.set(f.name, { size: f.size, originalSize: f.originalSize });
        return true;
      },
    });
  } catch (e) {
    if (e instanceof TensorPeftError) throw e;
    throw new AdapterFormatError(`not a readable zip archive: ${(e as Error).message}`, { file });
  }
  const out = new Map<string, Uint8Array>();
  for (const [name, data] of Object.entries(files)) {
    // A truncated file makes fflate return a shorter slice: compare with the declared size.
    const info = infos.get(name);
    if (!info || data.length !== info.size) {
      throw new AdapterFormatError('zip entry is truncated', { file, tensor: name, expected: `${info?.size ?? '?'} bytes`, found: `${data.length} bytes` });
    }
    out.set(name, data);
  }
  return out;
}

/** Read a `torch.save` file: its object as inert values, and its storages. */
export function readTorchCheckpoint(bytes: Uint8Array, opts: ReadTorchOptions = {}): TorchCheckpoint {
  const file = opts.file;
  if (startsWith(bytes, LEGACY_MAGIC)) {
    throw new AdapterFormatError('legacy torch.save format (PyTorch < 1.6) is not supported', {
      file,
      expected: 'the zip format of torch.save (PyTorch ≥ 1.6; re-save with torch.save(obj, path))',
      found: 'legacy tar/pickle stream',
    });
  }
  if (!startsWith(bytes, ZIP_MAGIC)) {
    throw new AdapterFormatError('not a torch.save checkpoint', { file, expected: 'a zip archive (PK\\x03\\x04)', found: `first bytes ${[...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}` });
  }
  const entries = readZip(bytes, file);
  const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) {
    throw new AdapterFormatError('torch checkpoint must hold exactly one <archive>/data.pkl', { file, expected: '1 data.pkl', found: pkls.length ? pkls : [...entries.keys()].slice(0, 8) });
  }
  const prefix = pkls[0]!.slice(0, -'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`);
  if (order && new TextDecoder().decode(order).trim() !== 'little') {
    throw new AdapterFormatError('big-endian torch checkpoints are not supported', { file, tensor: `${prefix}byteorder`, expected: 'little', found: new TextDecoder().decode(order.subarray(0, 16)) });
  }
  const storages = new Map<string, Uint8Array>();
  for (const [name, data] of entries) if (name.startsWith(`${prefix}data/`)) storages.set(name.slice(prefix.length + 5), data);

  const persistentLoad = (pid: PyValue): PyValue => {
    const t = seq(pid, 'persistent id');
    if (t.length !== 5 || t[0] !== 'storage') throw new AdapterFormatError('unsupported persistent id', { file, expected: "('storage', type, key, location, numel)", found: describe(pid) });
    const [, type, key, , numelV] = t;
    if (!(type instanceof PyGlobal) || !(type.name in STORAGE_TYPES)) throw new AdapterFormatError('unsupported storage type', { file, expected: Object.keys(STORAGE_TYPES), found: describe(type) });
    if (typeof key !== 'string') throw new AdapterFormatError('storage key must be a string', { file, found: describe(key) });
    const dtype = STORAGE_TYPES[type.name]!;
    const numel = toIndex(numelV!, `storage ${key}.numel`);
    const data = storages.get(key);
    if (!data) throw new AdapterFormatError('storage record missing from the archive', { file, tensor: `${prefix}data/${key}`, found: 'nothing' });
    if (data.length !== numel * TORCH_ITEMSIZE[dtype]) {
      throw new AdapterFormatError('storage record size does not match its element count', { file, tensor: `${prefix}data/${key}`, expected: `${numel} × ${TORCH_ITEMSIZE[dtype]} bytes`, found: `${data.length} bytes` });
    }
    return new TorchStorage(dtype, key, numel);
  };
  const root = unpickle(entries.get(pkls[0]!)!, { file: file === undefined ? pkls[0]! : `${file}:${pkls[0]!}`, persistentLoad });
  return { root, storages, ...(file !== undefined ? { file } : {}) };
}

export interface DecodeOptions {
  /** Accept NaN/Inf values. */
  allowNonFinite?: boolean;
}

/** Decode a tensor view to a dense row-major float32 tensor, every index checked against its storage. */
export function decodeTorchTensor(ckpt: TorchCheckpoint, t: TorchTensor, name: string, opts: DecodeOptions = {}): Tensor {
  const file = ckpt.file;
  let count = 1;
  for (const d of t.shape) {
    count *= d;
    if (count > MAX_TORCH_TENSOR_ELEMENTS) throw new AdapterFormatError('tensor is larger than the element cap', { file, tensor: name, expected: `≤ ${MAX_TORCH_TENSOR_ELEMENTS} elements`, found: t.shape });
  }
  // A view with more elements than its storage repeats elements (stride-0 "expand" views): never
  // seen in checkpoints, and the way a tiny file could ask for a huge allocation — refused.
  if (count > t.storage.numel) {
    throw new AdapterFormatError('tensor view has more elements than its storage (overlapping strides)', { file, tensor: name, expected: `≤ ${t.storage.numel} elements`, found: { size: t.shape, stride: t.stride } });
  }
  const bytes = ckpt.storages.get(t.storage.key)!;
  const item = TORCH_ITEMSIZE[t.storage.dtype];
  if (count > 0) {
    let last = t.offset;
    for (let i = 0; i < t.shape.length; i++) last += (t.shape[i]! - 1) * t.stride[i]!;
    if (last >= t.storage.numel) {
      throw new AdapterFormatError('tensor view reaches past its storage', { file, tensor: name, expected: `last element < ${t.storage.numel}`, found: { offset: t.offset, size: t.shape, stride: t.stride } });
    }
  }
  let contiguous = true;
  for (let i = t.shape.length - 1, s = 1; i >= 0; i--) {
    if (t.shape[i]! !== 1 && t.stride[i]! !== s) contiguous = false;
    s *= t.shape[i]!;
  }
  const dense = (offset: number, n: number): Float32Array => decodeRun(bytes, offset * item, n, t.storage.dtype);
  let data: Float32Array;
  if (contiguous || count === 0) data = dense(t.offset, count);
  else {
    // Strided view: decode the storage span once, then gather.
    let span = 0;
    for (let i = 0; i < t.shape.length; i++) span += (t.shape[i]! - 1) * t.stride[i]!;
    const src = dense(t.offset, span + 1);
    data = new Float32Array(count);
    const idx = new Array<number>(t.shape.length).fill(0);
    for (let k = 0; k < count; k++) {
      let p = 0;
      for (let i = 0; i < idx.length; i++) p += idx[i]! * t.stride[i]!;
      data[k] = src[p]!;
      for (let i = idx.length - 1; i >= 0; i--) {
        if (++idx[i]! < t.shape[i]!) break;
        idx[i] = 0;
      }
    }
  }
  if (!opts.allowNonFinite) {
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!)) throw new NonFiniteError('tensor holds NaN or Inf', { file, tensor: name, expected: 'finite values', found: `${data[i]} at index ${i}` });
    }
  }
  return { shape: [...t.shape], data };
}

function decodeRun(bytes: Uint8Array, byteOffset: number, n: number, dtype: TorchTensor['storage']['dtype']): Float32Array {
  switch (dtype) {
    case 'float32':
      return decodeToFloat32(bytes, byteOffset, n, 'F32');
    case 'float16':
      return decodeToFloat32(bytes, byteOffset, n, 'F16');
    case 'bfloat16':
      return decodeToFloat32(bytes, byteOffset, n, 'BF16');
    default: {
      const dv = new DataView(bytes.buffer, bytes.byteOffset + byteOffset, n * TORCH_ITEMSIZE[dtype]);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        switch (dtype) {
          case 'float64':
            out[i] = dv.getFloat64(8 * i, true);
            break;
          case 'int64':
            out[i] = Number(dv.getBigInt64(8 * i, true));
            break;
          case 'int32':
            out[i] = dv.getInt32(4 * i, true);
            break;
          case 'int16':
            out[i] = dv.getInt16(2 * i, true);
            break;
          case 'int8':
            out[i] = dv.getInt8(i);
            break;
          default:
            out[i] = dv.getUint8(i);
        }
      }
      return out;
    }
  }
}

/**
 * A state dict (`torch.save(model.state_dict())`, PEFT's `adapter_model.bin`): the root must be a
 * dict from names to tensors. Returns dense float32 tensors by name, in file order.
 */
export function readTorchStateDict(bytes: Uint8Array, opts: ReadTorchOptions & DecodeOptions = {}): Map<string, Tensor> {
  const ckpt = readTorchCheckpoint(bytes, opts);
  const root = ckpt.root;
  if (!(root instanceof PyDict)) throw new AdapterFormatError('checkpoint is not a state dict', { file: opts.file, expected: 'a dict of tensors', found: describe(root) });
  const out = new Map<string, Tensor>();
  for (const [k, v] of root.entries) {
    if (typeof k !== 'string') throw new AdapterFormatError('state dict key is not a string', { file: opts.file, found: describe(k) });
    if (!(v instanceof TorchTensor)) throw new AdapterFormatError('state dict entry is not a tensor', { file: opts.file, tensor: k, found: describe(v) });
    out.set(k, decodeTorchTensor(ckpt, v, k, opts));
  }
  return out;
}
