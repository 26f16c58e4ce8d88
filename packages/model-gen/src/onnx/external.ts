/**
 * ONNX external data: large initializers stored in a side file next to the `.onnx` (what exporters
 * do for models over protobuf's 2 GB limit, and what transformers.js loads with
 * `use_external_data_format`). Each moved tensor keeps its name, type and dims, loses `raw_data`,
 * and gets `data_location = EXTERNAL` with `external_data` entries `location` (the side file,
 * relative to the `.onnx`), `offset` and `length` (bytes, decimal strings), as the ONNX IR spec says.
 *
 * Which tensors move: raw-data initializers of at least `sizeThreshold` bytes (default 1024, the
 * `size_threshold` default of onnx's `convert_model_to_external_data`): small tensors (biases,
 * LayerNorm, scales, zero points) stay inline, as in real exports.
 *
 * Layout: tensors in initializer order; a tensor larger than `alignThreshold` (default 1 MiB) starts
 * at a multiple of `alignment` (default 64 KiB, mmap's allocation granularity on every OS, a
 * multiple of the 4 KiB page) — the rule of onnx's own writer, so big weights can be mmapped in
 * place; smaller ones follow each other without padding, so tiny models stay tiny. Padding bytes are 0.
 */
import onnxProto from 'onnx-proto';
import { modelProto, PRODUCER, type Graph } from './graph.js';

const { onnx } = onnxProto;

export interface ExternalDataOptions {
  /** Side file name relative to the `.onnx` (same folder), e.g. `model.onnx_data`. */
  location: string;
  /** Initializers with at least this many bytes are moved (default 1024). */
  sizeThreshold?: number;
  /** Tensors with more bytes than this are aligned (default 1 MiB). */
  alignThreshold?: number;
  /** Alignment of those tensors' offsets (default 65536). */
  alignment?: number;
}

/** Where one moved tensor lives in the side file. */
export interface ExternalEntry {
  name: string;
  offset: number;
  length: number;
}

export interface ExternalEncoded {
  /** The `.onnx` bytes (graph + small initializers). */
  model: Uint8Array;
  /** The side file's bytes. */
  data: Uint8Array;
  entries: ExternalEntry[];
}

export const DEFAULT_SIZE_THRESHOLD = 1024;
export const DEFAULT_ALIGN_THRESHOLD = 1 << 20;
export const DEFAULT_ALIGNMENT = 1 << 16;

function positiveInt(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`external data: ${what} must be a non-negative integer, got ${v}`);
  return v;
}

/** Encode `g` with its large initializers in a side file (see the module comment). */
export function encodeModelExternal(g: Graph, opts: ExternalDataOptions, producer = PRODUCER): ExternalEncoded {
  const { location } = opts;
  // The location is written into the model and resolved by loaders against the model's folder:
  // a plain file name keeps it inside that folder.
  if (location === '' || /[\\/]/.test(location) || location === '.' || location === '..') throw new Error(`external data: location must be a plain file name, got ${JSON.stringify(location)}`);
  const threshold = positiveInt(opts.sizeThreshold ?? DEFAULT_SIZE_THRESHOLD, 'sizeThreshold');
  const alignThreshold = positiveInt(opts.alignThreshold ?? DEFAULT_ALIGN_THRESHOLD, 'alignThreshold');
  const alignment = positiveInt(opts.alignment ?? DEFAULT_ALIGNMENT, 'alignment');
  if (alignment === 0) throw new Error('external data: alignment must be positive');

  const proto = modelProto(g, producer);
  const entries: ExternalEntry[] = [];
  const chunks: Array<{ offset: number; bytes: Uint8Array }> = [];
  let end = 0;
  for (const t of proto.graph!.initializer ?? []) {
    const raw = t.rawData;
    if (!raw || raw.length < threshold) continue;
    const offset = raw.length > alignThreshold ? Math.ceil(end / alignment) * alignment : end;
    chunks.push({ offset, bytes: raw });
    entries.push({ name: t.name!, offset, length: raw.length });
    t.rawData = undefined;
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
    end = offset + raw.length;
  }
  const data = new Uint8Array(end); // zero-filled: the padding
  for (const c of chunks) data.set(c.bytes, c.offset);
  const model = onnx.ModelProto.encode(onnx.ModelProto.fromObject(proto)).finish();
  return { model, data, entries };
}
