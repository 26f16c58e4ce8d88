import { describe, expect, it } from 'vitest';
import { JsBackend, deltaW } from '../../backend/js.js';
import { ConfigError, ShapeMismatchError, TensorPeftError } from '../../errors.js';
import { buildShape } from '../../model/architectures.js';
import { presetShape } from '../../model/presets.js';
import type { Tensor, TensorMap } from '../../tensor.js';
import { Prng } from '../../util/prng.js';
import { countParams, initParams, materialize, parseMethodConfig } from '../generic.js';
import type { ParamPlan } from '../types.js';
import { trac, type TracConfig } from './index.js';

const VARIANTS = ['trac', 'shared_tt', 'frozen', 'all_trainable'] as const;
const ACTIVATIONS = ['linear', 'softmax', 'exp'] as const;

const roberta = presetShape('roberta-base');
const tiny = buildShape('bert', { hiddenSize: 24, numLayers: 2, numHeads: 2, numKvHeads: 2, intermediateSize: 48 });
const TINY_SHAPES = { '24': [2, 3, 4], '48': [4, 3, 4] };

const cfg = (raw: Record<string, unknown>): TracConfig => parseMethodConfig(trac, { peft_type: 'TRAC', ...raw });

function thrown(f: () => unknown): TensorPeftError {
  try {
    f();
  } catch (e) {
    if (e instanceof TensorPeftError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

// ---------------------------------------------------------------------------------------------
// Counts, written out from the formula in METHODS.md (independent of the plan code).

interface Dims {
  sh: number[]; // [n1, n2, n3]
  sm: number[]; // [m1, m2, m3]
  ra: number[]; // [1, r1, r2]
  rb: number[]; // [1, s1, s2]
}

function formulaCounts(variant: string, r: number, types: { dims: Dims; modules: number }[]): { trainable: number; frozen: number } {
  let trainable = 0;
  let frozen = 0;
  for (const { dims, modules } of types) {
    const [n1, n2, n3] = dims.sh as [number, number, number];
    const [m1, m2, m3] = dims.sm as [number, number, number];
    const [, r1, r2] = dims.ra as [number, number, number];
    const [, s1, s2] = dims.rb as [number, number, number];
    const first = n1 * r1 + m1 * s1;
    const ctrl = r2 + n3 + s2 + m3;
    const middle = r1 * n2 * r2 + s1 * m2 * s2;
    const last = r2 * n3 * r + s2 * m3 * r;
    switch (variant) {
      case 'trac':
        trainable += modules * (first + ctrl) + last;
        frozen += middle;
        break;
      case 'shared_tt':
        trainable += modules * first + last;
        frozen += middle;
        break;
      case 'frozen':
        trainable += modules * (first + ctrl);
        frozen += middle + last;
        break;
      case 'all_trainable':
        trainable += modules * (first + middle + last);
        break;
    }
  }
  return { trainable, frozen };
}

describe('TRAC parameter counts', () => {
  it('RoBERTa-base q,v, 768→[8,8,12], A [1,8,12], B [1,24,36], r=16: trac 26,304 and all_trainable 411,648 (paper)', () => {
    const base = { r: 16, target_modules: ['query', 'value'], tensor_shape: [8, 8, 12], tensor_rank_a: [1, 8, 12], tensor_rank_b: [1, 24, 36] };
    expect(countParams(trac.plan(cfg({ ...base, variant: 'trac' }), roberta)).trainable).toBe(26304);
    expect(countParams(trac.plan(cfg({ ...base, variant: 'all_trainable' }), roberta)).trainable).toBe(411648);
    // The defaults are the paper's RoBERTa setup.
    expect(countParams(trac.plan(cfg({}), roberta)).trainable).toBe(26304);
  });

  it('all four variants match the formula on RoBERTa-base q,v', () => {
    const dims: Dims = { sh: [8, 8, 12], sm: [8, 8, 12], ra: [1, 8, 12], rb: [1, 24, 36] };
    for (const variant of VARIANTS) {
      const want = formulaCounts(variant, 16, [
        { dims, modules: 12 },
        { dims, modules: 12 },
      ]);
      const got = countParams(trac.plan(cfg({ variant }), roberta));
      expect(got, variant).toEqual({ ...want, stored: want.trainable + want.frozen });
    }
  });

  it('all four variants match the formula on a mixed-shape model (square and FFN modules, 6 types)', () => {
    const sq: Dims = { sh: [2, 3, 4], sm: [2, 3, 4], ra: [1, 2, 3], rb: [1, 3, 5] };
    const up: Dims = { sh: [2, 3, 4], sm: [4, 3, 4], ra: [1, 2, 3], rb: [1, 3, 5] };
    const down: Dims = { sh: [4, 3, 4], sm: [2, 3, 4], ra: [1, 2, 3], rb: [1, 3, 5] };
    for (const variant of VARIANTS) {
      const c = cfg({ variant, r: 4, target_modules: 'all-linear', tensor_shape: TINY_SHAPES, tensor_rank_a: [1, 2, 3], tensor_rank_b: [1, 3, 5] });
      const want = formulaCounts(variant, 4, [
        ...[0, 1, 2, 3].map(() => ({ dims: sq, modules: 2 })),
        { dims: up, modules: 2 },
        { dims: down, modules: 2 },
      ]);
      expect(countParams(trac.plan(c, tiny)), variant).toEqual({ ...want, stored: want.trainable + want.frozen });
    }
  });

  it('shares per matrix type with the documented keys and shapes', () => {
    const plan = trac.plan(cfg({}), roberta);
    const byKey = new Map(plan.params.map((p) => [p.key, p]));
    const q = 'attention.self.query';
    expect(byKey.get(`base_model.trac_A_G2.${q}`)).toMatchObject({ shape: [8, 8, 12], kind: 'frozen', shared: q });
    expect(byKey.get(`base_model.trac_A_G3.${q}`)).toMatchObject({ shape: [12, 12, 16], kind: 'trainable', shared: q });
    expect(byKey.get(`base_model.trac_B_O2.${q}`)).toMatchObject({ shape: [24, 8, 36], kind: 'frozen', shared: q });
    expect(byKey.get(`base_model.trac_B_O3.${q}`)).toMatchObject({ shape: [36, 12, 16], kind: 'trainable', shared: q, zeroInit: true });
    const p = 'roberta.encoder.layer.5.attention.self.value';
    expect(byKey.get(`base_model.model.${p}.trac_A_G1`)).toMatchObject({ shape: [1, 8, 8], kind: 'trainable', module: p });
    expect(byKey.get(`base_model.model.${p}.trac_A_b`)).toMatchObject({ shape: [12], init: { dist: 'ones' } });
    expect(byKey.get(`base_model.model.${p}.trac_A_d`)).toMatchObject({ shape: [12] });
    expect(byKey.get(`base_model.model.${p}.trac_B_O1`)).toMatchObject({ shape: [1, 8, 24] });
    expect(byKey.get(`base_model.model.${p}.trac_B_b`)).toMatchObject({ shape: [36] });
    expect(byKey.get(`base_model.model.${p}.trac_B_d`)).toMatchObject({ shape: [12] });
    // 2 types × 4 shared cores + 24 modules × 6 per-module tensors.
    expect(plan.params.length).toBe(2 * 4 + 24 * 6);
    const all = trac.plan(cfg({ variant: 'all_trainable' }), roberta);
    expect(all.params.every((x) => x.module !== undefined && x.kind === 'trainable')).toBe(true);
    expect(all.params.filter((x) => x.zeroInit).map((x) => x.key.split('.').pop())).toEqual(Array(24).fill('trac_B_O3'));
  });
});

// ---------------------------------------------------------------------------------------------
// ΔW from materialize against a naive einsum over the cores.

function σ(kind: string, v: Float32Array): number[] {
  const x = [...v];
  if (kind === 'linear') return x;
  if (kind === 'exp') return x.map(Math.exp);
  const z = x.reduce((a, b) => a + Math.exp(b), 0);
  return x.map((b) => (x.length * Math.exp(b)) / z);
}

/** X[i, j] = Σ_{a1,a2} C1[0,i1,a1] C2[a1,i2,a2] g_rank[a2] g_mode[i3] C3[a2,i3,j], i = (i1·d2 + i2)·d3 + i3. */
function naiveTT3(C1: Tensor, C2: Tensor, C3: Tensor, gRank?: number[], gMode?: number[]): number[][] {
  const [, d1, q1] = C1.shape as [number, number, number];
  const [, d2, q2] = C2.shape as [number, number, number];
  const [, d3, r] = C3.shape as [number, number, number];
  const out: number[][] = [];
  for (let i1 = 0; i1 < d1; i1++)
    for (let i2 = 0; i2 < d2; i2++)
      for (let i3 = 0; i3 < d3; i3++) {
        const row: number[] = [];
        for (let j = 0; j < r; j++) {
          let acc = 0;
          for (let a1 = 0; a1 < q1; a1++)
            for (let a2 = 0; a2 < q2; a2++) {
              const g = (gRank ? gRank[a2]! : 1) * (gMode ? gMode[i3]! : 1);
              acc += C1.data[i1 * q1 + a1]! * C2.data[(a1 * d2 + i2) * q2 + a2]! * g * C3.data[(a2 * d3 + i3) * r + j]!;
            }
          row.push(acc);
        }
        out[(i1 * d2 + i2) * d3 + i3] = row;
      }
  return out;
}

function get(params: TensorMap, key: string): Tensor {
  const t = params.get(key);
  if (!t) throw new Error(`test: missing ${key}`);
  return t;
}

/** Reference ΔW [m][n] for one module, reading the tensors by their documented keys. */
function referenceDelta(c: TracConfig, params: TensorMap, path: string, type: string): number[][] {
  const perModule = (k: number) => c.variant === 'all_trainable' || k === 1;
  const key = (name: string, k: number) => (perModule(k) ? `base_model.model.${path}.${name}` : `base_model.${name}.${type}`);
  const gated = c.variant === 'trac' || c.variant === 'frozen';
  const ctrl = (name: string) => (gated ? σ(c.controller_activation, get(params, `base_model.model.${path}.${name}`).data) : undefined);
  const A = naiveTT3(get(params, key('trac_A_G1', 1)), get(params, key('trac_A_G2', 2)), get(params, key('trac_A_G3', 3)), ctrl('trac_A_b'), ctrl('trac_A_d'));
  const B = naiveTT3(get(params, key('trac_B_O1', 1)), get(params, key('trac_B_O2', 2)), get(params, key('trac_B_O3', 3)), ctrl('trac_B_b'), ctrl('trac_B_d'));
  const s = c.lora_alpha / c.r;
  return B.map((b) => A.map((a) => s * a.reduce((acc, v, j) => acc + v * b[j]!, 0)));
}

/** Replace every controller with random values so that the gate is not the identity. */
function scrambleControllers(plan: ParamPlan, params: TensorMap, seed: number): void {
  const g = new Prng(seed, 'controllers');
  for (const p of plan.params) {
    if (/trac_[AB]_[bd]$/.test(p.key)) {
      const t = get(params, p.key);
      for (let i = 0; i < t.data.length; i++) t.data[i] = 0.5 + g.uniform();
    }
  }
}

describe('TRAC materialize', () => {
  for (const variant of VARIANTS) {
    for (const act of ACTIVATIONS) {
      it(`ΔW equals a naive einsum over the cores: ${variant} × ${act} (square and FFN modules)`, async () => {
        const c = cfg({
          variant,
          controller_activation: act,
          r: 4,
          lora_alpha: 6,
          target_modules: 'all-linear',
          tensor_shape: TINY_SHAPES,
          tensor_rank_a: [1, 2, 3],
          tensor_rank_b: [1, 3, 5],
        });
        const plan = trac.plan(c, tiny);
        const params = initParams(plan, { seed: 11, nonzero: true });
        scrambleControllers(plan, params, 5);
        const ups = await materialize(trac, c, plan, params, new JsBackend());
        expect(ups.length).toBe(12);
        for (const [idx, mod] of plan.modules.entries()) {
          const u = ups[idx]!;
          expect([u.path, u.n, u.m, u.rho, u.s]).toEqual([mod.path, mod.n, mod.m, 4, 6 / 4]);
          const got = deltaW(u);
          const ref = referenceDelta(c, params, mod.path, mod.type);
          let scale = 0;
          for (const row of ref) for (const v of row) scale = Math.max(scale, Math.abs(v));
          expect(scale).toBeGreaterThan(0);
          for (let o = 0; o < mod.m; o++)
            for (let i = 0; i < mod.n; i++) {
              // float32 storage of A′, B′ and ΔW: a few ulps of the largest entry.
              expect(Math.abs(got[o * mod.n + i]! - ref[o]![i]!)).toBeLessThanOrEqual(1e-5 * scale);
            }
        }
      });
    }
  }

  it('the last core of B is zero-initialized, so ΔW = 0 exactly, in every variant and activation', async () => {
    for (const variant of VARIANTS) {
      for (const act of ACTIVATIONS) {
        const c = cfg({ variant, controller_activation: act, r: 4, target_modules: 'all-linear', tensor_shape: TINY_SHAPES, tensor_rank_a: [1, 2, 3], tensor_rank_b: [1, 3, 5] });
        const plan = trac.plan(c, tiny);
        const ups = await materialize(trac, c, plan, initParams(plan, { seed: 3 }), new JsBackend());
        for (const u of ups) expect(deltaW(u).every((v) => v === 0)).toBe(true);
      }
    }
  });

  it('controllers start as the identity gate: ones for linear/softmax, zeros for exp', () => {
    for (const act of ACTIVATIONS) {
      const plan = trac.plan(cfg({ controller_activation: act }), roberta);
      const ctrl = plan.params.filter((p) => /trac_[AB]_[bd]$/.test(p.key));
      expect(ctrl.length).toBe(24 * 4);
      for (const p of ctrl) expect(p.init).toEqual(act === 'exp' ? { dist: 'zeros' } : { dist: 'ones' });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Init statistics.

describe('TRAC init', () => {
  const big = { r: 64, tensor_rank_a: [1, 32, 64], tensor_rank_b: [1, 32, 64], target_modules: ['query'] };

  function expectedScale(c: TracConfig, key: string, shape: number[], perModule: boolean): number {
    const isA = key.includes('trac_A_');
    if (c.init === 'kaiming_normal' || c.init === 'kaiming_uniform') return Math.sqrt(2 / (isA ? 768 : c.r));
    const N = perModule ? 3 : c.init_order_shared;
    return (1 / Math.sqrt(shape[2]!)) * Math.pow(1 / (768 + 768), 1 / (2 * N));
  }

  for (const init of ['tt_normal', 'tt_uniform', 'kaiming_normal', 'kaiming_uniform'] as const) {
    for (const order of [3, 4]) {
      it(`${init} (shared N = ${order}): every core has the specified scale, and sample mean/variance within 5 standard errors`, () => {
        for (const variant of ['trac', 'all_trainable'] as const) {
          const c = cfg({ ...big, init, variant, init_order_shared: order });
          const plan = trac.plan(c, roberta);
          const params = initParams(plan, { seed: 2024 });
          let checked = 0;
          for (const p of plan.params) {
            if (p.zeroInit || p.shape.length !== 3) continue;
            const scale = expectedScale(c, p.key, p.shape, p.module !== undefined);
            const uniform = init.endsWith('uniform');
            expect(p.init).toEqual(uniform ? { dist: 'uniform', bound: scale } : { dist: 'normal', std: scale });
            const x = get(params, p.key).data;
            const k = x.length;
            let mean = 0;
            for (const v of x) mean += v;
            mean /= k;
            let v2 = 0;
            for (const v of x) v2 += (v - mean) ** 2;
            v2 /= k - 1;
            // Normal: var = σ², SE(var̂) = σ²·√(2/(k−1)). Uniform(±b): var = b²/3, μ4 = b⁴/5.
            const variance = uniform ? scale ** 2 / 3 : scale ** 2;
            const seVar = uniform ? Math.sqrt((scale ** 4 / 5 - variance ** 2) / k) : variance * Math.sqrt(2 / (k - 1));
            expect(Math.abs(mean)).toBeLessThanOrEqual(5 * Math.sqrt(variance / k));
            expect(Math.abs(v2 - variance)).toBeLessThanOrEqual(5 * seVar);
            if (uniform) expect(x.every((v) => Math.abs(v) <= scale)).toBe(true);
            checked++;
          }
          expect(checked).toBeGreaterThan(variant === 'trac' ? 4 : 20);
        }
      });
    }
  }

  it('same seed → identical bytes; different seed → different values for every random tensor', () => {
    const c = cfg({ target_modules: 'all-linear', tensor_shape: TINY_SHAPES, r: 4, tensor_rank_a: [1, 2, 3], tensor_rank_b: [1, 3, 5] });
    const plan = trac.plan(c, tiny);
    const a = initParams(plan, { seed: 9 });
    const b = initParams(plan, { seed: 9 });
    const d = initParams(plan, { seed: 10 });
    for (const p of plan.params) {
      const x = new Uint8Array(get(a, p.key).data.buffer);
      expect(new Uint8Array(get(b, p.key).data.buffer)).toEqual(x);
      if (p.init.dist === 'normal' || p.init.dist === 'uniform') {
        expect(new Uint8Array(get(d, p.key).data.buffer)).not.toEqual(x);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Bad configs.

describe('TRAC config errors', () => {
  it('fills the documented defaults', () => {
    const c = cfg({});
    expect(c).toMatchObject({
      r: 16,
      lora_alpha: 32,
      target_modules: ['query', 'value'],
      controller_activation: 'softmax',
      variant: 'trac',
      init: 'tt_normal',
      init_order_shared: 3,
    });
    expect(c.tensor_shape).toEqual({ '768': [8, 8, 12], '1024': [8, 8, 16], '1280': [8, 8, 20], '4096': [16, 16, 16], '5120': [16, 16, 20] });
    // tensor_cfg.py HIDDEN_SIZE_TO_TENSOR_RANK_A / _B.
    expect(c.tensor_rank_a).toEqual({ '768': [1, 8, 12], '1024': [1, 8, 12], '1280': [1, 12, 24], '4096': [1, 12, 24], '5120': [1, 15, 30] });
    expect(c.tensor_rank_b).toEqual({ '768': [1, 24, 36], '1024': [1, 24, 36], '1280': [1, 36, 72], '4096': [1, 36, 72], '5120': [1, 45, 90] });
  });

  it('a tensor_shape whose product is not the dimension names module, dimension and shape', () => {
    const e = thrown(() => trac.plan(cfg({ tensor_shape: [8, 8, 8] }), roberta));
    expect(e).toBeInstanceOf(ShapeMismatchError);
    expect(e.message).toContain('roberta.encoder.layer.0.attention.self.query');
    expect(e.message).toContain('768');
    expect(e.message).toContain('[8, 8, 8]');
    expect(e.details.field).toBe('tensor_shape');
    // A list used for every dimension does not fit the FFN's 3072.
    const f = thrown(() => trac.plan(cfg({ tensor_shape: [8, 8, 12], target_modules: ['intermediate.dense'] }), roberta));
    expect(f).toBeInstanceOf(ShapeMismatchError);
    expect(f.message).toContain('intermediate.dense');
    expect(f.message).toContain('3072');
    // A map without the dimension.
    const g = thrown(() => trac.plan(cfg({ target_modules: ['output.dense'] }), roberta));
    expect(g).toBeInstanceOf(ConfigError);
    expect(g.details.field).toBe('tensor_shape.3072');
    // A map entry with the wrong product.
    const h = thrown(() => trac.plan(cfg({ tensor_shape: { '768': [8, 8, 12], '3072': [8, 8, 12] }, target_modules: ['intermediate.dense'] }), roberta));
    expect(h.details.field).toBe('tensor_shape.3072');
  });

  it('non-square modules work when the map covers both dimensions', () => {
    const lists = { tensor_rank_a: [1, 8, 12], tensor_rank_b: [1, 24, 36] };
    const c = cfg({ ...lists, tensor_shape: { '768': [8, 8, 12], '3072': [12, 16, 16] }, target_modules: ['intermediate.dense', 'output.dense'] });
    const plan = trac.plan(c, roberta);
    const byKey = new Map(plan.params.map((p) => [p.key, p]));
    expect(byKey.get('base_model.trac_B_O3.intermediate.dense')!.shape).toEqual([36, 16, 16]);
    expect(byKey.get('base_model.trac_A_G3.output.dense')!.shape).toEqual([12, 16, 16]);
    const gpt2 = presetShape('gpt2');
    const g = cfg({ ...lists, tensor_shape: { '768': [8, 8, 12], '2304': [8, 12, 24] }, target_modules: ['c_attn'] });
    expect(trac.plan(g, gpt2).params.find((p) => p.key === 'base_model.trac_B_O3.attn.c_attn')!.shape).toEqual([36, 24, 16]);
  });

  it('rejects malformed fields with the field named', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ tensor_shape: [8, 96] }, 'tensor_shape'],
      [{ tensor_shape: [8, 8, 3, 4] }, 'tensor_shape'],
      [{ tensor_shape: { '768': [8, 96] } }, 'tensor_shape.768'],
      [{ tensor_shape: { hidden: [8, 8, 12] } }, 'tensor_shape.hidden'],
      [{ tensor_shape: [8, 0, 12] }, 'tensor_shape'],
      [{ tensor_rank_a: [2, 8, 12] }, 'tensor_rank_a'],
      [{ tensor_rank_a: [1, 8] }, 'tensor_rank_a'],
      [{ tensor_rank_b: [1, 24, 36, 4] }, 'tensor_rank_b'],
      [{ variant: 'bogus' }, 'variant'],
      [{ controller_activation: 'relu' }, 'controller_activation'],
      [{ init: 'xavier' }, 'init'],
      [{ r: 0 }, 'r'],
      [{ init_order_shared: 0 }, 'init_order_shared'],
      [{ tensor_ranks: [1, 8, 12] }, 'tensor_ranks'],
      [{ hidden_size: 768 }, 'hidden_size'],
    ];
    for (const [raw, field] of cases) {
      const e = thrown(() => cfg(raw));
      expect(e, JSON.stringify(raw)).toBeInstanceOf(ConfigError);
      expect(e.details.field, JSON.stringify(raw)).toBe(field);
      expect(e.message).toContain(field);
    }
    const wrongType = thrown(() => parseMethodConfig(trac, { peft_type: 'LORA' }));
    expect(wrongType.details.field).toBe('peft_type');
    // PEFT's common fields are accepted.
    expect(() => cfg({ task_type: 'SEQ_CLS', modules_to_save: ['classifier'], inference_mode: true, base_model_name_or_path: 'x' })).not.toThrow();
  });
});
