import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsBackend, deltaW } from '../../backend/js.js';
import { ConfigError, ShapeMismatchError, TensorPeftError } from '../../errors.js';
import { presetShape } from '../../model/presets.js';
import type { ModelShape } from '../../model/shape.js';
import type { Tensor, TensorMap } from '../../tensor.js';
import { countParams, initParams, materialize, parseMethodConfig } from '../generic.js';
import { loretta, type LorettaConfig } from './index.js';

const cfg = (raw: Record<string, unknown>): LorettaConfig => parseMethodConfig(loretta, { peft_type: 'LORETTA', ...raw });
const bert = presetShape('bert-base');

function thrown(f: () => unknown): TensorPeftError {
  try {
    f();
  } catch (e) {
    if (e instanceof TensorPeftError) return e;
    throw e;
  }
  throw new Error('expected an error');
}

function get(params: TensorMap, key: string): Tensor {
  const t = params.get(key);
  if (!t) throw new Error(`test: missing ${key}`);
  return t;
}

/** Σ_k t_{k−1}·f_k·t_k with t_0 = t_K = 1. */
function ttCount(factors: number[], t: number): number {
  return factors.reduce((acc, f, k) => acc + (k === 0 ? 1 : t) * f * (k === factors.length - 1 ? 1 : t), 0);
}

/** One-module model `n → m`. */
function oneModule(n: number, m: number): ModelShape {
  return {
    modelType: 'unknown',
    hiddenSize: n,
    numLayers: 1,
    numHeads: 1,
    numKvHeads: 1,
    intermediateSize: m,
    modules: [{ path: 'enc.layer.0.lin', type: 'lin', layer: 0, in: n, out: m, fanInFanOut: false }],
    defaultTargets: ['lin'],
  };
}

/**
 * Element `p` (row-major flat index) of the tensor train with cores `cores` ([t, f, t′] each), by
 * decomposing p into digits (first mode slowest) and multiplying the core slices left to right.
 */
function ttElement(cores: Tensor[], p: number): number {
  const sizes = cores.map((c) => c.shape[1]!);
  const digits: number[] = [];
  for (let k = sizes.length - 1; k >= 0; k--) {
    digits[k] = p % sizes[k]!;
    p = Math.floor(p / sizes[k]!);
  }
  let v = [1];
  cores.forEach((c, k) => {
    const [tl, f, tr] = c.shape as [number, number, number];
    const next = new Array<number>(tr).fill(0);
    for (let a = 0; a < tl; a++) for (let b = 0; b < tr; b++) next[b]! += v[a]! * c.data[(a * f + digits[k]!) * tr + b]!;
    v = next;
  });
  return v[0]!;
}

function coresOf(params: TensorMap, path: string, side: 'A' | 'B', count: number): Tensor[] {
  return Array.from({ length: count }, (_, k) => get(params, `base_model.model.${path}.loretta_${side}.core${k}`));
}

/** ΔW[o][i] = s · Σ_j B′[o, j] · A′[i, j] with A′[i, j] = TT_A(i·r + j), B′[o, j] = TT_B(j·m + o). */
function referenceDelta(c: LorettaConfig, params: TensorMap, path: string, n: number, m: number, ka: number, kb: number): number[][] {
  const A = coresOf(params, path, 'A', ka);
  const B = coresOf(params, path, 'B', kb);
  const r = c.r;
  const Ap = Array.from({ length: n }, (_, i) => Array.from({ length: r }, (_, j) => ttElement(A, i * r + j)));
  const Bp = Array.from({ length: m }, (_, o) => Array.from({ length: r }, (_, j) => ttElement(B, j * m + o)));
  const s = c.lora_alpha / r;
  return Bp.map((b) => Ap.map((a) => s * a.reduce((acc, v, j) => acc + v * b[j]!, 0)));
}

/** A random list of small factors whose product is a multiple of `must` (it contains `must`). */
const factorsWith = (must: number) =>
  fc.tuple(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 }), fc.nat()).map(([xs, pos]) => {
    const out = [...xs];
    out.splice(pos % (xs.length + 1), 0, must);
    return out;
  });

describe('LoRETTA parameter counts', () => {
  it('bert-base q,v with the defaults (r = 8, t = 5, 768·8 → [8, 8, 12, 8]) follows Σ t_{k−1} f_k t_k', () => {
    const c = cfg({});
    expect(c.tensor_shape_a).toMatchObject({ '768': [8, 8, 12, 8] });
    const perModule = 2 * ttCount([8, 8, 12, 8], 5);
    expect(perModule).toBe(1160);
    expect(countParams(loretta.plan(c, bert))).toEqual({ trainable: 24 * perModule, frozen: 0, stored: 24 * perModule });
  });

  it('bert-base FFN with explicit maps (A by n, B by m) follows the formula', () => {
    const c = cfg({
      r: 16,
      tensor_rank: 7,
      target_modules: ['intermediate.dense', 'output.dense'],
      tensor_shape_a: { '768': [8, 16, 12, 8], '3072': [16, 12, 16, 16] },
      tensor_shape_b: { '768': [16, 8, 12, 8], '3072': [4, 16, 16, 12, 4] },
    });
    const up = ttCount([8, 16, 12, 8], 7) + ttCount([4, 16, 16, 12, 4], 7);
    const down = ttCount([16, 12, 16, 16], 7) + ttCount([16, 8, 12, 8], 7);
    // `output.dense` also matches `attention.output.dense` (PEFT suffix matching): 768 → 768.
    const attnOut = ttCount([8, 16, 12, 8], 7) + ttCount([16, 8, 12, 8], 7);
    expect(countParams(loretta.plan(c, bert)).trainable).toBe(12 * (up + down + attnOut));
  });
});

describe('LoRETTA materialize', () => {
  it('ΔW equals a naive TT reconstruction on random small shapes (A′ = [n, r], B′ = ([r, m])ᵀ)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
        fc.nat({ max: 1000 }),
        fc.double({ min: 0.5, max: 40, noNaN: true }),
        async (r, t, nf, mf, seed, alpha) => {
          // A's factors: a factorization of n·r; B's: of r·m. r sits inside the lists, so the TT
          // mode boundaries do not line up with the [n, r] / [r, m] views.
          const n = nf.reduce((a, b) => a * b, 1);
          const m = mf.reduce((a, b) => a * b, 1);
          const fa = [...nf.slice(0, 1), r, ...nf.slice(1)];
          const fb = [...mf.slice(0, mf.length - 1), r, ...mf.slice(mf.length - 1)];
          const c = cfg({ r, lora_alpha: alpha, tensor_rank: t, target_modules: ['lin'], tensor_shape_a: fa, tensor_shape_b: fb });
          const plan = loretta.plan(c, oneModule(n, m));
          const params = initParams(plan, { seed });
          const [u] = await materialize(loretta, c, plan, params, new JsBackend());
          expect([u!.n, u!.m, u!.rho, u!.s]).toEqual([n, m, r, alpha / r]);
          const ref = referenceDelta(c, params, 'enc.layer.0.lin', n, m, fa.length, fb.length);
          const got = deltaW(u!);
          let scale = 0;
          for (const row of ref) for (const v of row) scale = Math.max(scale, Math.abs(v));
          for (let o = 0; o < m; o++) for (let i = 0; i < n; i++) expect(Math.abs(got[o * n + i]! - ref[o]![i]!)).toBeLessThanOrEqual(1e-5 * scale + 1e-30);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('non-square modules with r at a random position of the factor lists (map form) match the reconstruction', async () => {
    await fc.assert(
      fc.asyncProperty(factorsWith(3), factorsWith(3), fc.nat({ max: 1000 }), async (extraA, extraB, seed) => {
        // Each list contains r = 3, so n = ∏fa / 3 and m = ∏fb / 3 are integers.
        const r = 3;
        const fa = [4, ...extraA];
        const fb = [2, ...extraB];
        const n = fa.reduce((a, b) => a * b, 1) / r;
        const m = fb.reduce((a, b) => a * b, 1) / r;
        const c = cfg({ r, tensor_rank: 3, target_modules: ['lin'], tensor_shape_a: { [String(n)]: fa }, tensor_shape_b: { [String(m)]: fb } });
        const plan = loretta.plan(c, oneModule(n, m));
        const params = initParams(plan, { seed });
        const [u] = await materialize(loretta, c, plan, params, new JsBackend());
        const ref = referenceDelta(c, params, 'enc.layer.0.lin', n, m, fa.length, fb.length);
        const got = deltaW(u!);
        let scale = 0;
        for (const row of ref) for (const v of row) scale = Math.max(scale, Math.abs(v));
        for (let o = 0; o < m; o++) for (let i = 0; i < n; i++) expect(Math.abs(got[o * n + i]! - ref[o]![i]!)).toBeLessThanOrEqual(1e-5 * scale + 1e-30);
      }),
      { numRuns: 30 },
    );
  });

  it('faithful default: no zero init, so ΔW ≠ 0 at step 0', async () => {
    const c = cfg({});
    const plan = loretta.plan(c, bert);
    expect(plan.params.some((p) => p.zeroInit)).toBe(false);
    const ups = await materialize(loretta, c, plan, initParams(plan, { seed: 1 }), new JsBackend());
    for (const u of ups.slice(0, 3)) expect(deltaW(u).some((v) => v !== 0)).toBe(true);
  });

  it('zero_init_b zeroes the last core of B, so ΔW = 0 exactly; --nonzero makes it nonzero again', async () => {
    const c = cfg({ zero_init_b: true });
    const plan = loretta.plan(c, bert);
    const zeroKeys = plan.params.filter((p) => p.zeroInit).map((p) => p.key);
    expect(zeroKeys.length).toBe(24);
    expect(zeroKeys.every((k) => k.endsWith('.loretta_B.core3'))).toBe(true);
    const ups = await materialize(loretta, c, plan, initParams(plan, { seed: 1 }), new JsBackend());
    for (const u of ups) expect(deltaW(u).every((v) => v === 0)).toBe(true);
    const nz = await materialize(loretta, c, plan, initParams(plan, { seed: 1, nonzero: true }), new JsBackend());
    expect(deltaW(nz[0]!).some((v) => v !== 0)).toBe(true);
  });
});

describe('LoRETTA init', () => {
  it('every core ~ N(0, (1/t_{k+1})·(1/(in+out))^{1/order}): specified std, sample mean/variance within 5 standard errors', () => {
    const c = cfg({ r: 8, tensor_rank: 32, target_modules: ['query'], tensor_shape_a: [8, 8, 12, 8], tensor_shape_b: [8, 8, 12, 8] });
    const plan = loretta.plan(c, bert);
    const params = initParams(plan, { seed: 77 });
    let checked = 0;
    for (const p of plan.params) {
      const [, , tr] = p.shape as [number, number, number];
      // (in, out) = (n, r) for A and (r, m) for B: 768 + 8 either way here; order 4.
      const variance = (1 / tr) * Math.pow(1 / (768 + 8), 1 / 4);
      expect(p.init.dist).toBe('normal');
      expect((p.init as { std: number }).std).toBeCloseTo(Math.sqrt(variance), 14);
      const x = get(params, p.key).data;
      const k = x.length;
      let mean = 0;
      for (const v of x) mean += v;
      mean /= k;
      let v2 = 0;
      for (const v of x) v2 += (v - mean) ** 2;
      v2 /= k - 1;
      expect(Math.abs(mean)).toBeLessThanOrEqual(5 * Math.sqrt(variance / k));
      expect(Math.abs(v2 - variance)).toBeLessThanOrEqual(5 * variance * Math.sqrt(2 / (k - 1)));
      checked++;
    }
    expect(checked).toBe(12 * 8);
    // The middle cores are large ([32, 8, 32], [32, 12, 32]), so the check is tight there.
    expect(plan.params.some((p) => p.shape.join() === '32,12,32')).toBe(true);
  });

  it('(in, out) differs between A (n, r) and B (r, m) on a non-square module', () => {
    const c = cfg({ r: 4, tensor_rank: 2, target_modules: ['lin'], tensor_shape_a: [6, 4], tensor_shape_b: [4, 10] });
    const plan = loretta.plan(c, oneModule(6, 10));
    const std = (key: string) => (plan.params.find((p) => p.key.endsWith(key))!.init as { std: number }).std;
    expect(std('loretta_A.core0')).toBeCloseTo(Math.sqrt((1 / 2) * Math.pow(1 / (6 + 4), 1 / 2)), 14);
    expect(std('loretta_A.core1')).toBeCloseTo(Math.sqrt(Math.pow(1 / (6 + 4), 1 / 2)), 14);
    expect(std('loretta_B.core0')).toBeCloseTo(Math.sqrt((1 / 2) * Math.pow(1 / (4 + 10), 1 / 2)), 14);
  });

  it('same seed → identical bytes; different seed → different', () => {
    const plan = loretta.plan(cfg({}), bert);
    const a = initParams(plan, { seed: 5 });
    const b = initParams(plan, { seed: 5 });
    const d = initParams(plan, { seed: 6 });
    for (const p of plan.params) {
      const x = new Uint8Array(get(a, p.key).data.buffer);
      expect(new Uint8Array(get(b, p.key).data.buffer)).toEqual(x);
      expect(new Uint8Array(get(d, p.key).data.buffer)).not.toEqual(x);
    }
  });
});

describe('LoRETTA config errors', () => {
  it('fills the documented defaults', () => {
    const c = cfg({});
    expect(c).toMatchObject({ r: 8, lora_alpha: 16, tensor_rank: 5, target_modules: ['query', 'value'], zero_init_b: false });
    expect(c.tensor_shape_a).toEqual(c.tensor_shape_b);
    expect(cfg({ r: 16 }).tensor_shape_a).toMatchObject({ '768': [8, 16, 12, 8] });
    // Explicit shapes are kept as given.
    expect(cfg({ tensor_shape_a: [96, 64] }).tensor_shape_a).toEqual([96, 64]);
  });

  it('a shape whose product is not n·r / r·m names the module, field, expected and found products', () => {
    const e = thrown(() => loretta.plan(cfg({ tensor_shape_a: [8, 8, 12, 4] }), bert));
    expect(e).toBeInstanceOf(ShapeMismatchError);
    expect(e.details.field).toBe('tensor_shape_a');
    expect(e.message).toContain('bert.encoder.layer.0.attention.self.query');
    expect(e.message).toContain('6144');
    expect(e.message).toContain('3072');
    const f = thrown(() => loretta.plan(cfg({ tensor_shape_b: { '768': [8, 8, 12, 9] } }), bert));
    expect(f.details.field).toBe('tensor_shape_b.768');
    expect(f.message).toContain('r·m = 8·768 = 6144');
    // A map without the module's dimension (FFN 3072 is not in the built-in table).
    const g = thrown(() => loretta.plan(cfg({ target_modules: ['intermediate.dense'] }), bert));
    expect(g).toBeInstanceOf(ConfigError);
    expect(g.details.field).toBe('tensor_shape_b.3072');
    // An r with no built-in table and no shapes given.
    const h = thrown(() => loretta.plan(cfg({ r: 7 }), bert));
    expect(h.details.field).toBe('tensor_shape_a.768');
    expect(h.message).toContain('no built-in default for r = 7');
  });

  it('rejects malformed fields with the field named', () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ tensor_rank: 0 }, 'tensor_rank'],
      [{ tensor_rank: 2.5 }, 'tensor_rank'],
      [{ tensor_shape_a: [8, -8] }, 'tensor_shape_a'],
      [{ tensor_shape_a: [] }, 'tensor_shape_a'],
      [{ tensor_shape_b: { '768': 'x' } }, 'tensor_shape_b.768'],
      [{ tensor_shape_b: { big: [8] } }, 'tensor_shape_b.big'],
      [{ zero_init_b: 'yes' }, 'zero_init_b'],
      [{ r: -1 }, 'r'],
      [{ tensor_shape: [8, 8, 12, 8] }, 'tensor_shape'],
      [{ variant: 'trac' }, 'variant'],
    ];
    for (const [raw, field] of cases) {
      const e = thrown(() => cfg(raw));
      expect(e, JSON.stringify(raw)).toBeInstanceOf(ConfigError);
      expect(e.details.field, JSON.stringify(raw)).toBe(field);
      expect(e.message).toContain(field);
    }
    expect(thrown(() => parseMethodConfig(loretta, { peft_type: 'TRAC' })).details.field).toBe('peft_type');
  });
});
