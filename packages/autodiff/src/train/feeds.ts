/**
 * Feeds of a transformers.js-style model's inputs for one batch: token ids and mask (text), or
 * pixel values (ViT); token types zero; position ids from the mask (as transformers.js computes
 * them); an empty KV cache for decoders exported with past.
 */
import type { OrtLike, OrtTensorLike } from '../probe.js';
import { num, type ModelProto } from '../onnx.js';

export interface ModelInput {
  name: string;
  /** ONNX element type code. */
  elemType: number;
  /** Static sizes (numbers) or symbolic names. */
  dims: Array<number | string>;
}

export interface Batch {
  batch: number;
  seq: number;
  /** [batch, seq] token ids (text). */
  ids?: BigInt64Array;
  /** [batch, seq] 1 = token, 0 = padding. */
  mask?: BigInt64Array;
  /** [batch, C, H, W] (ViT). */
  pixels?: Float32Array;
}

export function modelInputs(model: ModelProto): ModelInput[] {
  return (model.graph!.input ?? []).map((v) => ({
    name: v.name!,
    elemType: v.type?.tensorType?.elemType ?? 1,
    dims: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : num(d.dimValue))),
  }));
}

export function modelFeeds(ort: OrtLike, inputs: readonly ModelInput[], b: Batch): Record<string, OrtTensorLike> {
  const f: Record<string, OrtTensorLike> = {};
  const BS = b.batch * b.seq;
  for (const inp of inputs) {
    if (inp.name.startsWith('tensorpeft.')) continue;
    if (inp.name === 'input_ids') f[inp.name] = new ort.Tensor('int64', b.ids!, [b.batch, b.seq]);
    else if (inp.name === 'attention_mask') f[inp.name] = new ort.Tensor('int64', b.mask ?? new BigInt64Array(BS).fill(1n), [b.batch, b.seq]);
    else if (inp.name === 'token_type_ids') f[inp.name] = new ort.Tensor('int64', new BigInt64Array(BS), [b.batch, b.seq]);
    else if (inp.name === 'position_ids') {
      // cumsum(mask) − 1, clamped at 0 (transformers.js' rule for decoders).
      const pos = new BigInt64Array(BS);
      for (let r = 0; r < b.batch; r++) {
        let c = -1n;
        for (let t = 0; t < b.seq; t++) {
          c += b.mask ? b.mask[r * b.seq + t]! : 1n;
          pos[r * b.seq + t] = c < 0n ? 0n : c;
        }
      }
      f[inp.name] = new ort.Tensor('int64', pos, [b.batch, b.seq]);
    } else if (inp.name.startsWith('past_key_values.')) {
      const dims = inp.dims.map((d, i) => (i === 0 ? b.batch : typeof d === 'number' ? d : 0));
      f[inp.name] = new ort.Tensor('float32', new Float32Array(0), dims);
    } else if (inp.name === 'pixel_values') {
      const dims = inp.dims.map((d, i) => (i === 0 ? b.batch : Number(d)));
      f[inp.name] = new ort.Tensor('float32', b.pixels!, dims);
    }
  }
  return f;
}
