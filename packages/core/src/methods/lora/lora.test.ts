import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../backend/js.js';
import { ConfigError } from '../../errors.js';
import { buildShape } from '../../model/architectures.js';
import { presetShape } from '../../model/presets.js';
import { countParams, initParams, materialize, parseMethodConfig } from '../generic.js';
import { lora } from './index.js';

const tiny = (h: number, i: number) => buildShape('bert', { hiddenSize: h, numLayers: 2, numHeads: 1, numKvHeads: 1, intermediateSize: i });

describe('LoRA', () => {
  it('RoBERTa-base q,v r=8 has 294,912 trainable parameters (LoRA paper)', () => {
    const c = parseMethodConfig(lora, { peft_type: 'LORA', r: 8, target_modules: ['query', 'value'] });
    expect(countParams(lora.plan(c, presetShape('roberta-base')))).toEqual({ trainable: 294912, frozen: 0, stored: 294912 });
  });

  it('ΔW = (alpha/r) · lora_B · lora_A, checked by an independent triple loop on random shapes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 13 }),
        fc.integer({ min: 1, max: 17 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1000 }),
        async (r, h, inter, rs, seed) => {
          const c = parseMethodConfig(lora, { peft_type: 'LORA', r, lora_alpha: 3, use_rslora: rs, target_modules: ['query', 'dense'] });
          const plan = lora.plan(c, tiny(h, inter));
          const params = initParams(plan, { seed, nonzero: true });
          const ups = await materialize(lora, c, plan, params, new JsBackend());
          const s = rs ? 3 / Math.sqrt(r) : 3 / r;
          for (const [idx, m] of plan.modules.entries()) {
            const A = params.get(`base_model.model.${m.path}.lora_A.weight`)!.data; // [r, n]
            const B = params.get(`base_model.model.${m.path}.lora_B.weight`)!.data; // [m, r]
            const u = ups[idx]!;
            for (let i = 0; i < m.m; i++)
              for (let j = 0; j < m.n; j++) {
                let ref = 0;
                for (let k = 0; k < r; k++) ref += B[i * r + k]! * A[k * m.n + j]!;
                ref *= s;
                let got = 0;
                for (let k = 0; k < u.rho; k++) got += u.B[i * u.rho + k]! * u.A[j * u.rho + k]!;
                got *= u.s;
                // Both sides sum the same r float32 products in float64: agreement to 1e-12 relative.
                expect(Math.abs(got - ref)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(ref)));
              }
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('faithful init: lora_B = 0 so ΔW = 0; lora_A ~ U(±1/√n)', async () => {
    const c = parseMethodConfig(lora, { peft_type: 'LORA', r: 16, target_modules: ['intermediate.dense'] });
    const plan = lora.plan(c, presetShape('bert-base'));
    const params = initParams(plan, { seed: 3 });
    const ups = await materialize(lora, c, plan, params, new JsBackend());
    expect(ups.every((u) => u.B.every((v) => v === 0))).toBe(true);
    const A = params.get('base_model.model.bert.encoder.layer.0.intermediate.dense.lora_A.weight')!.data;
    const bound = 1 / Math.sqrt(768);
    expect(Math.max(...A.map(Math.abs))).toBeLessThanOrEqual(bound);
    // Uniform(±b): variance b²/3. With N = 16·768 draws the sample variance's s.e. is ≈ b²·0.298/√N.
    const N = A.length;
    const mean = A.reduce((a, b) => a + b, 0) / N;
    const v = A.reduce((a, b) => a + (b - mean) ** 2, 0) / N;
    expect(Math.abs(mean)).toBeLessThan((5 * bound) / Math.sqrt(3 * N));
    expect(Math.abs(v - bound ** 2 / 3)).toBeLessThan((5 * bound ** 2 * 0.298) / Math.sqrt(N));
  });

  it('rejects what it does not implement, naming the field', () => {
    expect(() => parseMethodConfig(lora, { peft_type: 'LORA', use_dora: true }, 'cfg.json')).toThrow(ConfigError);
    expect(() => parseMethodConfig(lora, { peft_type: 'LORA', use_dora: true }, 'cfg.json')).toThrow(/use_dora.*cfg\.json|cfg\.json.*use_dora/);
    expect(() => parseMethodConfig(lora, { peft_type: 'LORA', r: 0 })).toThrow(/field r/);
    expect(() => lora.plan(parseMethodConfig(lora, { peft_type: 'LORA', target_modules: ['nope'] }), presetShape('bert-base'))).toThrow(
      /target_modules.*query/,
    );
  });

  it('preserves PEFT fields it does not interpret', () => {
    const c = parseMethodConfig(lora, { peft_type: 'LORA', task_type: 'SEQ_CLS', loftq_config: {}, megatron_core: 'megatron.core' });
    expect(c.task_type).toBe('SEQ_CLS');
    expect(c['megatron_core']).toBe('megatron.core');
  });
});
