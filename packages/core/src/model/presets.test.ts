import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelShapeError } from '../errors.js';
import { buildShape } from './architectures.js';
import { PRESETS, presetNames, presetShape } from './presets.js';
import { splitLayerPath, type ModelShape } from './shape.js';

/** in → out of a module type in layer `l`. */
function dims(shape: ModelShape, type: string, l = 0): [number, number] {
  const m = shape.modules.find((x) => x.layer === l && x.type === type);
  if (!m) throw new Error(`no module ${type} in layer ${l}`);
  return [m.in, m.out];
}

describe('presets', () => {
  it('the ten presets exist', () => {
    expect(presetNames().sort()).toEqual(
      ['bert-base', 'distilbert-base', 'gpt2', 'gpt2-medium', 'llama2-13b', 'llama2-7b', 'roberta-base', 'roberta-large', 'vit-base', 'vit-large'].sort(),
    );
  });

  it.each([
    // name, model_type, layers, hidden, heads, intermediate, modules per layer, hub id
    ['bert-base', 'bert', 12, 768, 12, 3072, 6, 'google-bert/bert-base-uncased'],
    ['roberta-base', 'roberta', 12, 768, 12, 3072, 6, 'FacebookAI/roberta-base'],
    ['roberta-large', 'roberta', 24, 1024, 16, 4096, 6, 'FacebookAI/roberta-large'],
    ['distilbert-base', 'distilbert', 6, 768, 12, 3072, 6, 'distilbert/distilbert-base-uncased'],
    ['gpt2', 'gpt2', 12, 768, 12, 3072, 4, 'openai-community/gpt2'],
    ['gpt2-medium', 'gpt2', 24, 1024, 16, 4096, 4, 'openai-community/gpt2-medium'],
    ['vit-base', 'vit', 12, 768, 12, 3072, 6, 'google/vit-base-patch16-224'],
    ['vit-large', 'vit', 24, 1024, 16, 4096, 6, 'google/vit-large-patch16-224'],
    ['llama2-7b', 'llama', 32, 4096, 32, 11008, 7, 'meta-llama/Llama-2-7b-hf'],
    ['llama2-13b', 'llama', 40, 5120, 40, 13824, 7, 'meta-llama/Llama-2-13b-hf'],
  ] as const)('%s: %s, %i layers × %i hidden, %i heads, FFN %i, %i modules/layer', (name, type, L, d, H, ff, perLayer, hub) => {
    const s = presetShape(name);
    expect(s).toMatchObject({ modelType: type, numLayers: L, hiddenSize: d, numHeads: H, numKvHeads: H, intermediateSize: ff, nameOrPath: hub });
    expect(s.modules).toHaveLength(L * perLayer);
    for (let l = 0; l < L; l++) expect(s.modules.filter((m) => m.layer === l)).toHaveLength(perLayer);
  });

  it('BERT/RoBERTa/ViT module dims', () => {
    for (const [name, pre] of [
      ['bert-base', 'bert.encoder.layer.'],
      ['roberta-large', 'roberta.encoder.layer.'],
      ['vit-base', 'vit.encoder.layer.'],
    ] as const) {
      const s = presetShape(name);
      const d = s.hiddenSize;
      const ff = s.intermediateSize;
      const attn = name.startsWith('vit') ? 'attention.attention' : 'attention.self';
      expect(s.modules.slice(0, 6).map((m) => [m.path, m.in, m.out])).toEqual([
        [`${pre}0.${attn}.query`, d, d],
        [`${pre}0.${attn}.key`, d, d],
        [`${pre}0.${attn}.value`, d, d],
        [`${pre}0.attention.output.dense`, d, d],
        [`${pre}0.intermediate.dense`, d, ff],
        [`${pre}0.output.dense`, ff, d],
      ]);
      expect(s.modules.every((m) => !m.fanInFanOut)).toBe(true);
      expect(s.defaultTargets).toEqual(['query', 'value']);
    }
    expect(dims(presetShape('bert-base'), 'intermediate.dense', 11)).toEqual([768, 3072]);
    expect(dims(presetShape('roberta-large'), 'output.dense', 23)).toEqual([4096, 1024]);
  });

  it('DistilBERT module names and dims', () => {
    const s = presetShape('distilbert-base');
    expect(s.modules.slice(0, 6).map((m) => [m.path, m.in, m.out])).toEqual([
      ['distilbert.transformer.layer.0.attention.q_lin', 768, 768],
      ['distilbert.transformer.layer.0.attention.k_lin', 768, 768],
      ['distilbert.transformer.layer.0.attention.v_lin', 768, 768],
      ['distilbert.transformer.layer.0.attention.out_lin', 768, 768],
      ['distilbert.transformer.layer.0.ffn.lin1', 768, 3072],
      ['distilbert.transformer.layer.0.ffn.lin2', 3072, 768],
    ]);
    expect(s.defaultTargets).toEqual(['q_lin', 'v_lin']);
    expect(s.modules[s.modules.length - 1]!.path).toBe('distilbert.transformer.layer.5.ffn.lin2');
  });

  it('GPT-2: fused c_attn 768 → 2304, Conv1D layout (fanInFanOut) on every module', () => {
    const s = presetShape('gpt2');
    expect(s.modules.slice(0, 4).map((m) => [m.path, m.in, m.out])).toEqual([
      ['transformer.h.0.attn.c_attn', 768, 2304],
      ['transformer.h.0.attn.c_proj', 768, 768],
      ['transformer.h.0.mlp.c_fc', 768, 3072],
      ['transformer.h.0.mlp.c_proj', 3072, 768],
    ]);
    expect(s.modules.every((m) => m.fanInFanOut)).toBe(true);
    expect(s.defaultTargets).toEqual(['c_attn']);
    expect(dims(presetShape('gpt2-medium'), 'attn.c_attn', 23)).toEqual([1024, 3072]);
  });

  it('Llama-2: 7 projections, MLP 11008 / 13824', () => {
    const s = presetShape('llama2-7b');
    expect(s.modules.slice(0, 7).map((m) => [m.path, m.in, m.out])).toEqual([
      ['model.layers.0.self_attn.q_proj', 4096, 4096],
      ['model.layers.0.self_attn.k_proj', 4096, 4096],
      ['model.layers.0.self_attn.v_proj', 4096, 4096],
      ['model.layers.0.self_attn.o_proj', 4096, 4096],
      ['model.layers.0.mlp.gate_proj', 4096, 11008],
      ['model.layers.0.mlp.up_proj', 4096, 11008],
      ['model.layers.0.mlp.down_proj', 11008, 4096],
    ]);
    expect(s.defaultTargets).toEqual(['q_proj', 'v_proj']);
    const t = presetShape('llama2-13b');
    expect(dims(t, 'self_attn.k_proj', 39)).toEqual([5120, 5120]);
    expect(dims(t, 'mlp.down_proj', 39)).toEqual([13824, 5120]);
  });

  it('every preset: unique paths, layer-major order, and (layer, type) agree with splitLayerPath', () => {
    for (const name of presetNames()) {
      const s = presetShape(name);
      expect(new Set(s.modules.map((m) => m.path)).size).toBe(s.modules.length);
      s.modules.forEach((m, i) => {
        expect(splitLayerPath(m.path)).toEqual({ layer: m.layer, type: m.type });
        expect(m.path.endsWith(`.${m.type}`)).toBe(true);
        if (i > 0) expect(m.layer).toBeGreaterThanOrEqual(s.modules[i - 1]!.layer);
      });
    }
  });

  it('presetShape returns a fresh object each time (callers may mutate it)', () => {
    const a = presetShape('bert-base');
    a.modules.pop();
    a.defaultTargets.push('key');
    const b = presetShape('bert-base');
    expect(b.modules).toHaveLength(72);
    expect(b.defaultTargets).toEqual(['query', 'value']);
    expect(PRESETS['bert-base']!.hiddenSize).toBe(768);
  });

  it('an unknown preset is a ModelShapeError naming the known presets', () => {
    let err: unknown;
    try {
      presetShape('bert-huge');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelShapeError);
    const msg = (err as Error).message;
    expect(msg).toContain('unknown model preset');
    expect(msg).toContain('bert-huge');
    for (const n of ['bert-base', 'gpt2', 'llama2-13b']) expect(msg).toContain(n);
    // Object.prototype member names are not presets either.
    expect(() => presetShape('constructor')).toThrow(/unknown model preset.*found constructor/);
    expect(() => presetShape('__proto__')).toThrow(/unknown model preset/);
  });
});

describe('buildShape validation', () => {
  const ok = { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 96 };

  it('GQA: k/v projections output head_dim · num_kv_heads', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 }), (headDim, kv, groups) => {
        const heads = kv * groups;
        const s = buildShape('llama', { hiddenSize: headDim * heads, numLayers: 1, numHeads: heads, numKvHeads: kv, intermediateSize: 3 });
        expect(dims(s, 'self_attn.k_proj')).toEqual([headDim * heads, headDim * kv]);
        expect(dims(s, 'self_attn.v_proj')).toEqual([headDim * heads, headDim * kv]);
        expect(dims(s, 'self_attn.q_proj')).toEqual([headDim * heads, headDim * heads]);
      }),
    );
  });

  it('odd sizes and a single layer work', () => {
    const s = buildShape('bert', { hiddenSize: 7, numLayers: 1, numHeads: 7, numKvHeads: 7, intermediateSize: 5 });
    expect(s.modules.map((m) => [m.in, m.out])).toEqual([
      [7, 7],
      [7, 7],
      [7, 7],
      [7, 7],
      [7, 5],
      [5, 7],
    ]);
    expect(s.nameOrPath).toBeUndefined();
  });

  it('rejects unknown architectures, non-positive dims, heads not dividing hidden, kv not dividing heads', () => {
    const err = (f: () => unknown): ModelShapeError => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ModelShapeError);
        return e as ModelShapeError;
      }
      throw new Error('expected a ModelShapeError');
    };
    let e = err(() => buildShape('t5', ok));
    expect(e.message).toMatch(/unsupported model_type.*field model_type.*expected .*bert.*llama.*found t5/);
    expect(err(() => buildShape('constructor', ok)).message).toMatch(/unsupported model_type.*found constructor/);
    expect(err(() => buildShape('toString', ok)).message).toMatch(/unsupported model_type.*found toString/);
    e = err(() => buildShape('bert', { ...ok, numLayers: 0 }));
    expect(e.message).toMatch(/positive integer.*field numLayers.*found 0/);
    e = err(() => buildShape('bert', { ...ok, intermediateSize: 1.5 }));
    expect(e.message).toMatch(/field intermediateSize.*found 1\.5/);
    e = err(() => buildShape('bert', { ...ok, numHeads: 5, numKvHeads: 5 }));
    expect(e.message).toMatch(/divisible.*field num_attention_heads.*expected a divisor of 64, found 5/);
    e = err(() => buildShape('llama', { ...ok, numKvHeads: 3 }));
    expect(e.message).toMatch(/field num_key_value_heads.*expected a divisor of 4, found 3/);
  });
});
