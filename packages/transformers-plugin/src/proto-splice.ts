/**
 * The branch-mode rewrite without decoding or copying weight bytes (issue 16).
 *
 * The rewrite looks at the graph's nodes, inputs, outputs and at the initializers' names, types and
 * dims, never at their data. So the model is scanned at the protobuf wire level: ModelProto field 7
 * (`graph`), in it GraphProto field 5 (`initializer`, one TensorProto each), in each TensorProto
 * field 9 (`raw_data`). Everything but `raw_data` of 4 KiB or more is decoded as usual (a "light"
 * model whose weight initializers are data-less stubs); the rewrite runs on it unchanged
 * (rewrite.ts: branch mode never reads weight values); and the
 * output is encoded from the rewritten light model with every original initializer record — tag,
 * length and body, as found in the source — spliced through as a view of the source bytes. The
 * cost grows with the graph (nodes, value infos, initializer headers), not with the weight bytes;
 * joining the parts into one buffer (`joinParts`) is the one copy left, and a Node cache writes the
 * parts to a file without it.
 *
 * The output is not byte-identical to the full decode/encode path (initializer records keep their
 * source encoding, and follow the graph's other fields), but decodes to the same ModelProto: the
 * tests compare both paths' decoded models on every model model-gen emits.
 *
 * Anything the scanner does not expect (a group or unknown wire type, a graph field given twice,
 * `raw_data` not length-delimited, a length past the end, a part protobufjs refuses) makes it fall
 * back to the full decode path, which gives the typed error or result it always gave: the splice
 * never accepts a model the full path refuses on account of its structure.
 */
import onnxProto from 'onnx-proto';
import { rewriteModel } from './rewrite.js';
import { isExternal } from './external-data.js';
import type { RewriteOptions, RewriteResult } from './rewrite-types.js';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.ModelProto;
type TensorProto = onnxProto.onnx.TensorProto;

const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_RAW_DATA = 9;
const LEN = 2;
/**
 * `raw_data` shorter than this stays in the light model: small constants (shapes, axes, the split
 * sizes rewrite-packed.ts reads) are graph structure the rewrite may look at; weights are larger.
 */
export const KEEP_BELOW = 4096;

/**
 * Wire types protobufjs' decoders read each known field with (onnx-proto 8: ModelProto, GraphProto,
 * TensorProto); repeated scalars also packed (2). Its generated code does not check the wire type of
 * a known field, so one written with another would be read across the following bytes: which bytes
 * follow differs between the light and the full decode, so such a model goes to the full path.
 */
const WIRE: Record<'model' | 'graph' | 'tensor', Record<number, readonly number[]>> = {
  model: { 1: [0], 8: [2], 2: [2], 3: [2], 4: [2], 5: [0], 6: [2], 7: [2], 14: [2], 20: [2], 25: [2] },
  graph: { 1: [2], 2: [2], 5: [2], 15: [2], 10: [2], 11: [2], 12: [2], 13: [2], 14: [2] },
  tensor: { 1: [0, 2], 2: [0], 3: [2], 4: [5, 2], 5: [0, 2], 6: [2], 7: [0, 2], 8: [2], 12: [2], 9: [2], 13: [2], 14: [0], 10: [1, 2], 11: [0, 2] },
};

function checkWire(kind: keyof typeof WIRE, fs: readonly Field[]): readonly Field[] {
  for (const f of fs) {
    const ok = WIRE[kind][f.no];
    if (ok && !ok.includes(f.wt)) throw new Unsupported(`${kind} field ${f.no} with wire type ${f.wt}`);
  }
  return fs;
}

/** A reason to fall back to the full decode path (never leaves this module). */
class Unsupported extends Error {}

/** A field of a message: its number, wire type, where its record starts (tag), its payload and its end. */
interface Field {
  no: number;
  wt: number;
  start: number;
  payload: number;
  end: number;
}

/**
 * Where the model bytes are read from: a buffer, or (proto-splice-file.ts) a file read in small
 * windows, so a model on disk is scanned and spliced without holding its weights in memory.
 */
export interface ByteSource {
  readonly length: number;
  byte(pos: number): number;
  /** Bytes `[a, b)` (a view where the source is a buffer). */
  bytes(a: number, b: number): Uint8Array;
}

function bufferSource(buf: Uint8Array): ByteSource {
  return { length: buf.length, byte: (p) => buf[p]!, bytes: (a, b) => buf.subarray(a, b) };
}

/** A varint at `pos` (lengths and tags: at most 2^53, else unsupported). */
function varint(buf: ByteSource, pos: number, end: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new Unsupported('truncated varint');
    const b = buf.byte(pos++);
    v += (b & 0x7f) * mul;
    if (b < 0x80) {
      if (!Number.isSafeInteger(v)) throw new Unsupported('varint beyond 2^53');
      return [v, pos];
    }
    mul *= 128;
  }
  throw new Unsupported('varint longer than 10 bytes');
}

/** The fields of the message in `buf[start, end)`, each checked to end inside it. */
function fields(buf: ByteSource, start: number, end: number): Field[] {
  const out: Field[] = [];
  let pos = start;
  while (pos < end) {
    const fieldStart = pos;
    const [tag, p] = varint(buf, pos, end);
    const no = Math.floor(tag / 8);
    const wt = tag % 8;
    if (no === 0) throw new Unsupported('field number 0');
    let payload = p;
    let next: number;
    if (wt === 0) next = varint(buf, p, end)[1];
    else if (wt === 1) next = p + 8;
    else if (wt === 5) next = p + 4;
    else if (wt === LEN) {
      const [len, q] = varint(buf, p, end);
      payload = q;
      next = q + len;
    } else throw new Unsupported(`wire type ${wt}`);
    if (next > end) throw new Unsupported('field past the end of its message');
    out.push({ no, wt, start: fieldStart, payload, end: next });
    pos = next;
  }
  return out;
}

/** The bytes of `buf` in `ranges`, one view when there is one range (no copy), else one copy. */
function gather(buf: ByteSource, ranges: ReadonlyArray<readonly [number, number]>): Uint8Array {
  if (ranges.length === 1) return buf.bytes(ranges[0]![0], ranges[0]![1]);
  let n = 0;
  for (const [a, b] of ranges) n += b - a;
  const out = new Uint8Array(n);
  let o = 0;
  for (const [a, b] of ranges) {
    out.set(buf.bytes(a, b), o);
    o += b - a;
  }
  return out;
}

/** Adjacent ranges merged (fields following one another stay one view). */
function pushRange(ranges: Array<[number, number]>, a: number, b: number): void {
  const last = ranges[ranges.length - 1];
  if (last && last[1] === a) last[1] = b;
  else ranges.push([a, b]);
}

/** A model decoded without its initializers' `raw_data`, with where each initializer's record lies in the source. */
export interface LightModel {
  model: ModelProto;
  source: ByteSource;
  /** Each stub initializer (by identity) → its original record `[start, end)` in `source`. */
  records: Map<TensorProto, readonly [number, number]>;
}

/** `bytes` as a light model, or undefined where the full decode path must handle it. */
export function decodeLight(bytes: Uint8Array | ByteSource): LightModel | undefined {
  try {
    return decodeLightOrThrow(bytes instanceof Uint8Array ? bufferSource(bytes) : bytes);
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
}

/** protobufjs' decode of one part; its refusal (plain Errors) is reported, typed, by the full path. */
function decoded<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Unsupported(`protobufjs: ${(e as Error).message}`);
  }
}

function decodeLightOrThrow(bytes: ByteSource): LightModel {
  const top = checkWire('model', fields(bytes, 0, bytes.length));
  const graphs = top.filter((f) => f.no === MODEL_GRAPH);
  // Two graph fields merge as protobuf messages do: rare enough to leave to the full decoder.
  if (graphs.length !== 1 || graphs[0]!.wt !== LEN) throw new Unsupported('not exactly one graph field');
  const graph = graphs[0]!;
  const topRanges: Array<[number, number]> = [];
  for (const f of top) if (f !== graph) pushRange(topRanges, f.start, f.end);

  const graphRanges: Array<[number, number]> = [];
  const stubs: TensorProto[] = [];
  const records = new Map<TensorProto, readonly [number, number]>();
  for (const f of checkWire('graph', fields(bytes, graph.payload, graph.end))) {
    if (f.no !== GRAPH_INITIALIZER) {
      pushRange(graphRanges, f.start, f.end);
      continue;
    }
    if (f.wt !== LEN) throw new Unsupported('initializer not length-delimited');
    const keep: Array<[number, number]> = [];
    for (const t of checkWire('tensor', fields(bytes, f.payload, f.end))) {
      if (t.no === TENSOR_RAW_DATA) {
        if (t.wt !== LEN) throw new Unsupported('raw_data not length-delimited');
        if (t.end - t.payload >= KEEP_BELOW) continue;
      }
      pushRange(keep, t.start, t.end);
    }
    const stub = decoded(() => onnx.TensorProto.decode(keep.length === 0 ? new Uint8Array(0) : gather(bytes, keep)));
    stubs.push(stub);
    records.set(stub, [f.start, f.end]);
  }
  const model = decoded(() => onnx.ModelProto.decode(topRanges.length === 0 ? new Uint8Array(0) : gather(bytes, topRanges)));
  const g = decoded(() => onnx.GraphProto.decode(graphRanges.length === 0 ? new Uint8Array(0) : gather(bytes, graphRanges)));
  g.initializer = stubs;
  model.graph = g;
  return { model, source: bytes, records };
}

function varintBytes(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** The encoded model as parts (views of the source for untouched initializers) and their total length. */
export interface ModelParts {
  parts: Uint8Array[];
  byteLength: number;
}

/** The encoded model as segments: new bytes, or a `[from, to)` range of the source. */
export interface ModelSegments {
  segments: Array<Uint8Array | readonly [number, number]>;
  byteLength: number;
}

/**
 * Encode a rewritten light model: its top-level fields, then the graph record (the graph's other
 * fields, then its initializers in order: source records for the original ones, encoded ones for
 * those the rewrite added).
 */
export function encodeParts(light: LightModel, model: ModelProto): ModelParts {
  const { segments, byteLength } = encodeSegments(light, model);
  return { parts: segments.map((x) => (x instanceof Uint8Array ? x : light.source.bytes(x[0], x[1]))), byteLength };
}

/** `encodeParts` with the untouched initializer records as source ranges (for a file source). */
export function encodeSegments(light: LightModel, model: ModelProto): ModelSegments {
  const g = model.graph!;
  const inits = g.initializer ?? [];
  const initParts = inits.map((t): Uint8Array | readonly [number, number] => light.records.get(t as TensorProto) ?? onnx.GraphProto.encode({ initializer: [t] }).finish());
  g.initializer = [];
  model.graph = null;
  let gBody: Uint8Array;
  let mBody: Uint8Array;
  try {
    gBody = onnx.GraphProto.encode(g).finish();
    mBody = onnx.ModelProto.encode(model).finish();
  } finally {
    g.initializer = inits;
    model.graph = g;
  }
  let graphLen = gBody.length;
  for (const p of initParts) graphLen += p instanceof Uint8Array ? p.length : p[1] - p[0];
  const header = new Uint8Array([(MODEL_GRAPH << 3) | LEN, ...varintBytes(graphLen)]);
  return { segments: [mBody, header, gBody, ...initParts], byteLength: mBody.length + header.length + graphLen };
}

/** The parts in one buffer of exactly their length (its ArrayBuffer holds nothing else). */
export function joinParts({ parts, byteLength }: ModelParts): Uint8Array {
  const out = new Uint8Array(byteLength);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export type SplicedRewrite = Omit<RewriteResult, 'bytes'> &
  ModelParts & {
    spliced: boolean;
    /** The model may reference ONNX external data (always true for the full path: not looked at there). */
    external: boolean;
  };

/**
 * The rewrite of model bytes as parts: spliced in branch mode where the scanner reads the model,
 * else (merge mode, which reads base weights; models the scanner leaves to the full decoder) the
 * full path's bytes as one part.
 */
export function rewriteParts(bytes: Uint8Array, opts: RewriteOptions): SplicedRewrite {
  const light = (opts.mode ?? 'branch') === 'branch' ? decodeLight(bytes) : undefined;
  if (!light) {
    const { bytes: out, ...info } = rewriteModel(bytes, opts);
    return { ...info, parts: [out], byteLength: out.length, spliced: false, external: true };
  }
  let encoded: ModelParts | undefined;
  const { bytes: _empty, ...info } = rewriteModel(light.model, opts, (m) => {
    encoded = encodeParts(light, m);
    return new Uint8Array(0);
  });
  const external = (light.model.graph?.initializer ?? []).some((t) => isExternal(t));
  return { ...info, ...encoded!, spliced: true, external };
}

/** `rewriteModel` on bytes through the splice (branch mode), as one buffer. */
export function rewriteSpliced(bytes: Uint8Array, opts: RewriteOptions): RewriteResult {
  const { parts, byteLength, spliced: _s, external: _e, ...info } = rewriteParts(bytes, opts);
  return { ...info, bytes: parts.length === 1 ? parts[0]! : joinParts({ parts, byteLength }) };
}
