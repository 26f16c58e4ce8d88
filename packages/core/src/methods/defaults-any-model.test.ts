import { describe, expect, it } from 'vitest';
import { JsBackend, deltaW } from '../backend/js.js';
import { createAdapter, materializeAdapter } from '../io/adapter.js';
import { buildShape } from '../model/architectures.js';
import { presetShape } from '../model/presets.js';
import { countParams } from './generic.js';
import { listMethods } from './registry.js';
import './all.js';

// Tiny models of every architecture (LLaMA with grouped-query attention: 4 query heads, 2 kv
// heads, so k/v are 32 → 16) and dimensions no official table lists (32, 48, 64, 16).
const TINY = {
  bert: buildShape('bert', { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 64 }),
  roberta: buildShape('roberta', { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 64 }),
  distilbert: buildShape('distilbert', { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 64 }),
  gpt2: buildShape('gpt2', { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 128 }),
  llama_gqa: buildShape('llama', { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 48 }),
  vit: buildShape('vit', { hiddenSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 96 }),
};

describe('default configs fit any model', () => {
  for (const [arch, shape] of Object.entries(TINY)) {
    for (const method of listMethods()) {
      it(`${method.cliName} on tiny ${arch}: plans, initializes and materializes with no config`, async () => {
        const a = createAdapter({ method, shape, seed: 1, nonzero: true });
        expect(a.plan.modules.length).toBeGreaterThan(0);
        const ups = await materializeAdapter(a, new JsBackend());
        // ΔW ≠ 0 with --nonzero (a plan that silently dropped a factor would give 0 or NaN).
        for (const u of ups) {
          const w = deltaW(u);
          expect(w.every(Number.isFinite)).toBe(true);
          expect(w.some((x) => x !== 0)).toBe(true);
        }
      });
    }
  }
});

describe('official default counts', () => {
  it('TRAC, LLaMA-2-7B q,v with the tensor_cfg.py tables: 106,496 (paper)', () => {
    // Per module 16·12 + 24 + 16 + 16·36 + 72 + 16 = 896 (×64), per type (24·16 + 72·16)·16 = 24,576 (×2).
    const a = createAdapter({ method: 'trac', shape: presetShape('llama2-7b'), config: { target_modules: ['q_proj', 'v_proj'] } });
    expect(countParams(a.plan).trainable).toBe(106_496);
  });

  it('TRAC, RoBERTa-base defaults: 26,304 (paper)', () => {
    expect(countParams(createAdapter({ method: 'trac', shape: presetShape('roberta-base') }).plan).trainable).toBe(26_304);
  });

  it('TensLoRA defaults target q, k, v', () => {
    const a = createAdapter({ method: 'tenslora', shape: presetShape('roberta-base') });
    expect(new Set(a.plan.modules.map((m) => m.path.split('.').pop()))).toEqual(new Set(['query', 'key', 'value']));
  });
});
