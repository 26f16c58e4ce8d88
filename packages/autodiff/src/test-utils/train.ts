/** Shared pieces of the trainer's tests: tiny models, random batches, a seeded normal stream. */
import { Prng } from '@tensorpeft/core';
import { makeModel, type Arch } from '@tensorpeft/model-gen';
import * as ort from 'onnxruntime-node';
import type { OrtLike, OrtTensorLike } from '../probe.js';
import type { TrainingGraph } from '../train/graph.js';
import { modelFeeds } from '../train/feeds.js';
import { LABELS_INPUT, WEIGHTS_INPUT } from '../train/loss.js';

export const ORT = ort as unknown as OrtLike;

export function tinyModel(arch: Arch, seed = 0): { fp32: Uint8Array; q8: Uint8Array; targets: string[]; vocab: number; labels: number; gm: ReturnType<typeof makeModel> } {
  const gm = makeModel({ arch, size: 'tiny', seed });
  const cfg = gm.config as { vocab_size?: number; num_labels?: number };
  return { fp32: gm.files.get('onnx/model.onnx')!, q8: gm.files.get('onnx/model_quantized.onnx')!, targets: gm.shape.modules.map((m) => m.path), vocab: cfg.vocab_size ?? 0, labels: cfg.num_labels ?? 2, gm };
}

/** A random batch (row 1 padded at the end for text models) with labels and normalized weights. */
export function randomFeeds(tg: TrainingGraph, rng: Prng, o: { batch: number; seq: number; vocab: number; labels: number; pixels?: number }): Record<string, OrtTensorLike> {
  const { batch: B, seq: S } = o;
  const ids = BigInt64Array.from({ length: B * S }, () => BigInt(3 + Math.floor(rng.uniform() * (o.vocab - 3))));
  const mask = BigInt64Array.from({ length: B * S }, (_, i) => (Math.floor(i / S) === 1 && i % S >= S - 2 ? 0n : 1n));
  const f = modelFeeds(ORT, tg.inputs, { batch: B, seq: S, ids, mask, ...(o.pixels ? { pixels: Float32Array.from({ length: B * o.pixels }, () => 2 * rng.uniform() - 1) } : {}) });
  if (tg.sequenceLogits) {
    const lab = new BigInt64Array(B * S);
    const w = new Float32Array(B * S);
    let n = 0;
    for (let r = 0; r < B; r++) for (let t = 0; t + 1 < S; t++) if (mask[r * S + t + 1] === 1n) {
      lab[r * S + t] = ids[r * S + t + 1]!;
      w[r * S + t] = 1;
      n++;
    }
    for (let i = 0; i < w.length; i++) w[i]! /= n;
    f[LABELS_INPUT] = new ORT.Tensor('int64', lab, [B, S]);
    f[WEIGHTS_INPUT] = new ORT.Tensor('float32', w, [B, S]);
  } else {
    f[LABELS_INPUT] = new ORT.Tensor('int64', BigInt64Array.from({ length: B }, () => BigInt(Math.floor(rng.uniform() * o.labels))), [B]);
    f[WEIGHTS_INPUT] = new ORT.Tensor('float32', new Float32Array(B).fill(1 / B), [B]);
  }
  return f;
}

export function normals(rng: Prng, n: number, std: number): Float32Array {
  return Float32Array.from({ length: n }, () => std * rng.normal());
}

/** Method configs that fit a tiny model (hidden 32, q_lin/v_lin 32 × 32). */
export const TINY_CONFIGS: Record<string, Record<string, unknown>> = {
  trac: { r: 4, lora_alpha: 8, tensor_shape: [2, 4, 4], tensor_rank_a: [1, 2, 4], tensor_rank_b: [1, 2, 4] },
  lora: { r: 4, lora_alpha: 8 },
  vera: { r: 8 },
  loretta: { r: 4, lora_alpha: 8, tensor_rank: 2, tensor_shape_a: { '32': [4, 4, 8] }, tensor_shape_b: { '32': [4, 4, 8] } },
  lorta: { r: 4, lora_alpha: 8 },
  tenslora: {},
};
