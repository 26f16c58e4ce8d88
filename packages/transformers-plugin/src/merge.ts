/**
 * Offline merge (the independent reference for `verify`): the fp32 ONNX model with each targeted
 * weight initializer replaced by `W0 + ΔW` (ΔW = s · B′ A′ᵀ, `[m, n]`, written in the
 * initializer's own layout: `[in, out]` for MatMul / Conv1D Gemm, `[out, in]` for Gemm transB=1)
 * and each `modules_to_save` tensor replacing its initializer. No graph inputs are added.
 */
import type { ModuleUpdate, TensorMap } from '@tensorpeft/core';
import { ShapeMismatchError } from '@tensorpeft/core';
import onnxProto from 'onnx-proto';
import { PluginError } from './errors.js';
import { isExternal } from './external-data.js';
import { findLinears, num, pathsMatch } from './rewrite.js';

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;

function floatsOf(t: TensorProto): Float32Array {
  // The offline merge works on the bytes of one .onnx; external-data weights are not in them (a
  // silent empty read would "merge" into zeros).
  if (isExternal(t)) throw new PluginError(`offline merge: weight ${t.name} is ONNX external data; mergeModel needs a model with inline initializers`);
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    return new Float32Array(copy.buffer);
  }
  return Float32Array.from(t.floatData ?? []);
}

function setFloats(t: TensorProto, data: Float32Array): void {
  t.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  t.floatData = [];
}

function peftParamName(key: string): string {
  const k = key.startsWith('base_model.model.') ? key.slice('base_model.model.'.length) : key;
  return k.replace('.modules_to_save.default.', '.');
}

/** Merge `updates` (and `extras`, PEFT `modules_to_save` tensors by key) into fp32 model bytes. */
export function mergeModel(bytes: Uint8Array, updates: readonly ModuleUpdate[], extras: TensorMap = new Map()): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph!;
  const inits = new Map<string, TensorProto>();
  for (const t of g.initializer ?? []) inits.set(t.name!, t);
  const linears = findLinears(model).filter((l) => l.op !== 'MatMulInteger');
  for (const u of updates) {
    const hits = linears.filter((l) => pathsMatch(u.path, l.graphPath));
    if (hits.length !== 1) throw new PluginError(`merge: module ${u.path} matches ${hits.length} linears of the model`);
    const l = hits[0]!;
    if (l.n !== u.n || l.m !== u.m) throw new ShapeMismatchError(`merge: module ${u.path} is [${u.m}, ${u.n}] in the adapter but [${l.m}, ${l.n}] in the model`);
    const t = inits.get(l.weight)!;
    const w = floatsOf(t);
    const { n, m, rho, s, A, B } = u;
    for (let o = 0; o < m; o++) {
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let r = 0; r < rho; r++) acc += B[o * rho + r]! * A[i * rho + r]!;
        const idx = l.weightLayout === 'in_out' ? i * m + o : o * n + i;
        w[idx] = w[idx]! + s * acc;
      }
    }
    setFloats(t, w);
  }
  for (const [key, tensor] of extras) {
    const name = peftParamName(key);
    const hits = [...inits.keys()].filter((k) => pathsMatch(name, k));
    if (hits.length !== 1) throw new PluginError(`merge: modules_to_save tensor ${name} matches ${hits.length} initializers`);
    const t = inits.get(hits[0]!)!;
    const dims = (t.dims ?? []).map(num);
    if (dims.length !== tensor.shape.length || dims.some((d, i) => d !== tensor.shape[i])) {
      throw new ShapeMismatchError(`merge: ${name} is [${tensor.shape.join(', ')}] in the adapter but [${dims.join(', ')}] in the model`);
    }
    setFloats(t, Float32Array.from(tensor.data));
  }
  return onnx.ModelProto.encode(model).finish();
}
