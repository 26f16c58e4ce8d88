import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { presetShape } from './presets.js';
import { matchesTarget, moduleName, selectModules, splitLayerPath } from './shape.js';

describe('moduleName', () => {
  it('is the last dotted component', () => {
    expect(moduleName('bert.encoder.layer.0.attention.self.query')).toBe('query');
    expect(moduleName('transformer.h.3.attn.c_attn')).toBe('c_attn');
    expect(moduleName('classifier')).toBe('classifier');
  });
});

describe('splitLayerPath', () => {
  it.each([
    ['bert.encoder.layer.0.attention.self.query', 0, 'attention.self.query'],
    ['roberta.encoder.layer.11.output.dense', 11, 'output.dense'],
    ['bert.encoder.layer.7.attention.output.dense', 7, 'attention.output.dense'],
    ['transformer.h.5.attn.c_attn', 5, 'attn.c_attn'],
    ['transformer.h.11.mlp.c_proj', 11, 'mlp.c_proj'],
    ['model.layers.31.self_attn.q_proj', 31, 'self_attn.q_proj'],
    ['model.layers.0.mlp.down_proj', 0, 'mlp.down_proj'],
    ['distilbert.transformer.layer.5.attention.q_lin', 5, 'attention.q_lin'],
    ['distilbert.transformer.layer.2.ffn.lin1', 2, 'ffn.lin1'],
    ['vit.encoder.layer.3.attention.attention.value', 3, 'attention.attention.value'],
    ['encoder.block.4.layer.0.SelfAttention.q', 4, 'layer.0.SelfAttention.q'], // first container wins
    ['model.layers.3.mlp.experts.7.w1', 3, 'mlp.experts.7.w1'],
  ])('%s → layer %i, type %s', (path, layer, type) => {
    expect(splitLayerPath(path)).toEqual({ layer, type });
  });

  it('paths outside a layer keep layer 0 and their full path as type', () => {
    expect(splitLayerPath('classifier.dense')).toEqual({ layer: 0, type: 'classifier.dense' });
    expect(splitLayerPath('lm_head')).toEqual({ layer: 0, type: 'lm_head' });
    // An integer not preceded by a layer container is not a layer index.
    expect(splitLayerPath('model.encoder.3.dense')).toEqual({ layer: 0, type: 'model.encoder.3.dense' });
    // A container name that is not followed by an integer does not count.
    expect(splitLayerPath('model.layers.norm')).toEqual({ layer: 0, type: 'model.layers.norm' });
  });

  it('round-trips generated paths (property)', () => {
    const ident = fc.stringMatching(/^[a-z_][a-z_0-9]{0,6}$/).filter((s) => !['layer', 'layers', 'h', 'block', 'blocks'].includes(s));
    fc.assert(
      fc.property(
        fc.array(ident, { minLength: 1, maxLength: 3 }),
        fc.constantFrom('layer', 'layers', 'h', 'block', 'blocks'),
        fc.nat({ max: 200 }),
        fc.array(ident, { minLength: 1, maxLength: 3 }),
        (pre, container, l, post) => {
          const path = [...pre, container, String(l), ...post].join('.');
          expect(splitLayerPath(path)).toEqual({ layer: l, type: post.join('.') });
        },
      ),
    );
  });
});

describe('matchesTarget (PEFT semantics)', () => {
  const q = 'bert.encoder.layer.0.attention.self.query';

  it('a list matches on equality or a "."-boundary suffix', () => {
    expect(matchesTarget(q, ['query'])).toBe(true);
    expect(matchesTarget(q, ['self.query'])).toBe(true);
    expect(matchesTarget(q, ['attention.self.query'])).toBe(true);
    expect(matchesTarget(q, [q])).toBe(true);
    expect(matchesTarget(q, ['key', 'query'])).toBe(true);
    expect(matchesTarget(q, ['value'])).toBe(false);
    expect(matchesTarget(q, [])).toBe(false);
    // Suffixes that do not start at a '.' boundary do not match.
    expect(matchesTarget('bert.encoder.layer.0.attention.self.xquery', ['query'])).toBe(false);
    expect(matchesTarget(q, ['elf.query'])).toBe(false);
    expect(matchesTarget(q, ['uery'])).toBe(false);
    // Entries are names, not regexes, inside a list.
    expect(matchesTarget(q, ['.*query'])).toBe(false);
    // A prefix is not a match.
    expect(matchesTarget(q, ['bert.encoder'])).toBe(false);
    expect(matchesTarget(q, ['query.x'])).toBe(false);
  });

  it('list matching is exactly "equal or ends with .entry" (property)', () => {
    const seg = fc.stringMatching(/^[a-z0-9_]{1,5}$/);
    fc.assert(
      fc.property(fc.array(seg, { minLength: 1, maxLength: 6 }), fc.nat(), seg, (segs, k, other) => {
        const path = segs.join('.');
        const suffix = segs.slice(segs.length - 1 - (k % segs.length)).join('.');
        expect(matchesTarget(path, [suffix])).toBe(true);
        // Glueing extra characters to the front of the last component never matches: the last
        // component is preceded by '.' (or nothing), never by other's last character.
        expect(matchesTarget(path, [other + segs[segs.length - 1]!])).toBe(false);
      }),
    );
  });

  it('a string is a regular expression that must match the whole path', () => {
    expect(matchesTarget(q, 'query')).toBe(false); // not a full match
    expect(matchesTarget(q, '.*query')).toBe(true);
    expect(matchesTarget(q, '.*\\.(query|value)')).toBe(true);
    expect(matchesTarget(q, '.*\\.layer\\.0\\..*query')).toBe(true);
    expect(matchesTarget(q, '.*\\.layer\\.1\\..*query')).toBe(false);
    expect(matchesTarget(q, 'bert')).toBe(false);
    // Alternation is anchored as a whole: 'bert|x' must not match by prefix.
    expect(matchesTarget(q, 'bert|.*value')).toBe(false);
    expect(matchesTarget(q, '.*value|.*query')).toBe(true);
  });

  it('"all-linear" selects everything; an invalid regex is a ConfigError naming it', () => {
    expect(matchesTarget(q, 'all-linear')).toBe(true);
    expect(matchesTarget('transformer.h.0.mlp.c_fc', 'all-linear')).toBe(true);
    let err: unknown;
    try {
      matchesTarget(q, '.*(query');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('target_modules');
    expect((err as Error).message).toContain('.*(query');
  });
});

describe('selectModules', () => {
  const bert = presetShape('bert-base');

  it('query+value on BERT-base: 24 modules in model order', () => {
    const sel = selectModules(bert, ['query', 'value']);
    expect(sel).toHaveLength(24);
    expect(sel.map((m) => `${m.layer}:${m.type}`).slice(0, 4)).toEqual([
      '0:attention.self.query',
      '0:attention.self.value',
      '1:attention.self.query',
      '1:attention.self.value',
    ]);
    expect(sel.every((m) => m.in === 768 && m.out === 768)).toBe(true);
    // The same selection as the default targets.
    expect(selectModules(bert, bert.defaultTargets)).toEqual(sel);
    // LoRA r = 8 on query+value: Σ r(n + m) = 24 · 8 · 1536 = 294,912 (METHODS.md check for RoBERTa-base).
    const roberta = presetShape('roberta-base');
    expect(selectModules(roberta, ['query', 'value']).reduce((a, m) => a + 8 * (m.in + m.out), 0)).toBe(294_912);
  });

  it('suffix semantics on shared names: "dense" vs "output.dense"', () => {
    // 'dense' ends attention.output.dense, intermediate.dense and output.dense: 3 per layer.
    expect(selectModules(bert, ['dense'])).toHaveLength(36);
    // 'output.dense' ends attention.output.dense and output.dense (not intermediate.dense).
    const od = selectModules(bert, ['output.dense']);
    expect(od).toHaveLength(24);
    expect(new Set(od.map((m) => m.type))).toEqual(new Set(['attention.output.dense', 'output.dense']));
    expect(selectModules(bert, ['attention.output.dense'])).toHaveLength(12);
  });

  it('regex strings and all-linear', () => {
    expect(selectModules(bert, 'all-linear')).toHaveLength(72);
    expect(selectModules(bert, 'all-linear')).toEqual(bert.modules);
    const first2 = selectModules(bert, '.*\\.layer\\.(0|1)\\..*query');
    expect(first2.map((m) => m.path)).toEqual(['bert.encoder.layer.0.attention.self.query', 'bert.encoder.layer.1.attention.self.query']);
    expect(selectModules(bert, 'query')).toHaveLength(0);
  });

  it('gpt2 c_attn and llama q_proj/v_proj', () => {
    const g = selectModules(presetShape('gpt2'), ['c_attn']);
    expect(g).toHaveLength(12);
    expect(g.every((m) => m.in === 768 && m.out === 2304 && m.fanInFanOut)).toBe(true);
    // 'c_proj' hits both attn.c_proj and mlp.c_proj.
    expect(selectModules(presetShape('gpt2'), ['c_proj'])).toHaveLength(24);
    expect(selectModules(presetShape('gpt2'), ['attn.c_proj'])).toHaveLength(12);
    const l = selectModules(presetShape('llama2-7b'), ['q_proj', 'v_proj']);
    expect(l).toHaveLength(64);
    expect(l[63]!.path).toBe('model.layers.31.self_attn.v_proj');
  });
});
