/**
 * A plan must never index past the tensors it declares: a module whose layer index is outside the
 * model's layer count (possible with a hand-made manifest) is refused when planning, with a typed
 * error, instead of reading past C_L and giving NaN (issue 15, D6). Module lists as large as a
 * header allows must not hit engine argument limits (D8).
 */
import { describe, expect, it } from 'vitest';
import { ShapeMismatchError, TensorPeftError } from '../errors.js';
import { adapterFromBytes, materializeAdapter } from '../io/adapter.js';
import { manifestMetadata, shapeFromManifest, MANIFEST_MODULES } from '../io/manifest.js';
import { writeSafetensors } from '../io/safetensors.js';
import { JsBackend } from '../backend/js.js';
import { presetShape } from '../model/presets.js';
import type { ModelShape } from '../model/shape.js';
import { tensor } from '../tensor.js';
import './all.js';
import { lora } from './lora/index.js';
import { maxOf, minOf } from '../util/reduce.js';
import { planVera } from './vera/plan.js';
import { veraConfigSchema } from './vera/config.js';

function randomTensor(shape: number[], seed: number) {
  const t = tensor(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = Math.sin(seed * 7919 + i) * 0.1;
  return t;
}

describe('plan bounds', () => {
  it('D6: a LoRTA file whose modules sit in layers ≥ its manifest num_layers is a typed error, not NaN', async () => {
    const base = presetShape('bert-base');
    const qv = base.modules.filter((m) => m.type.endsWith('query') || m.type.endsWith('value'));
    // The manifest claims 2 layers, but lists modules of layers 0..11; C_L is [2, r] to match.
    const lying: ModelShape = { ...base, numLayers: 2 };
    const meta = manifestMetadata(lying, qv.map((m) => ({ path: m.path, n: m.in, m: m.out, fanInFanOut: false })));
    const r = 4;
    const tensors = new Map([
      ['base_model.lorta_A', randomTensor([768, r], 1)],
      ['base_model.lorta_B', randomTensor([64, r], 2)],
      ['base_model.lorta_C_H', randomTensor([12, r], 3)],
      ['base_model.lorta_C_L', randomTensor([2, r], 4)],
      ['base_model.lorta_C_M', randomTensor([2, r], 5)],
    ]);
    const input = {
      config: JSON.stringify({ peft_type: 'LORTA', r, lora_alpha: 8, target_modules: ['query', 'value'] }),
      safetensors: writeSafetensors(tensors, { metadata: meta }),
      source: 'evil',
    };
    let err: unknown;
    try {
      const a = adapterFromBytes(input);
      // Old behaviour: loads, and the updates of layers ≥ 2 are NaN.
      const ups = await materializeAdapter(a, new JsBackend());
      err = ups.every((u) => u.A.every(Number.isFinite) && u.B.every(Number.isFinite)) ? 'loaded with finite updates' : 'loaded with NaN updates';
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TensorPeftError);
    expect((err as TensorPeftError).message).toMatch(/layer 11/);
    expect((err as TensorPeftError).details.file).toBe('evil/adapter_model.safetensors');
  });

  it('D6: a manifest whose num_heads does not divide hidden_size is refused', () => {
    const base = presetShape('bert-base');
    const meta = manifestMetadata({ ...base, numHeads: 7 }, base.modules.slice(0, 1).map((m) => ({ path: m.path, n: m.in, m: m.out, fanInFanOut: false })));
    expect(() => shapeFromManifest(meta, 'f')).toThrow(TensorPeftError);
  });

  it('D8: a manifest of 200,000 modules without model facts builds its shape (no spread into Math.max)', () => {
    const mods: Record<string, [number, number, number]> = {};
    for (let i = 0; i < 200_000; i++) mods[`m.layer.${i}.q`] = [4, 4 + (i % 3), 0];
    const shape = shapeFromManifest({ [MANIFEST_MODULES]: JSON.stringify(mods) }, 'f')!;
    expect(shape.numLayers).toBe(200_000);
    expect(shape.intermediateSize).toBe(6);
    expect(shape.modules).toHaveLength(200_000);
  });

  it('D8: LoRA inferShape and the VeRA plan over 150,000 modules (past V8\'s ~130,000-argument spread limit)', () => {
    const shapes = new Map<string, number[]>();
    for (let i = 0; i < 150_000; i++) {
      shapes.set(`base_model.model.m.layer.${i}.q.lora_A.weight`, [2, 4]);
      shapes.set(`base_model.model.m.layer.${i}.q.lora_B.weight`, [4 + (i % 5), 2]);
    }
    const inferred = lora.inferShape!({ peft_type: 'LORA', r: 2, lora_alpha: 2, target_modules: ['q'], use_rslora: false } as never, shapes)!;
    expect(inferred.numLayers).toBe(150_000);
    expect(inferred.intermediateSize).toBe(8);
    const vera = planVera(veraConfigSchema.parse({ peft_type: 'VERA', r: 2, target_modules: ['q'] }), inferred);
    expect(vera.params[1]!.shape).toEqual([8, 2]);
  });

  it('D8: maxOf/minOf (used by the TensLoRA plan, whose 150,000-group plan is too slow for a unit test) take 10⁶ values', () => {
    const xs = Array.from({ length: 1_000_000 }, (_, i) => (i * 7919) % 1_000_003);
    expect(maxOf(xs)).toBe(xs.reduce((a, b) => (b > a ? b : a)));
    expect(minOf(xs)).toBe(0);
    expect(maxOf([])).toBe(-Infinity);
  });

  it('plans of ordinary models are unchanged by the bounds', () => {
    expect(() => shapeFromManifest(manifestMetadata(presetShape('gpt2'), presetShape('gpt2').modules.map((m) => ({ path: m.path, n: m.in, m: m.out, fanInFanOut: m.fanInFanOut }))))).not.toThrow();
    expect(ShapeMismatchError).toBeDefined();
  });
});
