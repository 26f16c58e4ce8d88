/**
 * An independent forward pass in plain JavaScript (float64) over the torch-layout weights of a
 * generated model, written from the Hugging Face modeling code (not from the graph builder), to
 * check that the ONNX graphs compute what they claim.
 */
import type { StateDict } from '../build/ctx.js';

type Vec = Float64Array;
const F32_MIN = -3.4028234663852886e38;

export interface RefDims {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  inter: number;
  eps: number;
  ropeTheta?: number;
  patch?: number;
  channels?: number;
  image?: number;
}

class W {
  constructor(private readonly sd: StateDict) {}
  get(name: string): Float32Array {
    const t = this.sd.get(name);
    if (!t) throw new Error(`reference: no weight ${name}`);
    return t.data as Float32Array;
  }
  has(name: string): boolean {
    return this.sd.has(name);
  }
}

/** y[r] = x[r] · Wᵀ + b with torch Linear weight [out, in]. */
function linear(x: Vec, rows: number, inF: number, w: Float32Array, b: Float32Array | undefined, outF: number): Vec {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b ? b[o]! : 0;
      for (let i = 0; i < inF; i++) s += x[r * inF + i]! * w[o * inF + i]!;
      y[r * outF + o] = s;
    }
  }
  return y;
}

/** GPT-2 Conv1D: y = x · W + b with W [in, out]. */
function conv1d(x: Vec, rows: number, inF: number, w: Float32Array, b: Float32Array, outF: number): Vec {
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let s = b[o]!;
      for (let i = 0; i < inF; i++) s += x[r * inF + i]! * w[i * outF + o]!;
      y[r * outF + o] = s;
    }
  }
  return y;
}

function layerNorm(x: Vec, rows: number, h: number, g: Float32Array, b: Float32Array, eps: number): Vec {
  const y = new Float64Array(rows * h);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let i = 0; i < h; i++) m += x[r * h + i]!;
    m /= h;
    let v = 0;
    for (let i = 0; i < h; i++) v += (x[r * h + i]! - m) ** 2;
    v /= h;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < h; i++) y[r * h + i] = (x[r * h + i]! - m) * inv * g[i]! + b[i]!;
  }
  return y;
}

function rmsNorm(x: Vec, rows: number, h: number, g: Float32Array, eps: number): Vec {
  const y = new Float64Array(rows * h);
  for (let r = 0; r < rows; r++) {
    let v = 0;
    for (let i = 0; i < h; i++) v += x[r * h + i]! ** 2;
    const inv = 1 / Math.sqrt(v / h + eps);
    for (let i = 0; i < h; i++) y[r * h + i] = g[i]! * (x[r * h + i]! * inv);
  }
  return y;
}

/** erf via erfc's Chebyshev fit (Numerical Recipes), |relative error| < 1.2e-7. */
function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

const gelu = (v: number): number => 0.5 * v * (1 + erf(v / Math.SQRT2));
const geluNew = (v: number): number => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const map = (x: Vec, f: (v: number) => number): Vec => x.map(f);
const add = (a: Vec, b: Vec): Vec => a.map((v, i) => v + b[i]!);

/**
 * Multi-head attention of one sequence: q [S, nh·hd], k/v [T, nkv·hd]; `allowed(i, j)` says whether
 * query i sees key j (masked scores become float32's lowest value, as in the graph).
 */
function attention(q: Vec, k: Vec, v: Vec, S: number, T: number, nh: number, nkv: number, hd: number, allowed: (i: number, j: number) => boolean): Vec {
  const out = new Float64Array(S * nh * hd);
  const rep = nh / nkv;
  const sc = new Float64Array(T);
  for (let h = 0; h < nh; h++) {
    const kh = Math.floor(h / rep);
    for (let i = 0; i < S; i++) {
      let mx = -Infinity;
      for (let j = 0; j < T; j++) {
        let s = 0;
        for (let e = 0; e < hd; e++) s += q[i * nh * hd + h * hd + e]! * k[j * nkv * hd + kh * hd + e]!;
        sc[j] = allowed(i, j) ? s / Math.sqrt(hd) : F32_MIN;
        mx = Math.max(mx, sc[j]!);
      }
      let z = 0;
      for (let j = 0; j < T; j++) z += (sc[j] = Math.exp(sc[j]! - mx));
      for (let e = 0; e < hd; e++) {
        let s = 0;
        for (let j = 0; j < T; j++) s += (sc[j]! / z) * v[j * nkv * hd + kh * hd + e]!;
        out[i * nh * hd + h * hd + e] = s;
      }
    }
  }
  return out;
}

function rows(table: Float32Array, h: number, ids: number[]): Vec {
  const y = new Float64Array(ids.length * h);
  ids.forEach((id, r) => {
    for (let i = 0; i < h; i++) y[r * h + i] = table[id * h + i]!;
  });
  return y;
}

export interface TextInputs {
  ids: number[];
  mask: number[];
  tokenTypes?: number[];
  positions?: number[];
}

/** BERT / RoBERTa / DistilBERT (post-LN encoders). `root` is '' for bare models. */
export function encoderForward(sd: StateDict, arch: 'bert' | 'roberta' | 'distilbert', d: RefDims, root: string, inp: TextInputs): { hidden: Vec; first: Vec } {
  const w = new W(sd);
  const p = (s: string): string => (root ? `${root}.${s}` : s);
  const H = d.hidden;
  const S = inp.ids.length;
  let pos: number[];
  if (arch === 'roberta') {
    let c = 0;
    pos = inp.ids.map((id) => (id !== 1 ? ++c + 1 : 1));
  } else pos = inp.ids.map((_, i) => i);
  let h = add(rows(w.get(p('embeddings.word_embeddings.weight')), H, inp.ids), rows(w.get(p('embeddings.position_embeddings.weight')), H, pos));
  if (arch !== 'distilbert') h = add(h, rows(w.get(p('embeddings.token_type_embeddings.weight')), H, inp.tokenTypes ?? inp.ids.map(() => 0)));
  h = layerNorm(h, S, H, w.get(p('embeddings.LayerNorm.weight')), w.get(p('embeddings.LayerNorm.bias')), d.eps);
  const names =
    arch === 'distilbert'
      ? { L: 'transformer.layer', q: 'attention.q_lin', k: 'attention.k_lin', v: 'attention.v_lin', o: 'attention.out_lin', ln1: 'sa_layer_norm', f1: 'ffn.lin1', f2: 'ffn.lin2', ln2: 'output_layer_norm' }
      : { L: 'encoder.layer', q: 'attention.self.query', k: 'attention.self.key', v: 'attention.self.value', o: 'attention.output.dense', ln1: 'attention.output.LayerNorm', f1: 'intermediate.dense', f2: 'output.dense', ln2: 'output.LayerNorm' };
  for (let l = 0; l < d.layers; l++) {
    const n = (s: string): string => p(`${names.L}.${l}.${s}`);
    const lin = (x: Vec, m: string, i: number, o: number): Vec => linear(x, S, i, w.get(n(`${m}.weight`)), w.get(n(`${m}.bias`)), o);
    const a = attention(lin(h, names.q, H, H), lin(h, names.k, H, H), lin(h, names.v, H, H), S, S, d.heads, d.heads, H / d.heads, (_i, j) => inp.mask[j] === 1);
    h = layerNorm(add(lin(a, names.o, H, H), h), S, H, w.get(n(`${names.ln1}.weight`)), w.get(n(`${names.ln1}.bias`)), d.eps);
    const f = lin(map(lin(h, names.f1, H, d.inter), gelu), names.f2, d.inter, H);
    h = layerNorm(add(f, h), S, H, w.get(n(`${names.ln2}.weight`)), w.get(n(`${names.ln2}.bias`)), d.eps);
  }
  return { hidden: h, first: h.slice(0, H) };
}

/** The sequence-classification head on the first token's hidden state. */
export function encoderHead(sd: StateDict, arch: 'bert' | 'roberta' | 'distilbert' | 'vit', H: number, numLabels: number, first: Vec): Vec {
  const w = new W(sd);
  const lin = (x: Vec, m: string, o: number): Vec => linear(x, 1, H, w.get(`${m}.weight`), w.get(`${m}.bias`), o);
  switch (arch) {
    case 'bert':
      return lin(map(lin(first, 'bert.pooler.dense', H), Math.tanh), 'classifier', numLabels);
    case 'roberta':
      return lin(map(lin(first, 'classifier.dense', H), Math.tanh), 'classifier.out_proj', numLabels);
    case 'distilbert':
      return lin(map(lin(first, 'pre_classifier', H), (v) => Math.max(0, v)), 'classifier', numLabels);
    case 'vit':
      return lin(first, 'classifier', numLabels);
  }
}

/** GPT-2 / LLaMA over a whole sequence (no cache): hidden states after the final norm and, with a head, logits. */
export function decoderForward(sd: StateDict, arch: 'gpt2' | 'llama', d: RefDims, root: string, inp: TextInputs & { positions: number[] }, vocab?: number): { hidden: Vec; logits?: Vec } {
  const w = new W(sd);
  const p = (s: string): string => (root ? `${root}.${s}` : s);
  const H = d.hidden;
  const S = inp.ids.length;
  const hd = H / d.heads;
  const allowed = (i: number, j: number): boolean => j <= i && inp.mask[j] === 1;
  let h: Vec;
  if (arch === 'gpt2') {
    h = add(rows(w.get(p('wte.weight')), H, inp.ids), rows(w.get(p('wpe.weight')), H, inp.positions));
    for (let l = 0; l < d.layers; l++) {
      const n = (s: string): string => p(`h.${l}.${s}`);
      const c = (x: Vec, m: string, i: number, o: number): Vec => conv1d(x, S, i, w.get(n(`${m}.weight`)), w.get(n(`${m}.bias`)), o);
      const x = layerNorm(h, S, H, w.get(n('ln_1.weight')), w.get(n('ln_1.bias')), d.eps);
      const qkv = c(x, 'attn.c_attn', H, 3 * H);
      const part = (k: number): Vec => {
        const y = new Float64Array(S * H);
        for (let r = 0; r < S; r++) for (let i = 0; i < H; i++) y[r * H + i] = qkv[r * 3 * H + k * H + i]!;
        return y;
      };
      h = add(h, c(attention(part(0), part(1), part(2), S, S, d.heads, d.heads, hd, allowed), 'attn.c_proj', H, H));
      const x2 = layerNorm(h, S, H, w.get(n('ln_2.weight')), w.get(n('ln_2.bias')), d.eps);
      h = add(h, c(map(c(x2, 'mlp.c_fc', H, d.inter), geluNew), 'mlp.c_proj', d.inter, H));
    }
    h = layerNorm(h, S, H, w.get(p('ln_f.weight')), w.get(p('ln_f.bias')), d.eps);
  } else {
    const kv = hd * d.kvHeads;
    const theta = d.ropeTheta ?? 10000;
    const rope = (x: Vec, nHeads: number): Vec => {
      const y = new Float64Array(x.length);
      for (let r = 0; r < S; r++) {
        for (let hh = 0; hh < nHeads; hh++) {
          const o = r * nHeads * hd + hh * hd;
          for (let i = 0; i < hd / 2; i++) {
            const ang = inp.positions[r]! * Math.fround(1 / Math.pow(theta, (2 * i) / hd));
            const [c, s] = [Math.cos(ang), Math.sin(ang)];
            const a = x[o + i]!;
            const b = x[o + i + hd / 2]!;
            y[o + i] = a * c - b * s;
            y[o + i + hd / 2] = b * c + a * s;
          }
        }
      }
      return y;
    };
    h = rows(w.get(p('embed_tokens.weight')), H, inp.ids);
    for (let l = 0; l < d.layers; l++) {
      const n = (s: string): string => p(`layers.${l}.${s}`);
      const lin = (x: Vec, m: string, i: number, o: number): Vec => linear(x, S, i, w.get(n(`${m}.weight`)), undefined, o);
      const x = rmsNorm(h, S, H, w.get(n('input_layernorm.weight')), d.eps);
      const q = rope(lin(x, 'self_attn.q_proj', H, H), d.heads);
      const k = rope(lin(x, 'self_attn.k_proj', H, kv), d.kvHeads);
      const a = attention(q, k, lin(x, 'self_attn.v_proj', H, kv), S, S, d.heads, d.kvHeads, hd, allowed);
      h = add(h, lin(a, 'self_attn.o_proj', H, H));
      const x2 = rmsNorm(h, S, H, w.get(n('post_attention_layernorm.weight')), d.eps);
      const g = map(lin(x2, 'mlp.gate_proj', H, d.inter), (v) => v / (1 + Math.exp(-v)));
      const u = lin(x2, 'mlp.up_proj', H, d.inter);
      h = add(h, lin(g.map((v, i) => v * u[i]!), 'mlp.down_proj', d.inter, H));
    }
    h = rmsNorm(h, S, H, w.get(p('norm.weight')), d.eps);
  }
  if (vocab === undefined) return { hidden: h };
  return { hidden: h, logits: linear(h, S, H, w.get('lm_head.weight'), undefined, vocab) };
}

/** ViT on one image [C, size, size] (already normalized). */
export function vitForward(sd: StateDict, d: RefDims, root: string, px: Float32Array): { hidden: Vec; first: Vec } {
  const w = new W(sd);
  const p = (s: string): string => (root ? `${root}.${s}` : s);
  const H = d.hidden;
  const P = d.patch!;
  const C = d.channels!;
  const size = d.image!;
  const g = size / P;
  const n = g * g;
  const S = n + 1;
  const cw = w.get(p('embeddings.patch_embeddings.projection.weight'));
  const cb = w.get(p('embeddings.patch_embeddings.projection.bias'));
  let h: Vec = new Float64Array(S * H);
  const cls = w.get(p('embeddings.cls_token'));
  for (let i = 0; i < H; i++) h[i] = cls[i]!;
  for (let py = 0; py < g; py++) {
    for (let pxi = 0; pxi < g; pxi++) {
      const r = 1 + py * g + pxi;
      for (let o = 0; o < H; o++) {
        let s = cb[o]!;
        for (let c = 0; c < C; c++) for (let ky = 0; ky < P; ky++) for (let kx = 0; kx < P; kx++) s += cw[((o * C + c) * P + ky) * P + kx]! * px[(c * size + py * P + ky) * size + pxi * P + kx]!;
        h[r * H + o] = s;
      }
    }
  }
  const pos = w.get(p('embeddings.position_embeddings'));
  h = h.map((v, i) => v + pos[i]!);
  for (let l = 0; l < d.layers; l++) {
    const nm = (s: string): string => p(`encoder.layer.${l}.${s}`);
    const lin = (x: Vec, m: string, i: number, o: number): Vec => linear(x, S, i, w.get(nm(`${m}.weight`)), w.get(nm(`${m}.bias`)), o);
    const x = layerNorm(h, S, H, w.get(nm('layernorm_before.weight')), w.get(nm('layernorm_before.bias')), d.eps);
    const a = attention(lin(x, 'attention.attention.query', H, H), lin(x, 'attention.attention.key', H, H), lin(x, 'attention.attention.value', H, H), S, S, d.heads, d.heads, H / d.heads, () => true);
    h = add(lin(a, 'attention.output.dense', H, H), h);
    const x2 = layerNorm(h, S, H, w.get(nm('layernorm_after.weight')), w.get(nm('layernorm_after.bias')), d.eps);
    h = add(lin(map(lin(x2, 'intermediate.dense', H, d.inter), gelu), 'output.dense', d.inter, H), h);
  }
  h = layerNorm(h, S, H, w.get(p('layernorm.weight')), w.get(p('layernorm.bias')), d.eps);
  return { hidden: h, first: h.slice(0, H) };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// Building blocks for the other architectures' references (whisper-reference.ts).
export { add, attention, gelu, layerNorm, linear, rows };
