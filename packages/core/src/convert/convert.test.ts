import { describe, expect, it } from 'vitest';
import { ConfigError, ShapeMismatchError } from '../errors.js';
import { adapterFromBytes, adapterToFiles, createAdapter, type Adapter } from '../io/adapter.js';
import { diffAdapters } from '../io/diff.js';
import { exportToLora } from '../io/export.js';
import { countParams } from '../methods/generic.js';
import { buildShape } from '../model/architectures.js';
import { Prng } from '../util/prng.js';
import { convertLora, type ConvertOptions } from './convert.js';
import { lorettaFitter } from './fit-loretta.js';
import { lortaFitter } from './fit-lorta.js';
import { tensloraFitter } from './fit-tenslora.js';
import { tracFitter } from './fit-trac.js';
import type { FitContext, MethodFitter } from './fitter.js';
import { lossFunction, ParamVector } from './model.js';
import { loraTarget } from './target.js';
import { configForShape } from '../io/adapter.js';
import { getMethod } from '../methods/registry.js';
import '../methods/all.js';

/** Tiny BERT: hidden 12, 2 heads (d/H = 6), 3 layers. */
const shape = buildShape('bert', { hiddenSize: 12, numLayers: 3, numHeads: 2, numKvHeads: 2, intermediateSize: 24 }, 'tiny-bert');

function lora(seed = 1, r = 2): Adapter {
  return createAdapter({ method: 'lora', config: { r, lora_alpha: 2 * r, target_modules: ['query', 'value'] }, shape, seed, nonzero: true });
}

async function roundTrip(a: Adapter): Promise<Adapter> {
  const f = adapterToFiles(a);
  return adapterFromBytes({ config: f.configJson, safetensors: f.safetensors });
}

const FITTERS: Record<string, MethodFitter> = { trac: tracFitter, loretta: lorettaFitter, lorta: lortaFitter, tenslora: tensloraFitter };

/** Config of each method on the tiny shape (ranks given). */
const CONFIGS: Record<string, Record<string, unknown>> = {
  trac: { r: 2, lora_alpha: 4, target_modules: ['query', 'value'], tensor_shape: [2, 2, 3], tensor_rank_a: [1, 2, 3], tensor_rank_b: [1, 2, 3] },
  loretta: { r: 2, lora_alpha: 4, target_modules: ['query', 'value'], tensor_rank: 2, tensor_shape_a: [2, 2, 3, 2], tensor_shape_b: [2, 2, 2, 3] },
  lorta: { r: 3, lora_alpha: 3, target_modules: ['query', 'value'] },
  tenslora: { construction: 'qkv_depth', ranks: [3, 3, 2, 2], target_modules: ['query', 'value'] },
  tenslora_att: { construction: 'att_qkv_depth', ranks: [3, 3, 2, 2, 2], target_modules: ['query', 'value'] },
};

async function ctxFor(src: Adapter, seed = 0): Promise<FitContext> {
  return { target: await loraTarget(src), shape, seed, fitFrozen: true, base: {}, memo: new Map() };
}

describe('method models: analytic gradients match finite differences', () => {
  for (const [name, cfg] of Object.entries(CONFIGS)) {
    it(name, async () => {
      const method = name.startsWith('tenslora') ? 'tenslora' : name;
      const fitter = FITTERS[method]!;
      const ctx = await ctxFor(lora());
      const { config, plan } = configForShape(getMethod(method), { ...cfg, ...(method === 'trac' ? { controller_activation: 'softmax' } : {}) }, shape);
      const values = new Map<string, Float64Array>();
      const g = new Prng(21, name);
      for (const p of plan.params) values.set(p.key, Float64Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => 0.5 * g.normal()));
      const model = fitter.model(ctx, config as Record<string, unknown>, plan);
      const pv = new ParamVector(plan, values, fitter.fitted(ctx, plan));
      const loss = lossFunction(model, ctx.target, pv);
      const theta = pv.pack();
      const grad = new Float64Array(theta.length);
      loss(theta, grad);
      const scratch = new Float64Array(theta.length);
      // Check a spread of coordinates (every tensor is hit for these small plans).
      const step = Math.max(1, Math.floor(theta.length / 60));
      for (let i = 0; i < theta.length; i += step) {
        const h = 1e-5;
        const p = Float64Array.from(theta);
        p[i]! += h;
        const q = Float64Array.from(theta);
        q[i]! -= h;
        const fd = (loss(p, scratch) - loss(q, scratch)) / (2 * h);
        expect(Math.abs(grad[i]! - fd)).toBeLessThan(1e-5 * Math.max(1, Math.abs(fd)));
      }
    });
  }
});

describe('exact recovery: a LoRA built from a tensor-method adapter is fitted back to rel_error < 1e-3', () => {
  for (const [name, cfg] of Object.entries(CONFIGS)) {
    it(name, async () => {
      const method = name.startsWith('tenslora') ? 'tenslora' : name;
      const truth = createAdapter({ method, config: cfg, shape, seed: 5, nonzero: true });
      const src = await exportToLora(truth);
      const res = await convertLora(src, { to: method, config: cfg, iters: 300, alsSweeps: 50 });
      expect(res.rel_error).toBeLessThan(1e-3);
      const back = await roundTrip(res.adapter);
      const d = await diffAdapters(src, back, undefined, { dense: false });
      expect(Math.abs(d.rel_fro - res.rel_error)).toBeLessThan(1e-5);
    });
  }
  // With random gates the stacked unfoldings are no longer exactly low-rank, so the init is only
  // approximate (rel ≈ 0.2) and the fit converges slowly: measured ≈ 6e-3 after 3000 L-BFGS
  // iterations (seeds 6–8: 2e-3 … 7e-3). This pins down steady progress, not exactness.
  it('trac with random controller gates (harder: init not exact, slow convergence)', async () => {
    const cfg = { ...CONFIGS.trac!, controller_activation: 'softmax' };
    const truth = createAdapter({ method: 'trac', config: cfg, shape, seed: 6, nonzero: true });
    const g = new Prng(6, 'gates');
    for (const [k, t] of truth.params) if (/trac_[AB]_[bd]$/.test(k)) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.5 * g.normal();
    const src = await exportToLora(truth);
    const res = await convertLora(src, { to: 'trac', config: cfg, iters: 1000 });
    expect(res.init_rel_error).toBeGreaterThan(0.05);
    expect(res.rel_error).toBeLessThan(0.1 * res.init_rel_error);
  });
});

describe('budget', () => {
  const src = lora(3, 4);
  const cases: [string, ConvertOptions][] = [
    ['trac', { to: 'trac', config: { tensor_shape: [2, 2, 3] } }],
    ['trac keep frozen random', { to: 'trac', config: { tensor_shape: [2, 2, 3] }, fitFrozen: false }],
    ['trac all_trainable', { to: 'trac', config: { tensor_shape: [2, 2, 3], variant: 'all_trainable' } }],
    ['loretta', { to: 'loretta' }],
    ['lorta', { to: 'lorta' }],
    ['tenslora', { to: 'tenslora' }],
  ];
  for (const [name, opts] of cases) {
    it(`${name}: the chosen adapter never exceeds the budget (trainable + fitted frozen)`, async () => {
      for (const budget of [300, 700, 1500]) {
        const res = await convertLora(src, { ...opts, budget, iters: 3, alsSweeps: 2 });
        const counts = countParams(res.adapter.plan);
        expect(res.params_fitted).toBeLessThanOrEqual(budget);
        expect(res.params_after).toBeLessThanOrEqual(budget);
        expect(res.params_after).toBe(counts.trainable);
        expect(res.params_after_stored).toBe(counts.stored);
        if (opts.fitFrozen === false) expect(res.params_fitted).toBe(counts.trainable);
        expect(res.rel_error).toBeLessThanOrEqual(1 + 1e-9);
        expect(res.rel_error).toBeLessThanOrEqual(res.init_rel_error + 1e-12);
        expect(res.svd_rel_error).toBeGreaterThanOrEqual(0);
        // The fitters' formula counts agree with the real plans.
        for (const c of res.candidates) expect(c.params).toBeLessThanOrEqual(budget);
      }
    });
  }
  it('the ratio sets budget = floor(LoRA params / ratio)', async () => {
    const res = await convertLora(src, { to: 'loretta', ratio: 3, iters: 2 });
    expect(res.budget).toBe(Math.floor(res.params_before / 3));
    expect(res.params_before).toBe(countParams(src.plan).trainable);
  });
});

describe('determinism', () => {
  for (const to of ['trac', 'loretta', 'lorta', 'tenslora']) {
    it(`${to}: the same seed gives the same bytes`, async () => {
      const src = lora(4, 3);
      const opts: ConvertOptions = { to, budget: 800, seed: 7, iters: 10, alsSweeps: 3, ...(to === 'trac' ? { config: { tensor_shape: [2, 2, 3] } } : {}) };
      const a = adapterToFiles((await convertLora(src, opts)).adapter);
      const b = adapterToFiles((await convertLora(src, opts)).adapter);
      expect(Buffer.from(a.safetensors).equals(Buffer.from(b.safetensors))).toBe(true);
      expect(a.configJson).toBe(b.configJson);
    });
  }
});

describe('bad input is a typed error naming the field or module', () => {
  it('source is not a LoRA adapter', async () => {
    const trac = createAdapter({ method: 'trac', config: CONFIGS.trac, shape, nonzero: true });
    const e = await convertLora(trac, { to: 'loretta', budget: 1000 }).catch((x) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.details.field).toBe('peft_type');
    expect(e.details.found).toBe('TRAC');
  });
  it('budget too small for any rank', async () => {
    for (const to of ['trac', 'loretta', 'lorta', 'tenslora']) {
      const e = await convertLora(lora(), { to, budget: 5, ...(to === 'trac' ? { config: { tensor_shape: [2, 2, 3] } } : {}) }).catch((x) => x);
      expect(e, to).toBeInstanceOf(ConfigError);
      expect(e.details.field).toBe('budget');
      expect(e.details.found).toBe(5);
    }
  });
  it('LoRTA on non-square modules names the module', async () => {
    const src = createAdapter({ method: 'lora', config: { r: 2, target_modules: ['query', 'intermediate.dense'] }, shape, nonzero: true });
    const e = await convertLora(src, { to: 'lorta', ratio: 2 }).catch((x) => x);
    expect(e).toBeInstanceOf(ShapeMismatchError);
    expect(e.details.field).toBe('bert.encoder.layer.0.intermediate.dense');
    expect(e.details.found).toEqual([12, 24]);
  });
  it('TensLoRA construction that cannot aggregate the modules names the module', async () => {
    const src = createAdapter({ method: 'lora', config: { r: 2, target_modules: ['query', 'intermediate.dense'] }, shape, nonzero: true });
    const e = await convertLora(src, { to: 'tenslora', ratio: 2, config: { construction: 'qkv_depth' } }).catch((x) => x);
    expect(e).toBeInstanceOf(ShapeMismatchError);
    expect(String(e.details.field)).toMatch(/intermediate\.dense/);
    // Without a fixed construction, one that fits (per type: depth, att…) is chosen.
    const ok = await convertLora(src, { to: 'tenslora', ratio: 2, iters: 2, alsSweeps: 1 });
    expect(['depth']).toContain(ok.adapter.config.construction);
  });
  it('ranks with a budget, unknown target, budget and ratio together', async () => {
    let e = await convertLora(lora(), { to: 'lorta', budget: 500, config: { r: 4 } }).catch((x) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.details.field).toBe('r');
    e = await convertLora(lora(), { to: 'vera', budget: 500 }).catch((x) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.details.field).toBe('to');
    e = await convertLora(lora(), { to: 'lorta', budget: 500, ratio: 2 }).catch((x) => x);
    expect(e).toBeInstanceOf(ConfigError);
  });
});
