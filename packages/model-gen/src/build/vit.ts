/** ViT (pre-LayerNorm encoder on 16×16 patches + [CLS]), laid out as torch exports ViTModel / ViTForImageClassification. */
import type { ModelDims, Task } from '../spec.js';
import { type Ctx, scopeOf } from './ctx.js';

const B = 'batch_size';

export function buildVit(ctx: Ctx, d: ModelDims, task: Task, numLabels: number): void {
  const b = ctx.b;
  const H = d.hiddenSize;
  const nh = d.numHeads;
  const hd = H / nh;
  const C = d.numChannels;
  const Pz = d.patchSize;
  const nPatches = (d.imageSize / Pz) ** 2;
  const px = b.input('pixel_values', 'float32', [B, C, d.imageSize, d.imageSize]);

  // Patch embedding: Conv(kernel = stride = patch) → [B, H, n] → [B, n, H]; prepend [CLS]; add positions.
  const projPath = ctx.p('embeddings.patch_embeddings.projection');
  const ps = scopeOf(projPath);
  const bound = 1 / Math.sqrt(C * Pz * Pz);
  const w = ctx.param(`${projPath}.weight`, [H, C, Pz, Pz], { uniform: bound });
  const cb = ctx.param(`${projPath}.bias`, [H], { uniform: bound });
  const conv = b.node('Conv', ps, [px, w, cb], { dilations: [1, 1], group: 1, kernel_shape: [Pz, Pz], pads: [0, 0, 0, 0], strides: [Pz, Pz] });
  const pes = scopeOf(ctx.p('embeddings.patch_embeddings'));
  const flat = b.node('Reshape', pes, [conv, b.constI64(pes, [0, H, -1])]);
  const patches = b.node('Transpose', pes, [flat], { perm: [0, 2, 1] });
  const es = scopeOf(ctx.p('embeddings'));
  const cls = ctx.param(ctx.p('embeddings.cls_token'), [1, 1, H], { uniform: Math.sqrt(3) * 0.5 });
  const batch = b.node('Slice', es, [b.node('Shape', es, [px]), b.constI64(es, [0]), b.constI64(es, [1])]);
  const clsB = b.node('Expand', es, [cls, b.node('Concat', es, [batch, b.constI64(es, [1, 1])], { axis: 0 })]);
  const seq = b.node('Concat', es, [clsB, patches], { axis: 1 });
  const posE = ctx.param(ctx.p('embeddings.position_embeddings'), [1, nPatches + 1, H], { uniform: Math.sqrt(3) * 0.5 });
  let h = b.node('Add', es, [seq, posE]);

  // No padding in images: attention adds a zero bias.
  const zero = b.constF32(scopeOf(ctx.p('encoder')), 0);
  for (let l = 0; l < d.numLayers; l++) {
    const pre = ctx.p(`encoder.layer.${l}`);
    const as = scopeOf(`${pre}.attention.attention`);
    const x = ctx.layerNorm(h, `${pre}.layernorm_before`, H, d.layerNormEps);
    const q = ctx.splitHeads(ctx.linear(x, `${pre}.attention.attention.query`, H, H), as, nh, hd);
    const kT = ctx.splitHeads(ctx.linear(x, `${pre}.attention.attention.key`, H, H), as, nh, hd, true);
    const v = ctx.splitHeads(ctx.linear(x, `${pre}.attention.attention.value`, H, H), as, nh, hd);
    const a = ctx.mergeHeads(ctx.attend(q, kT, v, zero, as, hd), as, H);
    h = b.node('Add', scopeOf(pre), [ctx.linear(a, `${pre}.attention.output.dense`, H, H), h]);
    const x2 = ctx.layerNorm(h, `${pre}.layernorm_after`, H, d.layerNormEps);
    const inter = ctx.gelu(ctx.linear(x2, `${pre}.intermediate.dense`, H, d.intermediateSize), scopeOf(`${pre}.intermediate.intermediate_act_fn`));
    h = b.node('Add', scopeOf(`${pre}.output`), [ctx.linear(inter, `${pre}.output.dense`, d.intermediateSize, H), h]);
  }
  h = ctx.layerNorm(h, ctx.p('layernorm'), H, d.layerNormEps);
  if (task === 'sequence-classification') {
    ctx.finish(ctx.gemm(ctx.firstToken(h, ''), 'classifier', H, numLabels), 'logits', [B, numLabels]);
  } else {
    ctx.finish(h, 'last_hidden_state', [B, nPatches + 1, H]);
  }
}
