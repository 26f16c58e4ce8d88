/**
 * Hand-built ONNX graphs whose rewrite output is pinned next to REWRITE_VERSION (rewrite-pin.json,
 * checked by rewrite-pin.test.ts, written by scripts/pin-rewrite.ts). Built here with onnx-proto
 * and fixed weights, so the pin depends on the rewrite (and the protobuf encoder) only, not on
 * model-gen: one fp32 block with each pattern the rewrite treats apart (a branch before onnxruntime's
 * SkipLayerNormalization chain, a plain MatMul, the q8 MatMulInteger chain, a Gemm head with named
 * parameters) and one fp16 block (an fp16 MatMul, an fp16 MatMulNBits feeding a Reshape).
 * Weights of 4 KiB and more go through the splice; smaller ones stay in the light model.
 */
import onnxProto from 'onnx-proto';
import { rewriteSpliced } from '../proto-splice.js';

const { onnx } = onnxProto;
const DT = onnx.TensorProto.DataType;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

/** Deterministic bytes (a 32-bit LCG): the values do not matter to the rewrite, only that they are fixed. */
function fixedBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

const init = (name: string, dataType: number, dims: number[], elemBytes: number, seed: number): TensorProto => ({
  name,
  dataType,
  dims,
  rawData: fixedBytes(dims.reduce((a, b) => a * b, 1) * elemBytes, seed),
});

const vi = (name: string, elemType: number, dims: Array<number | string>) => ({
  name,
  type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});

const INT = onnx.AttributeProto.AttributeType.INT;

function model(nodes: NodeProto[], inits: TensorProto[], inputs: ReturnType<typeof vi>[], outputs: ReturnType<typeof vi>[]): Uint8Array {
  return onnx.ModelProto.encode(
    onnx.ModelProto.fromObject({
      irVersion: 8,
      producerName: 'tensorpeft-pin',
      opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
      graph: { name: 'pin', node: nodes, initializer: inits, input: inputs, output: outputs },
    }),
  ).finish();
}

const H = 32;

/** fp32: q (→ Add bias → Add residual → LayerNormalization), up (plain), down (q8), classifier (Gemm head). */
function fp32Block(): Uint8Array {
  const F = DT.FLOAT;
  const nodes: NodeProto[] = [
    { name: '/enc/layer.0/attn/q/MatMul', opType: 'MatMul', input: ['x', 'enc.q.w'], output: ['q'] },
    { name: '/enc/layer.0/attn/q/Add', opType: 'Add', input: ['q', 'enc.q.b'], output: ['qb'] },
    { name: '/enc/layer.0/attn/Add', opType: 'Add', input: ['qb', 'x'], output: ['r'] },
    { name: '/enc/layer.0/attn/LayerNorm', opType: 'LayerNormalization', input: ['r', 'ln.g', 'ln.b'], output: ['ln'], attribute: [{ name: 'axis', type: INT, i: -1 }] },
    { name: '/enc/layer.0/ffn/up/MatMul', opType: 'MatMul', input: ['ln', 'enc.up.w'], output: ['u'] },
    { name: '/enc/layer.0/ffn/down/DynamicQuantizeLinear', opType: 'DynamicQuantizeLinear', input: ['u'], output: ['uq', 'us', 'uz'] },
    { name: '/enc/layer.0/ffn/down/MatMulInteger', opType: 'MatMulInteger', input: ['uq', 'enc.down.w_q8', 'uz', 'enc.down.zp'], output: ['mi'] },
    { name: '/enc/layer.0/ffn/down/Cast', opType: 'Cast', input: ['mi'], output: ['mc'], attribute: [{ name: 'to', type: INT, i: F }] },
    { name: '/enc/layer.0/ffn/down/Mul', opType: 'Mul', input: ['mc', 'us'], output: ['down'] },
    { name: '/classifier/Gemm', opType: 'Gemm', input: ['down', 'classifier.weight', 'classifier.bias'], output: ['logits'], attribute: [{ name: 'transB', type: INT, i: 1 }] },
  ];
  const inits = [
    init('enc.q.w', F, [H, H], 4, 1),
    init('enc.q.b', F, [H], 4, 2),
    init('ln.g', F, [H], 4, 3),
    init('ln.b', F, [H], 4, 4),
    init('enc.up.w', F, [H, H], 4, 5),
    init('enc.down.w_q8', DT.INT8, [H, H], 1, 6),
    init('enc.down.zp', DT.INT8, [], 1, 7),
    init('classifier.weight', F, [2, H], 4, 8),
    init('classifier.bias', F, [2], 4, 9),
  ];
  return model(nodes, inits, [vi('x', F, ['batch', H])], [vi('logits', F, ['batch', 2])]);
}

/** fp16: o (fp16 MatMul), gate (fp16 MatMulNBits, 4-bit blocks of 32, feeding a Reshape). */
function fp16Block(): Uint8Array {
  const F16 = DT.FLOAT16;
  const K = 4 * H;
  const N = 4 * H;
  const nodes: NodeProto[] = [
    { name: '/model/layers.0/self_attn/o_proj/MatMul', opType: 'MatMul', input: ['x', 'o.w'], output: ['o'] },
    {
      name: '/model/layers.0/mlp/gate_proj/MatMulNBits',
      opType: 'MatMulNBits',
      domain: 'com.microsoft',
      input: ['o', 'gate.q4', 'gate.scales'],
      output: ['g'],
      attribute: [
        { name: 'K', type: INT, i: K },
        { name: 'N', type: INT, i: N },
        { name: 'bits', type: INT, i: 4 },
        { name: 'block_size', type: INT, i: 32 },
      ],
    },
    { name: '/model/layers.0/mlp/Reshape', opType: 'Reshape', input: ['g', 'shape'], output: ['y'] },
  ];
  const inits: TensorProto[] = [
    init('o.w', F16, [K, K], 2, 11),
    init('gate.q4', DT.UINT8, [N, K / 32, 16], 1, 12),
    init('gate.scales', F16, [N * (K / 32)], 2, 13),
    { name: 'shape', dataType: DT.INT64, dims: [2], int64Data: [-1, N] },
  ];
  return model(nodes, inits, [vi('x', F16, ['tokens', K])], [vi('y', F16, ['tokens', N])]);
}

/** fp32 q, k, v reading one tensor (sibling fusion, rewrite-siblings.ts), summed into the output. */
function siblingsBlock(): Uint8Array {
  const F = DT.FLOAT;
  const nodes: NodeProto[] = [
    { name: '/model/layers.0/self_attn/q_proj/MatMul', opType: 'MatMul', input: ['x', 'q.w'], output: ['q'] },
    { name: '/model/layers.0/self_attn/k_proj/MatMul', opType: 'MatMul', input: ['x', 'k.w'], output: ['k'] },
    { name: '/model/layers.0/self_attn/v_proj/MatMul', opType: 'MatMul', input: ['x', 'v.w'], output: ['v'] },
    { name: '/model/layers.0/self_attn/Add', opType: 'Add', input: ['q', 'k'], output: ['qk'] },
    { name: '/model/layers.0/self_attn/Add_1', opType: 'Add', input: ['qk', 'v'], output: ['y'] },
  ];
  const inits = [init('q.w', F, [H, H], 4, 21), init('k.w', F, [H, H], 4, 22), init('v.w', F, [H, H], 4, 23)];
  return model(nodes, inits, [vi('x', F, ['tokens', H])], [vi('y', F, ['tokens', H])]);
}

/** The pinned models and the module paths each is rewritten for. */
export function pinModels(): Array<{ name: string; bytes: Uint8Array; targets: string[] }> {
  return [
    { name: 'fp32-block', bytes: fp32Block(), targets: ['enc.layer.0.attn.q', 'enc.layer.0.ffn.up', 'enc.layer.0.ffn.down'] },
    { name: 'fp16-block', bytes: fp16Block(), targets: ['model.layers.0.self_attn.o_proj', 'model.layers.0.mlp.gate_proj'] },
  ];
}

/** SHA-256 (hex) of each pinned model's rewrite as the plugin loads it (branch mode, spliced). */
export async function pinHashes(): Promise<Record<string, string>> {
  const { createHash } = await import('node:crypto');
  const out: Record<string, string> = {};
  for (const m of pinModels()) {
    const r = rewriteSpliced(m.bytes, { targets: m.targets });
    out[m.name] = createHash('sha256').update(r.bytes).digest('hex');
    out[`${m.name}.branches`] = String(r.branches.length);
    // fp16 graphs are rewritten two ways (RewriteOptions.branchDtype): fp32 branches for CPU sessions too.
    if (m.name.startsWith('fp16')) out[`${m.name}.branch_dtype=float32`] = createHash('sha256').update(rewriteSpliced(m.bytes, { targets: m.targets, branchDtype: 'float32' }).bytes).digest('hex');
  }
  // Sibling fusion (the plugin's load-path default): q, k, v on one tensor share one pair of products.
  const qkv = ['q_proj', 'k_proj', 'v_proj'].map((x) => `model.layers.0.self_attn.${x}`);
  out['siblings-block.fuse_siblings'] = createHash('sha256').update(rewriteSpliced(siblingsBlock(), { targets: qkv, fuseSiblings: true }).bytes).digest('hex');
  return out;
}
