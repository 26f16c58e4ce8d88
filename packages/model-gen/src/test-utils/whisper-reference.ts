/**
 * Whisper's forward pass in plain JavaScript (float64) over the torch-layout weights, written from
 * HF's WhisperEncoder / WhisperDecoder (not from the graph builder): the check that the two ONNX
 * files compute what WhisperForConditionalGeneration computes.
 */
import type { StateDict } from '../build/ctx.js';
import { add, attention, gelu, layerNorm, linear, rows } from './reference.js';

type Vec = Float64Array;

export interface WhisperRefDims {
  hidden: number;
  layers: number;
  heads: number;
  inter: number;
  mels: number;
  vocab: number;
  eps: number;
}

function get(sd: StateDict, name: string): Float32Array {
  const t = sd.get(name);
  if (!t) throw new Error(`reference: no weight ${name}`);
  return t.data as Float32Array;
}

/** nn.Conv1d(k = 3, padding 1) on x [C, T] (channels-first), weight [O, C, 3]. Returns [O, T_out]. */
function conv1d(x: Vec, C: number, T: number, w: Float32Array, b: Float32Array, O: number, stride: number): { y: Vec; T: number } {
  const To = Math.floor((T + 2 - 3) / stride) + 1;
  const y = new Float64Array(O * To);
  for (let o = 0; o < O; o++) {
    for (let t = 0; t < To; t++) {
      let s = b[o]!;
      for (let c = 0; c < C; c++) {
        for (let k = 0; k < 3; k++) {
          const src = t * stride + k - 1;
          if (src >= 0 && src < T) s += w[(o * C + c) * 3 + k]! * x[c * T + src]!;
        }
      }
      y[o * To + t] = s;
    }
  }
  return { y, T: To };
}

/** One pre-LN block part: LN → attention (q from x, k/v from `kv` or x) → out_proj, added to h. */
function attnBlock(sd: StateDict, p: string, h: Vec, S: number, d: WhisperRefDims, kvSrc: { x: Vec; T: number } | undefined, allowed: (i: number, j: number) => boolean, ln: string): Vec {
  const H = d.hidden;
  const x = layerNorm(h, S, H, get(sd, `${ln}.weight`), get(sd, `${ln}.bias`), d.eps);
  const src = kvSrc ?? { x, T: S };
  const q = linear(x, S, H, get(sd, `${p}.q_proj.weight`), get(sd, `${p}.q_proj.bias`), H);
  const k = linear(src.x, src.T, H, get(sd, `${p}.k_proj.weight`), undefined, H);
  const v = linear(src.x, src.T, H, get(sd, `${p}.v_proj.weight`), get(sd, `${p}.v_proj.bias`), H);
  const a = attention(q, k, v, S, src.T, d.heads, d.heads, H / d.heads, allowed);
  return add(h, linear(a, S, H, get(sd, `${p}.out_proj.weight`), get(sd, `${p}.out_proj.bias`), H));
}

function mlpBlock(sd: StateDict, p: string, h: Vec, S: number, d: WhisperRefDims): Vec {
  const x = layerNorm(h, S, d.hidden, get(sd, `${p}.final_layer_norm.weight`), get(sd, `${p}.final_layer_norm.bias`), d.eps);
  const a = linear(x, S, d.hidden, get(sd, `${p}.fc1.weight`), get(sd, `${p}.fc1.bias`), d.inter).map(gelu);
  return add(h, linear(a, S, d.inter, get(sd, `${p}.fc2.weight`), get(sd, `${p}.fc2.bias`), d.hidden));
}

/** WhisperEncoder on features [mels, frames] → last_hidden_state [frames / 2, hidden]. */
export function whisperEncoder(sd: StateDict, d: WhisperRefDims, feats: Float32Array, frames: number): { hidden: Vec; T: number } {
  const H = d.hidden;
  const r = 'model.encoder';
  const c1 = conv1d(Float64Array.from(feats), d.mels, frames, get(sd, `${r}.conv1.weight`), get(sd, `${r}.conv1.bias`), H, 1);
  const c2 = conv1d(c1.y.map(gelu), H, c1.T, get(sd, `${r}.conv2.weight`), get(sd, `${r}.conv2.bias`), H, 2);
  const T = c2.T;
  const g = c2.y.map(gelu);
  const pos = get(sd, `${r}.embed_positions.weight`);
  let h: Vec = new Float64Array(T * H);
  for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) h[t * H + i] = g[i * T + t]! + pos[t * H + i]!;
  for (let l = 0; l < d.layers; l++) {
    const p = `${r}.layers.${l}`;
    h = attnBlock(sd, `${p}.self_attn`, h, T, d, undefined, () => true, `${p}.self_attn_layer_norm`);
    h = mlpBlock(sd, p, h, T, d);
  }
  return { hidden: layerNorm(h, T, H, get(sd, `${r}.layer_norm.weight`), get(sd, `${r}.layer_norm.bias`), d.eps), T };
}

/** WhisperDecoder + proj_out (tied to embed_tokens) over the whole sequence: logits [ids, vocab]. */
export function whisperDecoder(sd: StateDict, d: WhisperRefDims, enc: { hidden: Vec; T: number }, ids: number[]): Vec {
  const H = d.hidden;
  const S = ids.length;
  const r = 'model.decoder';
  const emb = get(sd, `${r}.embed_tokens.weight`);
  let h = add(rows(emb, H, ids), rows(get(sd, `${r}.embed_positions.weight`), H, ids.map((_, i) => i)));
  for (let l = 0; l < d.layers; l++) {
    const p = `${r}.layers.${l}`;
    h = attnBlock(sd, `${p}.self_attn`, h, S, d, undefined, (i, j) => j <= i, `${p}.self_attn_layer_norm`);
    h = attnBlock(sd, `${p}.encoder_attn`, h, S, d, { x: enc.hidden, T: enc.T }, () => true, `${p}.encoder_attn_layer_norm`);
    h = mlpBlock(sd, p, h, S, d);
  }
  h = layerNorm(h, S, H, get(sd, `${r}.layer_norm.weight`), get(sd, `${r}.layer_norm.bias`), d.eps);
  return linear(h, S, H, emb, undefined, d.vocab);
}
