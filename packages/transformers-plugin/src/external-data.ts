/**
 * ONNX external data references (`data_location = EXTERNAL`, `external_data` entries `location`,
 * `offset`, `length`), checked before anything is fetched or allocated from them.
 *
 * The references come from the model file, i.e. from whoever published the model: a location that
 * climbs out of the model's folder (`..`, an absolute path, a drive letter) could make the plugin read
 * an unrelated local file or URL, and an offset/length past the end of the file (or not a number)
 * would make it read garbage or allocate without bound. Every such reference is refused with a
 * `PluginError` naming the tensor.
 */
import onnxProto from 'onnx-proto';
import { PluginError } from './errors.js';

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type GraphProto = onnxProto.onnx.IGraphProto;
const DT = onnx.TensorProto.DataType;

/** `…/model.onnx_data`, `…/model.onnx_data_1`: the side files transformers.js asks for. */
export const DATA_FILE_RE = /\.onnx_data(?:_\d+)?$/;

/** A checked reference: `length` is always known (the spec allows leaving it out: "to the end of the file"). */
export interface ExternalRef {
  tensor: string;
  location: string;
  offset: number;
  /** Bytes; undefined when the model leaves it out (then the rest of the file, checked at read time). */
  length: number | undefined;
}

const ELEMENT_BYTES: Partial<Record<number, number>> = {
  [DT.FLOAT]: 4,
  [DT.UINT8]: 1,
  [DT.INT8]: 1,
  [DT.UINT16]: 2,
  [DT.INT16]: 2,
  [DT.INT32]: 4,
  [DT.INT64]: 8,
  [DT.BOOL]: 1,
  [DT.FLOAT16]: 2,
  [DT.DOUBLE]: 8,
  [DT.UINT32]: 4,
  [DT.UINT64]: 8,
  [DT.BFLOAT16]: 2,
};

function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => (typeof d === 'number' ? d : Number(d)));
}

/** Bytes the tensor's type and dims call for (undefined for types without a fixed element size). */
export function tensorByteSize(t: TensorProto): number | undefined {
  const e = ELEMENT_BYTES[t.dataType ?? 0];
  if (e === undefined) return undefined;
  let n = e;
  for (const d of dimsOf(t)) {
    if (!Number.isSafeInteger(d) || d < 0) return undefined;
    n *= d;
  }
  return Number.isSafeInteger(n) ? n : undefined;
}

export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
}

/**
 * A location is taken relative to the model's folder and may name a file in a subfolder, nothing
 * else. `?`, `#` and `%` are refused too: joined into a Hub URL they would change what is fetched.
 */
function checkLocation(tensor: string, location: string): void {
  const bad = (why: string): never => {
    throw new PluginError(`external data of tensor ${tensor}: location ${JSON.stringify(location)} ${why}`);
  };
  if (location === '') bad('is empty');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f?#%]/.test(location)) bad('has characters a file name in the model folder cannot have (control, ?, #, %)');
  if (/^[\\/]/.test(location) || /^[A-Za-z]:/.test(location)) bad('is absolute (it must be relative to the model file)');
  // `file://…`, `http://…`: a URL names a place of its own choosing, not a file beside the model.
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(location)) bad('is a URL (it must be a file name relative to the model file)');
  if (location.split(/[\\/]/).some((p) => p === '..')) bad('leaves the model folder (..)');
}

function parseCount(tensor: string, key: string, value: string | null | undefined): number {
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new PluginError(`external data of tensor ${tensor}: ${key} ${JSON.stringify(value)} is not a non-negative integer`);
  }
  return Number(value);
}

/** The checked reference of an external tensor (syntax, location, and length against its dims). */
export function externalRef(t: TensorProto): ExternalRef {
  const tensor = t.name ?? '(unnamed)';
  const kv = new Map<string, string | null | undefined>();
  for (const e of t.externalData ?? []) {
    if (kv.has(e.key ?? '')) throw new PluginError(`external data of tensor ${tensor}: key ${JSON.stringify(e.key)} given twice`);
    kv.set(e.key ?? '', e.value);
  }
  const location = kv.get('location');
  if (typeof location !== 'string') throw new PluginError(`external data of tensor ${tensor}: no location`);
  checkLocation(tensor, location);
  const offset = kv.has('offset') ? parseCount(tensor, 'offset', kv.get('offset')) : 0;
  const length = kv.has('length') ? parseCount(tensor, 'length', kv.get('length')) : undefined;
  const want = tensorByteSize(t);
  if (length !== undefined && want !== undefined && length !== want) {
    throw new PluginError(`external data of tensor ${tensor}: length ${length} but its type and dims [${dimsOf(t).join(', ')}] need ${want} bytes`);
  }
  return { tensor, location, offset, length };
}

/**
 * Every tensor a graph holds: initializers, sparse initializers' values and indices, Constant (or
 * any node's) tensor attributes, and the same inside subgraphs (If/Loop/Scan bodies), since ORT
 * resolves external data on all of them. Iterative: a hostile model can nest subgraphs deeply.
 */
export function graphTensors(graph: GraphProto): TensorProto[] {
  const out: TensorProto[] = [];
  const stack: GraphProto[] = [graph];
  while (stack.length > 0) {
    const g = stack.pop()!;
    out.push(...(g.initializer ?? []));
    for (const sp of g.sparseInitializer ?? []) {
      if (sp.values) out.push(sp.values);
      if (sp.indices) out.push(sp.indices);
    }
    for (const nd of g.node ?? []) {
      for (const a of nd.attribute ?? []) {
        if (a.t) out.push(a.t);
        out.push(...(a.tensors ?? []));
        if (a.g) stack.push(a.g);
        stack.push(...(a.graphs ?? []));
      }
    }
  }
  return out;
}

/**
 * Distinct checked locations of every external tensor, in first-use order: of a list of tensors
 * (initializers), or of a whole graph (every tensor graphTensors finds).
 */
export function externalLocations(source: readonly TensorProto[] | GraphProto): string[] {
  const tensors = Array.isArray(source) ? (source as readonly TensorProto[]) : graphTensors(source as GraphProto);
  const out: string[] = [];
  for (const t of tensors) {
    if (!isExternal(t)) continue;
    const { location } = externalRef(t);
    if (!out.includes(location)) out.push(location);
  }
  return out;
}

/** `<folder of the .onnx>/<location>` (local path or URL), for an already checked location. */
export function siblingKey(onnxKey: string, location: string): string {
  const q = onnxKey.indexOf('?');
  const bare = q >= 0 ? onnxKey.slice(0, q) : onnxKey;
  const slash = bare.lastIndexOf('/');
  return `${bare.slice(0, slash + 1)}${location.replace(/\\/g, '/')}`;
}

/**
 * The bytes of an external tensor (a copy, 4-byte aligned for typed-array views), after checking
 * that the range lies inside the file it names. `files`: location → file bytes.
 */
export function readExternalBytes(t: TensorProto, files: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const ref = externalRef(t);
  const file = files.get(ref.location);
  if (!file) throw new PluginError(`external data of tensor ${ref.tensor}: file ${ref.location} was not provided`);
  const want = tensorByteSize(t);
  const length = ref.length ?? (want ?? file.length - ref.offset);
  if (ref.offset > file.length || length > file.length - ref.offset) {
    throw new PluginError(`external data of tensor ${ref.tensor}: bytes [${ref.offset}, ${ref.offset + length}) lie beyond the end of ${ref.location} (${file.length} bytes)`);
  }
  if (want !== undefined && length !== want) throw new PluginError(`external data of tensor ${ref.tensor}: ${length} bytes but its type and dims need ${want}`);
  return file.slice(ref.offset, ref.offset + length);
}
