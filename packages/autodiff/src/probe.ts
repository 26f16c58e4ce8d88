/**
 * Shape probe: run the forward graph once with every intermediate value as an extra output and
 * record each value's dims and element type. Ranks (and which axes broadcast) are what the
 * gradient rules need; they do not change with batch or sequence length, so a small probe batch
 * (sizes ≥ 2 on symbolic dims, so no axis is mistaken for a broadcast one) serves every later run.
 */
import { type ModelProto, onnx } from './onnx.js';

export interface ValueShape {
  dtype: string;
  dims: number[];
}
export type ShapeMap = Map<string, ValueShape>;

/** What the trainer needs of an onnxruntime module (onnxruntime-node and onnxruntime-web both fit). */
export interface OrtTensorLike {
  readonly dims: readonly number[];
  readonly type: string;
  readonly data: unknown;
  dispose?(): void;
}
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release?(): Promise<void>;
}
export interface OrtLike {
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSessionLike> };
  Tensor: new (type: string, data: Float32Array | BigInt64Array | Int32Array | Uint8Array, dims: readonly number[]) => OrtTensorLike;
}

/** Session options for training graphs: basic optimizations only (no fused contrib ops, which have no rules and differ per runtime). */
export const TRAINING_SESSION_OPTIONS = { graphOptimizationLevel: 'basic' } as const;

export async function probeShapes(model: ModelProto, feeds: Record<string, OrtTensorLike>, ort: OrtLike): Promise<ShapeMap> {
  const m = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const g = m.graph!;
  const have = new Set((g.output ?? []).map((o) => o.name!));
  const extra: string[] = [];
  for (const n of g.node ?? []) {
    for (const o of n.output ?? []) {
      if (!o || have.has(o)) continue;
      have.add(o);
      extra.push(o);
    }
  }
  g.output = [...(g.output ?? []), ...extra.map((name) => onnx.ValueInfoProto.fromObject({ name }))];
  const session = await ort.InferenceSession.create(onnx.ModelProto.encode(m).finish(), TRAINING_SESSION_OPTIONS);
  const out: ShapeMap = new Map();
  try {
    const res = await session.run(feeds);
    for (const [name, t] of Object.entries(res)) {
      out.set(name, { dtype: t.type, dims: [...t.dims] });
      t.dispose?.();
    }
  } finally {
    await session.release?.();
  }
  for (const [name, t] of Object.entries(feeds)) out.set(name, { dtype: t.type, dims: [...t.dims] });
  return out;
}
