/**
 * 4-bit weight-only variants, as transformers.js' quantization script makes them:
 *
 * - `q4` (`model_q4.onnx`): onnxruntime's `MatMulNBitsQuantizer` (block 32, symmetric — the script's
 *   defaults): every MatMul with a constant 2-D float weight B [K, N] becomes
 *   `MatMulNBits(A, <B>_Q4, <B>_scales)` (com.microsoft, node `<MatMul>_Q4`, attributes K, N,
 *   bits = 4, block_size = 32), writing the MatMul's output name. Per column n and block b of 32
 *   rows, MLAS's symmetric rule: m = the block's value of largest magnitude (with its sign),
 *   scale = m / −8, code = clamp(round(v / scale) + 8, 0, 15) (no zero_points input: 8 is implied);
 *   two codes per byte, the even row in the low nibble; `<B>_Q4` is uint8 [N, K/32, 16],
 *   `<B>_scales` float [N · K/32].
 * - `q4f16`: `q4`, then the fp16 conversion (float16.ts): fp16 activations and scales.
 * - `bnb4` (`model_bnb4.onnx`): onnxruntime's `MatMulBnb4Quantizer` (block 64, NF4 — the script's
 *   defaults): `MatMulBnb4(A, <B>_Bnb4, <B>_absmax)` (node `<MatMul>_Bnb4`, attributes K, N,
 *   block_size = 64, quant_type = 1), on Bᵀ [N, K] flattened row-major in blocks of 64: absmax per
 *   block, each value / absmax rounded to the nearest NF4 level, two codes per byte, the first in
 *   the high nibble.
 * Gemm (heads, GPT-2 Conv1D as exported) and Gather stay float, as those quantizers only take MatMul.
 */
import type { Graph, GraphNode, TensorData } from './graph.js';

export const Q4_BLOCK = 32;
export const BNB4_BLOCK = 64;

/** bitsandbytes' NF4 levels (normal-float quantiles, code 0 … 15). */
export const NF4 = [
  -1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1,
];

/** MatMulNBits' symmetric 4-bit blocks of a [K, N] weight (K a multiple of the block, as in every model here). */
export function quantizeQ4(w: TensorData, block = Q4_BLOCK): { packed: Uint8Array; scales: Float32Array; K: number; N: number } {
  const [K, N] = w.dims as [number, number];
  if (K % block !== 0) throw new Error(`q4: K = ${K} is not a multiple of the block size ${block}`);
  const d = w.data as Float32Array;
  const kb = K / block;
  const blob = block / 2;
  const packed = new Uint8Array(N * kb * blob);
  const scales = new Float32Array(N * kb);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < kb; b++) {
      let m = 0;
      for (let j = 0; j < block; j++) {
        const v = d[(b * block + j) * N + n]!;
        if (Math.abs(v) > Math.abs(m)) m = v;
      }
      const scale = Math.fround(m / -8);
      scales[n * kb + b] = scale;
      const inv = scale === 0 ? 0 : Math.fround(1 / scale);
      for (let j = 0; j < block; j++) {
        const x = Math.fround(d[(b * block + j) * N + n]! * inv);
        // std::round: halves away from zero.
        const r = Math.sign(x) * Math.round(Math.abs(x));
        const q = Math.min(15, Math.max(0, r + 8));
        const at = (n * kb + b) * blob + (j >> 1);
        packed[at] = packed[at]! | (j & 1 ? q << 4 : q);
      }
    }
  }
  return { packed, scales, K, N };
}

function nearestNf4(x: number): number {
  let best = 0;
  for (let c = 1; c < 16; c++) if (Math.abs(NF4[c]! - x) < Math.abs(NF4[best]! - x)) best = c;
  return best;
}

/** MatMulBnb4's NF4 blocks of a [K, N] weight (quantized as Bᵀ [N, K], flattened). */
export function quantizeBnb4(w: TensorData, block = BNB4_BLOCK): { packed: Uint8Array; absmax: Float32Array; K: number; N: number } {
  const [K, N] = w.dims as [number, number];
  const d = w.data as Float32Array;
  const total = K * N;
  const nb = Math.ceil(total / block);
  const absmax = new Float32Array(nb);
  const packed = new Uint8Array(Math.ceil(total / 2));
  const at = (i: number): number => d[(i % K) * N + Math.floor(i / K)]!; // Bᵀ[n, k] = B[k, n], i = n·K + k
  for (let b = 0; b < nb; b++) {
    const end = Math.min(total, (b + 1) * block);
    let a = 0;
    for (let i = b * block; i < end; i++) a = Math.max(a, Math.abs(at(i)));
    absmax[b] = a;
    const inv = a === 0 ? 0 : 1 / a;
    for (let i = b * block; i < end; i++) {
      const q = nearestNf4(Math.fround(at(i) * inv));
      packed[i >> 1] = packed[i >> 1]! | (i & 1 ? q : q << 4);
    }
  }
  return { packed, absmax, K, N };
}

/** Replace every MatMul on a constant 2-D float weight by `make`'s nodes; other nodes and tensors unchanged. */
function replaceMatMuls(g: Graph, make: (n: GraphNode, w: string, t: TensorData, add: (name: string, t: TensorData) => void) => GraphNode): Graph {
  const initializers = new Map(g.initializers);
  const nodes: GraphNode[] = [];
  const replaced = new Set<string>();
  const add = (name: string, t: TensorData): void => void initializers.set(name, t);
  for (const n of g.nodes) {
    const w = n.inputs[1] ?? '';
    const t = g.initializers.get(w);
    if (n.op === 'MatMul' && t && t.dtype === 'float32' && t.dims.length === 2) {
      nodes.push(make(n, w, t, add));
      replaced.add(w);
      continue;
    }
    nodes.push(n);
  }
  const stillUsed = new Set(nodes.flatMap((n) => n.inputs));
  for (const w of replaced) if (!stillUsed.has(w)) initializers.delete(w);
  const extraOpsets = [...(g.extraOpsets ?? []).filter((o) => o.domain !== 'com.microsoft'), { domain: 'com.microsoft', version: 1 }];
  return { ...g, nodes, initializers, extraOpsets };
}

/** `model_q4.onnx`'s graph (see the module comment). */
export function quantizeQ4Graph(g: Graph): Graph {
  return replaceMatMuls(g, (n, w, t, add) => {
    const { packed, scales, K, N } = quantizeQ4(t);
    add(`${w}_Q4`, { dtype: 'uint8', dims: [N, K / Q4_BLOCK, Q4_BLOCK / 2], data: packed });
    add(`${w}_scales`, { dtype: 'float32', dims: [N * (K / Q4_BLOCK)], data: scales });
    return { op: 'MatMulNBits', name: `${n.name}_Q4`, domain: 'com.microsoft', inputs: [n.inputs[0]!, `${w}_Q4`, `${w}_scales`], outputs: [...n.outputs], attrs: { K, N, bits: 4, block_size: Q4_BLOCK } };
  });
}

/** `model_bnb4.onnx`'s graph (see the module comment). */
export function quantizeBnb4Graph(g: Graph): Graph {
  return replaceMatMuls(g, (n, w, t, add) => {
    const { packed, absmax, K, N } = quantizeBnb4(t);
    add(`${w}_Bnb4`, { dtype: 'uint8', dims: [packed.length], data: packed });
    add(`${w}_absmax`, { dtype: 'float32', dims: [absmax.length], data: absmax });
    return { op: 'MatMulBnb4', name: `${n.name}_Bnb4`, domain: 'com.microsoft', inputs: [n.inputs[0]!, `${w}_Bnb4`, `${w}_absmax`], outputs: [...n.outputs], attrs: { K, N, block_size: BNB4_BLOCK, quant_type: 1 } };
  });
}
