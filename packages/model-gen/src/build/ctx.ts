/**
 * Shared pieces of the architecture builders: deterministic parameters, the layers every
 * architecture uses (Linear as MatMul/Gemm, LayerNorm, GELU, attention) and the record of which
 * graph node implements which linear module.
 */
import { streamFor } from '@tensorpeft/core';
import { f32, GraphBuilder, i64, type TensorData } from '../onnx/graph.js';

/** float32 lowest value, which torch uses for masked attention scores (`torch.finfo(float32).min`). */
export const F32_MIN = -3.4028234663852886e38;

/** Where the graph implements one linear module (a PEFT target or a classifier head). */
export interface GraphLinear {
  /** Module path in this exported model (`encoder.layer.0.attention.self.query` for a bare BertModel). */
  path: string;
  /** The module path PEFT uses for the task model (`bert.encoder.layer.0.attention.self.query`). */
  peftPath: string;
  /** `target`: a linear of a transformer layer (in ModelShape.modules); `head`: task head (PEFT `modules_to_save`). */
  kind: 'target' | 'head';
  /** `MatMul` (nn.Linear on 3-D input; weight transposed), `Gemm` (Linear on 2-D input, or GPT-2 Conv1D). */
  op: 'MatMul' | 'Gemm';
  /** The node computing x·W: `/bert/encoder/layer.0/attention/self/query/MatMul`. */
  node: string;
  /** Its output tensor (the same name in model.onnx and model_quantized.onnx). */
  output: string;
  /** Input tensor x of the node. */
  input: string;
  /** Weight initializer name (`onnx::MatMul_12`, `classifier.weight`, `transformer.h.0.attn.c_attn.weight`). */
  weight: string;
  /**
   * Layout of that initializer: `in_out` ([in, out]: MatMul, Conv1D Gemm) or `out_in` ([out, in]:
   * Gemm transB=1, and MatMul reading it through a `Transpose` when exported without constant folding).
   */
  weightLayout: 'in_out' | 'out_in';
  /** Bias initializer, if any. For MatMul it is added by `biasNode` (`…/Add`); for Gemm it is input C. */
  bias?: string;
  biasNode?: string;
  in: number;
  out: number;
}

export type InitKind = { uniform: number } | 'ln_weight' | 'ln_bias';

/** Torch-layout parameter values ("state dict") of the exported model, by graph parameter name. */
export type StateDict = Map<string, TensorData>;

export interface CtxOptions {
  seed: number;
  /**
   * Prefix of the base model inside the exported class ('' for a bare `BertModel`, `bert` for
   * `BertForSequenceClassification`): parameters and node scopes carry it.
   */
  root: string;
  /** Prefix of the base model in the task model (`bert`, `distilbert`, `transformer`, `model`, `vit`). */
  taskRoot: string;
  /** How GPT-2's Conv1D is exported (default `Gemm`, as torch.onnx does). */
  conv1dAs?: 'Gemm' | 'MatMul';
  /**
   * Biases 0 and LayerNorm γ = 1, β = 0, as HF's `_init_weights` leaves a model built from its
   * config (and an untrained head): many parameters are then bit-identical, which torch.onnx
   * de-duplicates (see onnx/dedupe.ts). Default false.
   */
  freshInit?: boolean;
  /**
   * torch.onnx's `do_constant_folding` (default true): when false, nn.Linear on 3-D input reads its
   * `[out, in]` parameter under its state-dict name through a `Transpose` node instead of a folded,
   * anonymous `[in, out]` copy.
   */
  constantFolding?: boolean;
}

/** [rows, cols] → [cols, rows], in cache-sized blocks. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    for (let c0 = 0; c0 < cols; c0 += B) {
      const r1 = Math.min(rows, r0 + B);
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) t[c * rows + r] = a[r * cols + c]!;
    }
  }
  return t;
}

/** `bert.encoder.layer.0.attention.self.query` → `/bert/encoder/layer.0/attention/self/query`. */
export function scopeOf(path: string): string {
  if (path === '') return '';
  const out: string[] = [];
  for (const p of path.split('.')) {
    if (/^\d+$/.test(p) && out.length) out[out.length - 1] += `.${p}`;
    else out.push(p);
  }
  return `/${out.join('/')}`;
}

export class Ctx {
  readonly b: GraphBuilder;
  readonly seed: number;
  readonly root: string;
  readonly taskRoot: string;
  readonly state: StateDict = new Map();
  readonly linears: GraphLinear[] = [];
  readonly conv1dAs: 'Gemm' | 'MatMul';
  readonly freshInit: boolean;
  readonly constantFolding: boolean;

  constructor(name: string, o: CtxOptions) {
    this.b = new GraphBuilder(name);
    this.seed = o.seed;
    this.root = o.root;
    this.taskRoot = o.taskRoot;
    this.conv1dAs = o.conv1dAs ?? 'Gemm';
    this.freshInit = o.freshInit ?? false;
    this.constantFolding = o.constantFolding ?? true;
  }

  /** Graph path of a base-model-relative path (`encoder.layer.0` → `bert.encoder.layer.0`). */
  p(local: string): string {
    return this.root ? `${this.root}.${local}` : local;
  }

  /** PEFT (task-model) path of a graph path. */
  peftPath(path: string): string {
    return this.root === '' && this.taskRoot !== '' ? `${this.taskRoot}.${path}` : path;
  }

  /**
   * Deterministic values of one parameter, drawn from core's PRNG stream keyed by the task-model
   * parameter name, so a bare model and its task model share their base weights.
   */
  values(path: string, dims: number[], init: InitKind): Float32Array {
    const n = dims.reduce((a, b) => a * b, 1);
    const r = streamFor(this.seed, this.peftPath(path));
    const out = new Float32Array(n);
    if (this.freshInit && (init === 'ln_weight' || init === 'ln_bias' || path.endsWith('.bias'))) {
      // HF `_init_weights`: LayerNorm γ = 1, β = 0; Linear/Conv1D biases 0 (weights stay random).
      if (init === 'ln_weight') out.fill(1);
    } else if (init === 'ln_weight') for (let i = 0; i < n; i++) out[i] = 1 + 0.2 * (r.uniform() - 0.5);
    else if (init === 'ln_bias') for (let i = 0; i < n; i++) out[i] = 0.2 * (r.uniform() - 0.5);
    else {
      const a = 2 * init.uniform;
      for (let i = 0; i < n; i++) out[i] = a * (r.uniform() - 0.5);
    }
    this.state.set(path, f32(dims, out));
    return out;
  }

  /** A parameter stored under its own name (biases, LayerNorm, embeddings, Gemm weights). */
  param(path: string, dims: number[], init: InitKind): string {
    return this.b.param(path, f32(dims, this.values(path, dims, init)));
  }

  // ---- layers ---------------------------------------------------------------------------------

  /**
   * nn.Linear on a 3-D input, exported as `MatMul` with the weight transposed to [in, out] under an
   * anonymous name, then `Add(bias, ·)`. Init as torch's default: U(−1/√in, 1/√in).
   */
  linear(x: string, path: string, inF: number, outF: number, opts: { bias?: boolean; kind?: 'target' | 'head' } = {}): string {
    const bound = 1 / Math.sqrt(inF);
    const w = this.values(`${path}.weight`, [outF, inF], { uniform: bound });
    const scope = scopeOf(path);
    // Without constant folding the exporter keeps `W.t()` as a Transpose of the [out, in] parameter.
    const wName = this.constantFolding ? this.b.anonParam('MatMul', f32([inF, outF], transpose(w, outF, inF))) : this.b.param(`${path}.weight`, f32([outF, inF], w));
    const wIn = this.constantFolding ? wName : this.b.node('Transpose', scope, [wName], { perm: [1, 0] });
    const mm = this.b.node('MatMul', scope, [x, wIn]);
    const rec: GraphLinear = {
      path,
      peftPath: this.peftPath(path),
      kind: opts.kind ?? 'target',
      op: 'MatMul',
      node: this.b.lastNode,
      output: mm,
      input: x,
      weight: wName,
      weightLayout: this.constantFolding ? 'in_out' : 'out_in',
      in: inF,
      out: outF,
    };
    this.linears.push(rec);
    if (opts.bias === false) return mm;
    const bias = this.param(`${path}.bias`, [outF], { uniform: bound });
    const y = this.b.node('Add', scope, [bias, mm]);
    rec.bias = bias;
    rec.biasNode = this.b.lastNode;
    return y;
  }

  /** nn.Linear on a 2-D input ([batch, in]), exported as `Gemm(x, W, b, transB=1)` with W = `<path>.weight` [out, in]. */
  gemm(x: string, path: string, inF: number, outF: number, kind: 'target' | 'head' = 'head'): string {
    const bound = 1 / Math.sqrt(inF);
    const w = this.param(`${path}.weight`, [outF, inF], { uniform: bound });
    const bias = this.param(`${path}.bias`, [outF], { uniform: bound });
    const y = this.b.node('Gemm', scopeOf(path), [x, w, bias], { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 });
    this.linears.push({
      path,
      peftPath: this.peftPath(path),
      kind,
      op: 'Gemm',
      node: this.b.lastNode,
      output: y,
      input: x,
      weight: w,
      weightLayout: 'out_in',
      bias,
      in: inF,
      out: outF,
    });
    return y;
  }

  /**
   * GPT-2 `Conv1D` (`addmm(b, x.view(-1, in), W)` with W stored [in, out] under its own name).
   * `Gemm` (default): as torch.onnx exports `addmm`, Reshape → `Gemm(x2d, W, b)` → Reshape back to
   * [batch, seq, out]. `MatMul`: `MatMul(x, W)` then `Add(bias, ·)` (the layout after graph tools
   * that turn 2-D Gemms into MatMul + Add; its q8 variant quantizes these weights).
   */
  conv1d(x: string, path: string, inF: number, outF: number): string {
    const bound = 1 / Math.sqrt(inF);
    const w = this.param(`${path}.weight`, [inF, outF], { uniform: bound });
    const s = scopeOf(path);
    const b = this.b;
    if (this.conv1dAs === 'MatMul') {
      const mm = b.node('MatMul', s, [x, w]);
      const mmNode = b.lastNode;
      const bias = this.param(`${path}.bias`, [outF], { uniform: bound });
      const y = b.node('Add', s, [bias, mm]);
      this.linears.push({ path, peftPath: this.peftPath(path), kind: 'target', op: 'MatMul', node: mmNode, output: mm, input: x, weight: w, weightLayout: 'in_out', bias, biasNode: b.lastNode, in: inF, out: outF });
      return y;
    }
    const bias = this.param(`${path}.bias`, [outF], { uniform: bound });
    const shape = b.node('Shape', s, [x]);
    const lead = b.node('Slice', s, [shape, b.constI64(s, [0]), b.constI64(s, [2])]);
    const outShape = b.node('Concat', s, [lead, b.constI64(s, [outF])], { axis: 0 });
    const x2 = b.node('Reshape', s, [x, b.constI64(s, [-1, inF])]);
    const g = b.node('Gemm', s, [x2, w, bias], { alpha: { float: 1 }, beta: { float: 1 } });
    const gNode = b.lastNode;
    const y = b.node('Reshape', s, [g, outShape]);
    this.linears.push({ path, peftPath: this.peftPath(path), kind: 'target', op: 'Gemm', node: gNode, output: g, input: x2, weight: w, weightLayout: 'in_out', bias, in: inF, out: outF });
    return y;
  }

  layerNorm(x: string, path: string, h: number, eps: number): string {
    const w = this.param(`${path}.weight`, [h], 'ln_weight');
    const bias = this.param(`${path}.bias`, [h], 'ln_bias');
    return this.b.node('LayerNormalization', scopeOf(path), [x, w, bias], { axis: -1, epsilon: { float: eps } });
  }

  /** LlamaRMSNorm: weight · x / sqrt(mean(x²) + eps), decomposed as torch exports it. */
  rmsNorm(x: string, path: string, h: number, eps: number): string {
    const s = scopeOf(path);
    const b = this.b;
    const w = this.param(`${path}.weight`, [h], 'ln_weight');
    const sq = b.node('Pow', s, [x, b.constF32(s, 2)]);
    const mean = b.node('ReduceMean', s, [sq], { axes: [-1], keepdims: 1 });
    const v = b.node('Add', s, [mean, b.constF32(s, eps)]);
    const r = b.node('Sqrt', s, [v]);
    const inv = b.node('Div', s, [b.constF32(s, 1), r]);
    const y = b.node('Mul', s, [x, inv]);
    return b.node('Mul', s, [w, y]);
  }

  embedding(ids: string, path: string, v: number, h: number, std = 1): string {
    const w = this.param(`${path}.weight`, [v, h], { uniform: std * Math.sqrt(3) });
    return this.b.node('Gather', scopeOf(path), [w, ids], { axis: 0 });
  }

  /** Exact GELU as torch exports it below opset 20: x · 0.5 · (1 + erf(x / √2)). */
  gelu(x: string, scope: string): string {
    const b = this.b;
    const d = b.node('Div', scope, [x, b.constF32(scope, Math.SQRT2)]);
    const e = b.node('Erf', scope, [d]);
    const a = b.node('Add', scope, [e, b.constF32(scope, 1)]);
    const m = b.node('Mul', scope, [x, a]);
    return b.node('Mul', scope, [m, b.constF32(scope, 0.5)]);
  }

  /** GPT-2 `gelu_new`: 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))). */
  geluNew(x: string, scope: string): string {
    const b = this.b;
    const half = b.node('Mul', scope, [b.constF32(scope, 0.5), x]);
    const cube = b.node('Pow', scope, [x, b.constF32(scope, 3)]);
    const c = b.node('Mul', scope, [b.constF32(scope, 0.044715), cube]);
    const inner = b.node('Add', scope, [x, c]);
    const t = b.node('Tanh', scope, [b.node('Mul', scope, [b.constF32(scope, Math.sqrt(2 / Math.PI)), inner])]);
    const one = b.node('Add', scope, [b.constF32(scope, 1), t]);
    return b.node('Mul', scope, [half, one]);
  }

  /** [B, S, nh·hd] → [B, nh, S, hd] (or [B, nh, hd, S] with `keyT`). */
  splitHeads(x: string, scope: string, nh: number, hd: number, keyT = false): string {
    const r = this.b.node('Reshape', scope, [x, this.b.constI64(scope, [0, 0, nh, hd])]);
    return this.b.node('Transpose', scope, [r], { perm: keyT ? [0, 2, 3, 1] : [0, 2, 1, 3] });
  }

  /** [B, nh, S, hd] → [B, S, nh·hd]. */
  mergeHeads(x: string, scope: string, h: number): string {
    const t = this.b.node('Transpose', scope, [x], { perm: [0, 2, 1, 3] });
    return this.b.node('Reshape', scope, [t, this.b.constI64(scope, [0, 0, h])]);
  }

  /** softmax(q·kᵀ / √hd + bias) · v with kT already [B, nh, hd, T]. */
  attend(q: string, kT: string, v: string, bias: string, scope: string, hd: number): string {
    const b = this.b;
    const s = b.node('MatMul', scope, [q, kT]);
    const sc = b.node('Div', scope, [s, b.constF32(scope, Math.sqrt(hd))]);
    const masked = b.node('Add', scope, [sc, bias]);
    const p = b.node('Softmax', scope, [masked], { axis: -1 });
    return b.node('MatMul', scope, [p, v]);
  }

  /** Additive padding mask [B, 1, 1, T] = (1 − mask) · finfo.min, as BERT's get_extended_attention_mask. */
  paddingBias(mask: string, scope: string): string {
    const b = this.b;
    const u = b.node('Unsqueeze', scope, [mask, b.constI64(scope, [1, 2])]);
    const c = b.node('Cast', scope, [u], { to: 1 });
    const inv = b.node('Sub', scope, [b.constF32(scope, 1), c]);
    return b.node('Mul', scope, [inv, b.constF32(scope, F32_MIN)]);
  }

  /**
   * Causal + padding bias [B, 1, S, T] for decoders with a KV cache: query i (absolute position
   * T − S + i) sees key j iff j ≤ T − S + i and attention_mask[b, j] = 1; masked scores get
   * finfo.min (never −inf, so a fully masked row stays finite).
   */
  causalBias(inputIds: string, mask: string, scope: string): string {
    const b = this.b;
    const scalar = (t: string, i: number): string => b.node('Gather', scope, [b.node('Shape', scope, [t]), b.constant(scope, i64([], [i]))], { axis: 0 });
    const S = scalar(inputIds, 1);
    const T = scalar(mask, 1);
    const P = b.node('Sub', scope, [T, S]);
    const one = b.constant(scope, i64([], [1]));
    const kpos = b.node('Range', scope, [b.constant(scope, i64([], [0])), T, one]);
    const qpos = b.node('Range', scope, [P, T, one]);
    const qcol = b.node('Unsqueeze', scope, [qpos, b.constI64(scope, [1])]);
    const causal = b.node('LessOrEqual', scope, [kpos, qcol]);
    const pad = b.node('Cast', scope, [b.node('Unsqueeze', scope, [mask, b.constI64(scope, [1, 2])])], { to: 9 });
    const allowed = b.node('And', scope, [causal, pad]);
    return b.node('Where', scope, [allowed, b.constF32(scope, 0), b.constF32(scope, F32_MIN)]);
  }

  /**
   * Make `t` (the output of the last node added) the graph output `name`: the node writes `name`
   * directly, as in torch exports where the last node produces the named output.
   */
  finish(t: string, name: string, dims: Array<number | string>): void {
    const last = this.b.graph.nodes[this.b.graph.nodes.length - 1]!;
    if (last.outputs[0] !== t) throw new Error(`finish: ${t} is not the output of the last node`);
    last.outputs[0] = name;
    for (const l of this.linears) if (l.output === t) l.output = name;
    this.b.output(name, 'float32', dims);
  }

  /** x[:, 0, :] (first token), as torch exports `hidden[:, 0]`. */
  firstToken(x: string, scope: string): string {
    return this.b.node('Gather', scope, [x, this.b.constant(scope, i64([], [0]))], { axis: 1 });
  }
}
