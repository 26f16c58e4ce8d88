/**
 * The two real PEFT LoRA adapters (fixtures/peft-real) converted at 10× fewer
 * parameters to every method that can apply. Few iterations keep this fast; the measured curves
 * with full fits are in docs/compression.md.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ShapeMismatchError } from '../errors.js';
import { adapterFromBytes, adapterToFiles } from '../io/adapter.js';
import { diffAdapters } from '../io/diff.js';
import { loadAdapter } from '../io/load.js';
import { convertLora } from './convert.js';
import '../methods/all.js';

const FIXTURES = fileURLToPath(new URL('../../../../fixtures/peft-real/', import.meta.url));

const CASES: [string, string[]][] = [
  ['distilbert-lora-emotion', ['trac', 'loretta', 'lorta', 'tenslora']],
  ['gpt2-lora-tigrinya', ['trac', 'loretta', 'tenslora']],
];

describe.each(CASES)('%s at 10× fewer parameters', (name, methods) => {
  it.each(methods)('→ %s: fits the budget, reloads, and diff reproduces rel_error', async (to) => {
    const src = await loadAdapter(FIXTURES + name);
    const res = await convertLora(src, { to, ratio: 10, iters: 5, alsSweeps: 2, seed: 0 });
    expect(res.budget).toBe(Math.floor(res.params_before / 10));
    expect(res.params_fitted).toBeLessThanOrEqual(res.budget!);
    expect(res.rel_error).toBeLessThan(1);
    expect(res.svd_rel_error).toBeGreaterThan(0);
    expect(res.svd_rel_error).toBeLessThan(1);
    // Written and read back (fp32), the factored diff gives the same error.
    const f = adapterToFiles(res.adapter);
    const back = adapterFromBytes({ config: f.configJson, safetensors: f.safetensors });
    expect(back.config.peft_type).toBe(res.adapter.config.peft_type);
    expect(back.plan.modules.length).toBe(src.plan.modules.length);
    const d = await diffAdapters(src, back, undefined, { dense: false });
    expect(Math.abs(d.rel_fro - res.rel_error)).toBeLessThan(1e-6);
    // The classifier heads (modules_to_save) travel with the adapter.
    expect([...back.extras.keys()].sort()).toEqual([...src.extras.keys()].sort());
  });
});

describe('gpt2-lora-tigrinya → lorta', () => {
  it('is refused: c_attn (768 → 2304) and mlp.c_proj (3072 → 768) are not square', async () => {
    const src = await loadAdapter(FIXTURES + 'gpt2-lora-tigrinya');
    const e = await convertLora(src, { to: 'lorta', ratio: 10 }).catch((x) => x);
    expect(e).toBeInstanceOf(ShapeMismatchError);
    expect(e.details.field).toBe('transformer.h.0.attn.c_attn');
    expect(e.details.found).toEqual([768, 2304]);
    expect(e.message).toMatch(/LoRTA needs every target to be square/);
  });
});
