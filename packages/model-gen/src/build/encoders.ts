/** BERT, RoBERTa and DistilBERT graphs (post-LayerNorm encoders), laid out as torch exports them. */
import type { ModelDims, Task } from '../spec.js';
import { type Ctx, scopeOf } from './ctx.js';

const B = 'batch_size';
const S = 'sequence_length';

interface EncoderLayerNames {
  q: string;
  k: string;
  v: string;
  o: string;
  /** Scope of the attention score computation. */
  attnScope: string;
  ln1: string;
  ff1: string;
  actScope: string;
  ff2: string;
  ln2: string;
}

function bertLayerNames(prefix: string): EncoderLayerNames {
  return {
    q: `${prefix}.attention.self.query`,
    k: `${prefix}.attention.self.key`,
    v: `${prefix}.attention.self.value`,
    o: `${prefix}.attention.output.dense`,
    attnScope: scopeOf(`${prefix}.attention.self`),
    ln1: `${prefix}.attention.output.LayerNorm`,
    ff1: `${prefix}.intermediate.dense`,
    actScope: scopeOf(`${prefix}.intermediate.intermediate_act_fn`),
    ff2: `${prefix}.output.dense`,
    ln2: `${prefix}.output.LayerNorm`,
  };
}

function distilLayerNames(prefix: string): EncoderLayerNames {
  return {
    q: `${prefix}.attention.q_lin`,
    k: `${prefix}.attention.k_lin`,
    v: `${prefix}.attention.v_lin`,
    o: `${prefix}.attention.out_lin`,
    attnScope: scopeOf(`${prefix}.attention`),
    ln1: `${prefix}.sa_layer_norm`,
    ff1: `${prefix}.ffn.lin1`,
    actScope: scopeOf(`${prefix}.ffn.activation`),
    ff2: `${prefix}.ffn.lin2`,
    ln2: `${prefix}.output_layer_norm`,
  };
}

/** One post-LN encoder layer: LN(x + Attn(x)), then LN(h + FFN(h)). */
function encoderLayer(ctx: Ctx, x: string, bias: string, n: EncoderLayerNames, d: ModelDims): string {
  const H = d.hiddenSize;
  const hd = H / d.numHeads;
  const b = ctx.b;
  const q = ctx.splitHeads(ctx.linear(x, n.q, H, H), n.attnScope, d.numHeads, hd);
  const kT = ctx.splitHeads(ctx.linear(x, n.k, H, H), n.attnScope, d.numHeads, hd, true);
  const v = ctx.splitHeads(ctx.linear(x, n.v, H, H), n.attnScope, d.numHeads, hd);
  const ctxv = ctx.mergeHeads(ctx.attend(q, kT, v, bias, n.attnScope, hd), n.attnScope, H);
  const attnOut = ctx.linear(ctxv, n.o, H, H);
  const h1 = ctx.layerNorm(b.node('Add', scopeOf(n.ln1), [attnOut, x]), n.ln1, H, d.layerNormEps);
  const inter = ctx.gelu(ctx.linear(h1, n.ff1, H, d.intermediateSize), n.actScope);
  const ff = ctx.linear(inter, n.ff2, d.intermediateSize, H);
  return ctx.layerNorm(b.node('Add', scopeOf(n.ln2), [ff, h1]), n.ln2, H, d.layerNormEps);
}

function outputs(ctx: Ctx, h: string, task: Task, numLabels: number, hidden: number, head: (h: string) => string): void {
  if (task === 'sequence-classification') ctx.finish(head(h), 'logits', [B, numLabels]);
  else ctx.finish(h, 'last_hidden_state', [B, S, hidden]);
}

export function buildBertLike(ctx: Ctx, arch: 'bert' | 'roberta', d: ModelDims, task: Task, numLabels: number): void {
  const b = ctx.b;
  const H = d.hiddenSize;
  const ids = b.input('input_ids', 'int64', [B, S]);
  const mask = b.input('attention_mask', 'int64', [B, S]);
  const types = arch === 'bert' ? b.input('token_type_ids', 'int64', [B, S]) : '';
  const embScope = scopeOf(ctx.p('embeddings'));

  // Embeddings: word + token type + position, then LayerNorm.
  const words = ctx.embedding(ids, ctx.p('embeddings.word_embeddings'), d.vocabSize, H);
  let pos: string;
  let tok: string;
  if (arch === 'bert') {
    const len = b.node('Gather', embScope, [b.node('Shape', embScope, [ids]), b.constant(embScope, { dtype: 'int64', dims: [], data: BigInt64Array.of(1n) })], { axis: 0 });
    const range = b.node('Range', embScope, [b.constant(embScope, { dtype: 'int64', dims: [], data: BigInt64Array.of(0n) }), len, b.constant(embScope, { dtype: 'int64', dims: [], data: BigInt64Array.of(1n) })]);
    const posIds = b.node('Unsqueeze', embScope, [range, b.constI64(embScope, [0])]);
    tok = ctx.embedding(types, ctx.p('embeddings.token_type_embeddings'), d.typeVocabSize, H);
    pos = ctx.embedding(posIds, ctx.p('embeddings.position_embeddings'), d.maxPositions, H);
  } else {
    // RoBERTa: position ids = cumsum(ids ≠ pad) · (ids ≠ pad) + pad (padding_idx = 1); one token type.
    const padIdx = 1;
    const ne = b.node('Not', embScope, [b.node('Equal', embScope, [ids, b.constant(embScope, { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(padIdx)) })])]);
    const m = b.node('Cast', embScope, [ne], { to: 7 });
    const cs = b.node('CumSum', embScope, [m, b.constant(embScope, { dtype: 'int64', dims: [], data: BigInt64Array.of(1n) })]);
    const inc = b.node('Mul', embScope, [cs, m]);
    const posIds = b.node('Add', embScope, [inc, b.constant(embScope, { dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(padIdx)) })]);
    tok = ctx.embedding(b.node('Mul', embScope, [ids, b.constant(embScope, { dtype: 'int64', dims: [], data: BigInt64Array.of(0n) })]), ctx.p('embeddings.token_type_embeddings'), d.typeVocabSize, H);
    pos = ctx.embedding(posIds, ctx.p('embeddings.position_embeddings'), d.maxPositions, H);
  }
  const e1 = b.node('Add', embScope, [words, tok]);
  const e2 = b.node('Add', embScope, [e1, pos]);
  let h = ctx.layerNorm(e2, ctx.p('embeddings.LayerNorm'), H, d.layerNormEps);

  const bias = ctx.paddingBias(mask, scopeOf(ctx.root));
  for (let l = 0; l < d.numLayers; l++) h = encoderLayer(ctx, h, bias, bertLayerNames(ctx.p(`encoder.layer.${l}`)), d);

  outputs(ctx, h, task, numLabels, H, (hs) => {
    if (arch === 'bert') {
      const first = ctx.firstToken(hs, scopeOf(ctx.p('pooler')));
      const pooled = b.node('Tanh', scopeOf(ctx.p('pooler.activation')), [ctx.gemm(first, ctx.p('pooler.dense'), H, H)]);
      return ctx.gemm(pooled, 'classifier', H, numLabels);
    }
    // RobertaClassificationHead: dense → tanh → out_proj on the <s> token.
    const first = ctx.firstToken(hs, '/classifier');
    const t = b.node('Tanh', '/classifier', [ctx.gemm(first, 'classifier.dense', H, H)]);
    return ctx.gemm(t, 'classifier.out_proj', H, numLabels);
  });
}

export function buildDistilBert(ctx: Ctx, d: ModelDims, task: Task, numLabels: number): void {
  const b = ctx.b;
  const H = d.hiddenSize;
  const ids = b.input('input_ids', 'int64', [B, S]);
  const mask = b.input('attention_mask', 'int64', [B, S]);
  const embScope = scopeOf(ctx.p('embeddings'));
  const words = ctx.embedding(ids, ctx.p('embeddings.word_embeddings'), d.vocabSize, H);
  const len = b.node('Gather', embScope, [b.node('Shape', embScope, [ids]), b.constant(embScope, { dtype: 'int64', dims: [], data: BigInt64Array.of(1n) })], { axis: 0 });
  const range = b.node('Range', embScope, [b.constant(embScope, { dtype: 'int64', dims: [], data: BigInt64Array.of(0n) }), len, b.constant(embScope, { dtype: 'int64', dims: [], data: BigInt64Array.of(1n) })]);
  const posIds = b.node('Unsqueeze', embScope, [range, b.constI64(embScope, [0])]);
  const pos = ctx.embedding(posIds, ctx.p('embeddings.position_embeddings'), d.maxPositions, H);
  let h = ctx.layerNorm(b.node('Add', embScope, [words, pos]), ctx.p('embeddings.LayerNorm'), H, d.layerNormEps);
  const bias = ctx.paddingBias(mask, scopeOf(ctx.p('transformer')));
  for (let l = 0; l < d.numLayers; l++) h = encoderLayer(ctx, h, bias, distilLayerNames(ctx.p(`transformer.layer.${l}`)), d);
  outputs(ctx, h, task, numLabels, H, (hs) => {
    const first = ctx.firstToken(hs, '');
    const pre = b.node('Relu', '', [ctx.gemm(first, 'pre_classifier', H, H)]);
    return ctx.gemm(pre, 'classifier', H, numLabels);
  });
}
