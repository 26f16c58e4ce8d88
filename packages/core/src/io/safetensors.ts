/**
 * Strict safetensors reader and writer.
 *
 * Hand-written on purpose: the format is tiny (u64 header length, JSON header, raw little-endian
 * data), the available JS libraries are lenient (they trust header lengths and offsets, accept
 * gaps, overlaps and duplicate keys) or pull in Node-only dependencies, and this code must run
 * unchanged in browsers with no dependencies. Every check below happens before any tensor data is
 * decoded, and the declared header length is checked against the file size and a cap before
 * anything is allocated for it.
 *
 * Layout (https://github.com/huggingface/safetensors): 8-byte little-endian u64 N, N bytes of UTF-8
 * JSON `{"__metadata__": {str: str}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}`
 * (offsets relative to the data section), then the data section, which the tensors must cover
 * exactly (no gaps, no overlaps, no trailing bytes).
 *
 * The writer reproduces the Python/Rust library byte for byte: tensors sorted by dtype (descending
 * alignment: BF16 before F16 as in Rust's `Dtype` order) then by name (byte order), laid out
 * contiguously in that order, `__metadata__` first, JSON without spaces, the header padded with
 * spaces to a multiple of 8.
 */
import { AdapterFormatError, NonFiniteError } from '../errors.js';
import { scanJson } from './json-scan.js';
import { numel, type Tensor } from '../tensor.js';
import { DTYPE_TO_SAFETENSORS, ITEMSIZE, decodeToFloat32, encodeFromFloat32, type SafetensorsDtype, type StorageDtype } from './dtype.js';

/** Largest header accepted (same cap as the reference implementation). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Most tensors one file may declare. The largest real adapters hold ~10⁵ (LoRA on every expert of
 * a 256-expert MoE); a hostile 100 MB header could otherwise declare 1.7 M entries and cost
 * seconds and gigabytes to validate.
 */
export const MAX_HEADER_TENSORS = 200_000;

/** Nesting of a valid header: the object, a tensor entry or __metadata__, a shape/offset list. */
const HEADER_DEPTH = 3;

export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface ParsedSafetensors {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

export interface ParseOptions {
  /** Accept NaN/Inf values instead of throwing NonFiniteError. */
  allowNonFinite?: boolean;
  /** Lower header cap (bytes); never above MAX_HEADER_BYTES. */
  maxHeaderBytes?: number;
}

/** Header entry of one tensor after validation (no data decoded yet). */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

const SUPPORTED = new Set<string>(['F32', 'F16', 'BF16']);
/** Every dtype name the safetensors spec defines (for a precise "unsupported" message). */
const KNOWN_DTYPES = new Set<string>([
  'BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64',
]);

type Fail = (message: string, d?: { tensor?: string; field?: string; expected?: unknown; found?: unknown }) => never;

function fmtErr(file: string | undefined): Fail {
  return (message, d = {}) => {
    throw new AdapterFormatError(message, { file, ...d });
  };
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/**
 * Find duplicate object keys in a JSON text that JSON.parse already accepted (so the text is
 * valid JSON and a light scanner suffices). Returns the first duplicate key and its object path.
 */
export function findDuplicateJsonKey(text: string): { key: string; path: string } | undefined {
  type Frame = { obj: boolean; keys: Set<string>; expectKey: boolean; name: string };
  const stack: Frame[] = [];
  let lastKey = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) j += 2;
        else if (d === 0x22) break;
        else j++;
      }
      const top = stack[stack.length - 1];
      if (top && top.obj && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { key, path: stack.map((f) => f.name).filter(Boolean).join('.') };
        top.keys.add(key);
        top.expectKey = false;
        lastKey = key;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      stack.push({ obj: c === 0x7b, keys: new Set(), expectKey: c === 0x7b, name: parent?.obj ? lastKey : '' });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.obj) top.expectKey = true;
    }
    i++;
  }
  return undefined;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validate the header of a safetensors file and return its entries (sorted by offset) and
 * metadata, without decoding any tensor data. Throws AdapterFormatError naming the file, the
 * tensor and what was expected vs found.
 */
export function readSafetensorsHeader(
  bytes: Uint8Array,
  file?: string,
  opts: Pick<ParseOptions, 'maxHeaderBytes'> = {},
): { entries: SafetensorsEntry[]; metadata: Record<string, string>; dataStart: number } {
  const fail: Fail = fmtErr(file);
  if (bytes.length < 8) fail('file is too short to be safetensors', { expected: '≥ 8 bytes (u64 header length)', found: `${bytes.length} bytes` });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = dv.getUint32(0, true);
  const hi = dv.getUint32(4, true);
  // Exact below 2^53; above that the value is only compared, never used.
  const headerLen = hi * 4294967296 + lo;
  const cap = Math.min(opts.maxHeaderBytes ?? MAX_HEADER_BYTES, MAX_HEADER_BYTES);
  if (headerLen > cap) fail('declared header length is larger than the cap', { field: 'header length', expected: `≤ ${cap} bytes`, found: headerLen });
  if (8 + headerLen > bytes.length) {
    fail('declared header length runs past the end of the file', {
      field: 'header length',
      expected: `≤ ${bytes.length - 8} bytes (file is ${bytes.length} bytes)`,
      found: headerLen,
    });
  }
  if (headerLen === 0) fail('header is empty', { field: 'header', expected: 'a JSON object', found: 'nothing' });

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail('header is not valid UTF-8', { field: 'header', expected: 'UTF-8 JSON', found: 'invalid byte sequence' });
  }
  if (!text.startsWith('{')) fail('header must start with "{"', { field: 'header', expected: 'a JSON object', found: JSON.stringify(text.slice(0, 16)) });
  // Structure before parsing: JSON.parse would build whatever the text nests (10⁶ arrays for a
  // 10 MB `[[[[…`) before any check could look at it.
  const scan = scanJson(text, { maxDepth: HEADER_DEPTH, maxTopLevelMembers: MAX_HEADER_TENSORS + 1 });
  if (!scan.ok) {
    if (scan.limit === 'depth') fail('header is nested deeper than a safetensors header can be', { field: 'header', expected: `nesting depth ≤ ${HEADER_DEPTH}`, found: `depth ${scan.found} at byte ${scan.at}` });
    fail('header declares too many entries', { field: 'header', expected: `≤ ${MAX_HEADER_TENSORS + 1} entries (tensors and __metadata__)`, found: `more than ${MAX_HEADER_TENSORS + 1}` });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON: ${(e as Error).message}`, { field: 'header', expected: 'a JSON object' });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    fail('header is not a JSON object', { field: 'header', expected: 'object', found: typeName(json) });
  }
  const dup = findDuplicateJsonKey(text);
  if (dup) {
    fail('header has a duplicate key', dup.path ? { field: dup.path, tensor: dup.key, expected: 'unique keys', found: 'duplicate' } : { tensor: dup.key, expected: 'unique keys', found: 'duplicate' });
  }

  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
        fail('__metadata__ must be an object of strings', { field: '__metadata__', expected: 'object', found: typeName(raw) });
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail('__metadata__ values must be strings', { field: `__metadata__.${k}`, expected: 'string', found: typeName(v) });
        metadata[k] = v;
      }
      continue;
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      fail('tensor entry must be an object', { tensor: name, expected: '{dtype, shape, data_offsets}', found: typeName(raw) });
    }
    const ent = raw as Record<string, unknown>;
    for (const k of Object.keys(ent)) {
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') fail('tensor entry has an unknown field', { tensor: name, field: k, expected: 'dtype, shape, data_offsets' });
    }
    const { dtype, shape, data_offsets: offs } = ent;
    if (dtype === undefined) fail('tensor entry is missing dtype', { tensor: name, field: 'dtype', expected: 'F32 | F16 | BF16', found: 'nothing' });
    if (typeof dtype !== 'string') fail('tensor dtype must be a string', { tensor: name, field: 'dtype', expected: 'string', found: typeName(dtype) });
    if (!SUPPORTED.has(dtype)) {
      fail(KNOWN_DTYPES.has(dtype) ? 'unsupported tensor dtype' : 'unknown tensor dtype', { tensor: name, field: 'dtype', expected: 'F32 | F16 | BF16', found: dtype });
    }
    if (shape === undefined) fail('tensor entry is missing shape', { tensor: name, field: 'shape', expected: 'array of non-negative integers', found: 'nothing' });
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      fail('tensor shape must be an array of non-negative integers', { tensor: name, field: 'shape', expected: 'array of non-negative integers', found: shape });
    }
    if (offs === undefined) fail('tensor entry is missing data_offsets', { tensor: name, field: 'data_offsets', expected: '[begin, end]', found: 'nothing' });
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegInt)) {
      fail('data_offsets must be two non-negative integers', { tensor: name, field: 'data_offsets', expected: '[begin, end]', found: offs });
    }
    const [begin, end] = offs as [number, number];
    if (begin > end) fail('data_offsets begin is after end', { tensor: name, field: 'data_offsets', expected: 'begin ≤ end', found: offs });
    if (end > dataLen) {
      fail('tensor data runs past the end of the file', { tensor: name, field: 'data_offsets', expected: `end ≤ ${dataLen} (data section size)`, found: end });
    }
    const dt = dtype as SafetensorsDtype;
    let count = 1;
    for (const d of shape as number[]) {
      count *= d;
      if (count > Number.MAX_SAFE_INTEGER) fail('tensor shape is too large', { tensor: name, field: 'shape', found: shape });
    }
    const want = count * ITEMSIZE[dt];
    if (end - begin !== want) {
      fail('tensor byte length does not match its shape and dtype', {
        tensor: name,
        field: 'data_offsets',
        expected: `${want} bytes (${count} × ${ITEMSIZE[dt]}-byte ${dt})`,
        found: `${end - begin} bytes`,
      });
    }
    entries.push({ name, dtype: dt, shape: shape as number[], begin, end });
  }

  // The tensors must tile the data section exactly.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: SafetensorsEntry | undefined;
  for (const e of entries) {
    if (e.begin < pos) {
      fail('tensor data overlaps another tensor', {
        tensor: e.name,
        field: 'data_offsets',
        expected: `begin ≥ ${pos} (end of ${prev?.name})`,
        found: [e.begin, e.end],
      });
    }
    if (e.begin > pos) {
      fail('gap in the data section before tensor', { tensor: e.name, field: 'data_offsets', expected: `begin = ${pos}`, found: [e.begin, e.end] });
    }
    pos = e.end;
    prev = e;
  }
  if (pos !== dataLen) {
    fail('data section has bytes no tensor covers', { field: 'data section', expected: `${pos} bytes (end of the last tensor)`, found: `${dataLen} bytes` });
  }
  return { entries, metadata, dataStart };
}

/**
 * Parse a safetensors file, decoding every tensor to float32. Values that are NaN or ±Inf throw
 * NonFiniteError naming the tensor and the first bad index (unless `allowNonFinite`).
 */
export function parseSafetensors(bytes: Uint8Array, file?: string, opts: ParseOptions = {}): ParsedSafetensors {
  const { entries, metadata, dataStart } = readSafetensorsHeader(bytes, file, opts);
  const tensors = new Map<string, SafetensorsTensor>();
  // Keep the header's key order for callers that iterate (entries are sorted by offset).
  for (const e of entries) {
    const count = (e.end - e.begin) / ITEMSIZE[e.dtype];
    const data = decodeToFloat32(bytes, dataStart + e.begin, count, e.dtype);
    if (!opts.allowNonFinite) {
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        if (v - v !== 0) {
          throw new NonFiniteError('tensor has a non-finite value', { file, tensor: e.name, field: `index ${i}`, expected: 'finite values', found: String(v) });
        }
      }
    }
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Byte-wise (UTF-8) comparison of two strings, as Rust's `String` ordering. */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

export interface WriteOptions {
  dtype?: StorageDtype;
  metadata?: Record<string, string>;
  /** Write NaN/Inf (and values that overflow the storage dtype) instead of throwing. */
  allowNonFinite?: boolean;
}

/** Header bytes and data layout of a safetensors file, without the data (sizes, stats). */
export function layoutSafetensors(
  tensors: ReadonlyMap<string, { shape: readonly number[] }>,
  opts: Pick<WriteOptions, 'dtype' | 'metadata'> = {},
): { header: Uint8Array; entries: { name: string; begin: number; end: number }[]; dtype: SafetensorsDtype; total: number } {
  const dtype = DTYPE_TO_SAFETENSORS[opts.dtype ?? 'fp32'];
  // The reference sorts by (dtype descending, name); our files have one dtype, so name order.
  const names = [...tensors.keys()].sort(compareUtf8);
  const entries: { name: string; begin: number; end: number }[] = [];
  const parts: string[] = [];
  if (opts.metadata !== undefined) {
    const meta: Record<string, string> = {};
    for (const k of Object.keys(opts.metadata).sort(compareUtf8)) {
      const v = opts.metadata[k];
      if (typeof v !== 'string') throw new AdapterFormatError('metadata values must be strings', { field: `__metadata__.${k}`, expected: 'string', found: typeName(v) });
      meta[k] = v;
    }
    parts.push(`"__metadata__":${JSON.stringify(meta)}`);
  }
  let pos = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new AdapterFormatError('"__metadata__" is reserved and cannot name a tensor', { tensor: name });
    const shape = tensors.get(name)!.shape;
    if (!shape.every(isNonNegInt)) throw new AdapterFormatError('tensor shape must be non-negative integers', { tensor: name, found: shape });
    const size = numel(shape as number[]) * ITEMSIZE[dtype];
    entries.push({ name, begin: pos, end: pos + size });
    parts.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: [pos, pos + size] })}`);
    pos += size;
  }
  let json = `{${parts.join(',')}}`;
  const utf8 = new TextEncoder().encode(json);
  const pad = (8 - (utf8.length % 8)) % 8;
  if (pad) json += ' '.repeat(pad);
  const header = pad ? new TextEncoder().encode(json) : utf8;
  return { header, entries, dtype, total: 8 + header.length + pos };
}

/** Serialize tensors to safetensors bytes (see the module comment for the exact layout). */
export function writeSafetensors(tensors: ReadonlyMap<string, Tensor>, opts: WriteOptions = {}): Uint8Array {
  for (const [name, t] of tensors) {
    if (t.data.length !== numel(t.shape)) {
      throw new AdapterFormatError('tensor data length does not match its shape', { tensor: name, expected: numel(t.shape), found: t.data.length });
    }
  }
  const { header, entries, dtype, total } = layoutSafetensors(tensors, opts);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, header.length, true);
  dv.setUint32(4, 0, true);
  out.set(header, 8);
  const dataStart = 8 + header.length;
  for (const e of entries) {
    const t = tensors.get(e.name)!;
    if (!opts.allowNonFinite) {
      for (let i = 0; i < t.data.length; i++) {
        const v = t.data[i]!;
        if (v - v !== 0) throw new NonFiniteError('tensor has a non-finite value', { tensor: e.name, field: `index ${i}`, expected: 'finite values', found: String(v) });
      }
    }
    encodeFromFloat32(t.data, dtype, out, dataStart + e.begin);
    if (!opts.allowNonFinite && dtype !== 'F32') {
      // A finite float32 can overflow a narrower storage dtype (|x| > 65504 in fp16).
      for (let p = dataStart + e.begin, i = 0; p < dataStart + e.end; p += 2, i++) {
        const expBits = ((out[p + 1]! << 8) | out[p]!) & (dtype === 'F16' ? 0x7c00 : 0x7f80);
        if (expBits === (dtype === 'F16' ? 0x7c00 : 0x7f80)) {
          throw new NonFiniteError(`value overflows ${dtype}`, { tensor: e.name, field: `index ${i}`, expected: dtype === 'F16' ? '|x| ≤ 65504' : 'finite in bf16', found: String(t.data[i]) });
        }
      }
    }
  }
  return out;
}
