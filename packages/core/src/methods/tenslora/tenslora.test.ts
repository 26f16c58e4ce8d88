import { describe, expect, it } from 'vitest';
import { JsBackend, deltaW } from '../../backend/js.js';
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import { buildShape } from '../../model/architectures.js';
import { presetShape } from '../../model/presets.js';
import type { ModelShape } from '../../model/shape.js';
import type { TensorMap } from '../../tensor.js';
import { countParams, initParams, materialize, parseMethodConfig } from '../generic.js';
import { getMethod } from '../registry.js';
import '../all.js';
import { tenslora } from './index.js';

const tinyLlama = (kv = 3): ModelShape => buildShape('llama', { hiddenSize: 12, numLayers: 3, numHeads: 3, numKvHeads: kv, intermediateSize: 20 });

/**
 * Independent description of the seven constructions (from the paper / reference code): mode
 * names in order, and how many tensors exist for T types and L layers.
 */
const SPEC: Record<string, { modes: string[]; tensors: (T: number, L: number) => number; perType: boolean; perLayer: boolean }> = {
  att: { modes: ['in', 'out_head', 'heads'], tensors: (T, L) => T * L, perType: true, perLayer: true },
  qkv: { modes: ['in', 'out', 'qkv'], tensors: (_T, L) => L, perType: false, perLayer: true },
  depth: { modes: ['in', 'out', 'depth'], tensors: (T) => T, perType: true, perLayer: false },
  att_qkv: { modes: ['in', 'out_head', 'heads', 'qkv'], tensors: (_T, L) => L, perType: false, perLayer: true },
  att_depth: { modes: ['in', 'out_head', 'heads', 'depth'], tensors: (T) => T, perType: true, perLayer: false },
  qkv_depth: { modes: ['in', 'out', 'qkv', 'depth'], tensors: () => 1, perType: false, perLayer: false },
  att_qkv_depth: { modes: ['in', 'out_head', 'heads', 'qkv', 'depth'], tensors: () => 1, perType: false, perLayer: false },
};
const ALL = Object.keys(SPEC);

function modeDims(modes: string[], d: number, H: number, M: number, L: number): number[] {
  const size: Record<string, number> = { in: d, out: d, out_head: d / H, heads: H, qkv: M, depth: L };
  return modes.map((m) => size[m]!);
}

/** Key of a TensLoRA tensor member, per the documented naming. */
function keyOf(construction: string, path: string, type: string, layer: number, name: string): string {
  const s = SPEC[construction]!;
  if (s.perType && s.perLayer) return `base_model.model.${path}.tenslora_${name}`;
  if (s.perLayer) return `base_model.tenslora.layer_${layer}.${name}`;
  if (s.perType) return `base_model.tenslora.${type}.${name}`;
  return `base_model.tenslora.${name}`;
}

function get(params: TensorMap, key: string): { shape: number[]; data: Float32Array } {
  const t = params.get(key);
  if (!t) throw new Error(`missing ${key}`);
  return t;
}

function denseFromUpdate(u: { n: number; m: number; rho: number; s: number; A: Float32Array; B: Float32Array }): Float64Array {
  const W = new Float64Array(u.m * u.n);
  for (let i = 0; i < u.m; i++)
    for (let j = 0; j < u.n; j++) {
      let acc = 0;
      for (let k = 0; k < u.rho; k++) acc += u.B[i * u.rho + k]! * u.A[j * u.rho + k]!;
      W[i * u.n + j] = u.s * acc;
    }
  return W;
}

/** Full tensor of a Tucker decomposition by brute force: T[i] = Σ_a G[a] ∏_k U_k[i_k, a_k]. */
function fullTucker(core: Float32Array, ranks: number[], factors: Float32Array[], dims: number[]): Float64Array {
  const N = dims.length;
  const total = dims.reduce((a, b) => a * b, 1);
  const coreSize = ranks.reduce((a, b) => a * b, 1);
  const T = new Float64Array(total);
  const idx = new Array<number>(N).fill(0);
  const a = new Array<number>(N).fill(0);
  for (let lin = 0; lin < total; lin++) {
    // decode lin → idx (row-major, mode 0 slowest)
    let rem = lin;
    for (let k = N - 1; k >= 0; k--) {
      idx[k] = rem % dims[k]!;
      rem = Math.floor(rem / dims[k]!);
    }
    let acc = 0;
    for (let c = 0; c < coreSize; c++) {
      let r2 = c;
      for (let k = N - 1; k >= 0; k--) {
        a[k] = r2 % ranks[k]!;
        r2 = Math.floor(r2 / ranks[k]!);
      }
      let prod = core[c]!;
      for (let k = 0; k < N && prod !== 0; k++) prod *= factors[k]![idx[k]! * ranks[k]! + a[k]!]!;
      acc += prod;
    }
    T[lin] = acc;
  }
  return T;
}

function catchErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

const QKV = ['q_proj', 'k_proj', 'v_proj'];
const TYPES = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'];
/** Ranks for the tiny model (d=12, d/H=4, H=3, M=3, L=3): one per mode. */
const TINY_RANKS: Record<string, number> = { in: 3, out: 5, out_head: 2, heads: 2, qkv: 2, depth: 3 };

describe('TensLoRA', () => {
  it('is registered under TENSLORA and tenslora', () => {
    expect(getMethod('TENSLORA')).toBe(tenslora);
    expect(getMethod('tenslora')).toBe(tenslora);
  });

  it('fills documented defaults', () => {
    const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA' });
    expect(c).toMatchObject({ construction: 'qkv_depth', ranks: 4, scaling: 1, head_layout: 'contiguous', target_modules: ['query', 'key', 'value'] });
    // defaults plan on RoBERTa: the integer shorthand is clamped to each mode's size (qkv has 3)
    const plan = tenslora.plan(c, presetShape('roberta-base'));
    expect(plan.params.find((p) => p.key === 'base_model.tenslora.core')!.shape).toEqual([4, 4, 3, 4]);
    expect(plan.params.find((p) => p.key === 'base_model.tenslora.U_qkv')!.shape).toEqual([3, 3]);
  });

  describe('counts per construction (RoBERTa-base q,k,v), formula derived in the test', () => {
    const d = 768;
    const H = 12;
    const L = 12;
    const M = 3;
    const rankOf: Record<string, number> = { in: 8, out: 6, out_head: 4, heads: 3, qkv: 2, depth: 5 };
    for (const construction of ALL) {
      it(construction, () => {
        const s = SPEC[construction]!;
        const ranks = s.modes.map((m) => rankOf[m]!);
        const dims = modeDims(s.modes, d, H, M, L);
        const perTensor = ranks.reduce((a, b) => a * b, 1) + dims.reduce((acc, x, i) => acc + x * ranks[i]!, 0);
        const expected = s.tensors(M, L) * perTensor;
        const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction, ranks, target_modules: ['query', 'key', 'value'] });
        const plan = tenslora.plan(c, presetShape('roberta-base'));
        expect(countParams(plan)).toEqual({ trainable: expected, frozen: 0, stored: expected });
        expect(plan.params.length).toBe(s.tensors(M, L) * (1 + s.modes.length));
        expect(plan.rank).toBe(8);
      });
    }
    it('qkv_depth with ranks 4 everywhere except qkv=3 matches the reference predictor shape', () => {
      // predict_tenslora_parameters('qkv_depth', [4,4,3,4], 768, 12): 4·768 + 4·768 + 3·3 + 4·12 + 4·4·3·4
      const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction: 'qkv_depth', ranks: [4, 4, 3, 4] });
      expect(countParams(tenslora.plan(c, presetShape('roberta-base'))).trainable).toBe(4 * 768 + 4 * 768 + 9 + 48 + 192);
    });
  });

  for (const construction of ALL) {
    const layouts = construction.includes('att') ? (['contiguous', 'interleaved'] as const) : (['contiguous'] as const);
    for (const head_layout of layouts) {
      it(`ΔW equals a brute-force Tucker reconstruction: ${construction}${construction.includes('att') ? ` (${head_layout})` : ''}`, async () => {
        const s = SPEC[construction]!;
        const d = 12;
        const H = 3;
        const p = d / H;
        const L = 3;
        const M = 3;
        const ranks = s.modes.map((m) => TINY_RANKS[m]!);
        const dims = modeDims(s.modes, d, H, M, L);
        const scaling = 0.75;
        const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction, ranks, scaling, head_layout, target_modules: QKV });
        const plan = tenslora.plan(c, tinyLlama());
        const params = initParams(plan, { seed: 13, nonzero: true });
        const ups = await materialize(tenslora, c, plan, params, new JsBackend());
        expect(ups.length).toBe(9);
        for (const [idx, u] of ups.entries()) {
          const mod = plan.modules[idx]!;
          const t = TYPES.indexOf(mod.type);
          const l = mod.layer;
          expect(t).toBeGreaterThanOrEqual(0);
          expect([u.rho, u.s]).toEqual([ranks[0], scaling]);
          const core = get(params, keyOf(construction, mod.path, mod.type, l, 'core'));
          expect(core.shape).toEqual(ranks);
          const factors = s.modes.map((m, i) => {
            const f = get(params, keyOf(construction, mod.path, mod.type, l, `U_${m}`));
            expect(f.shape).toEqual([dims[i], ranks[i]]);
            return f.data;
          });
          const T = fullTucker(core.data, ranks, factors, dims);
          // ΔWᵀ[i, out] is the tensor slice at (qkv = t, depth = l); out = h·p + j (contiguous) or j·H + h.
          const strides = dims.map((_, k) => dims.slice(k + 1).reduce((a, b) => a * b, 1));
          const ref = new Float64Array(d * d);
          for (let i = 0; i < d; i++) {
            for (let o = 0; o < d; o++) {
              const index: Record<string, number> = { in: i, qkv: t, depth: l, out: o };
              if (head_layout === 'contiguous') {
                index.heads = Math.floor(o / p);
                index.out_head = o % p;
              } else {
                index.out_head = Math.floor(o / H);
                index.heads = o % H;
              }
              let lin = 0;
              s.modes.forEach((m, k) => (lin += index[m]! * strides[k]!));
              ref[o * d + i] = scaling * T[lin]!;
            }
          }
          const got = denseFromUpdate(u);
          let scale = 0;
          for (const v of ref) scale = Math.max(scale, Math.abs(v));
          expect(scale).toBeGreaterThan(0);
          for (let q = 0; q < ref.length; q++) expect(Math.abs(got[q]! - ref[q]!)).toBeLessThanOrEqual(1e-5 * scale + 1e-9);
        }
      });
    }
  }

  it('depth generalizes to non-square modules (one tensor per type, FFN included)', async () => {
    const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction: 'depth', ranks: [3, 4, 2], target_modules: ['q_proj', 'up_proj', 'down_proj'] });
    const plan = tenslora.plan(c, tinyLlama());
    expect(plan.params.find((p) => p.key === 'base_model.tenslora.mlp.up_proj.U_out')!.shape).toEqual([20, 4]);
    expect(plan.params.find((p) => p.key === 'base_model.tenslora.mlp.down_proj.U_in')!.shape).toEqual([20, 3]);
    const params = initParams(plan, { seed: 2, nonzero: true });
    const ups = await materialize(tenslora, c, plan, params, new JsBackend());
    for (const [idx, u] of ups.entries()) {
      const mod = plan.modules[idx]!;
      const k = (name: string): Float32Array => get(params, `base_model.tenslora.${mod.type}.${name}`).data;
      const T = fullTucker(k('core'), [3, 4, 2], [k('U_in'), k('U_out'), k('U_depth')], [mod.n, mod.m, 3]);
      const got = denseFromUpdate(u);
      for (let o = 0; o < mod.m; o++)
        for (let i = 0; i < mod.n; i++) expect(got[o * mod.n + i]!).toBeCloseTo(T[(i * mod.m + o) * 3 + mod.layer]!, 7);
    }
  });

  it('zero init: ΔW == 0 exactly by default, for every construction', async () => {
    for (const construction of ALL) {
      const ranks = SPEC[construction]!.modes.map((m) => TINY_RANKS[m]!);
      const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction, ranks, target_modules: QKV });
      const plan = tenslora.plan(c, tinyLlama());
      const ups = await materialize(tenslora, c, plan, initParams(plan), new JsBackend());
      for (const u of ups) for (const v of denseFromUpdate(u)) expect(v).toBe(0);
    }
  });

  it('init: factors have orthonormal columns (to 1e-5), cores are zero', () => {
    const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction: 'att_qkv_depth', ranks: [16, 8, 12, 3, 12], target_modules: ['query', 'key', 'value'] });
    const plan = tenslora.plan(c, presetShape('roberta-base'));
    const params = initParams(plan, { seed: 9 });
    let checked = 0;
    for (const p of plan.params) {
      const t = get(params, p.key);
      if (p.key.endsWith('.core')) {
        expect(p.zeroInit).toBe(true);
        for (const v of t.data) expect(v).toBe(0);
        continue;
      }
      const [rows, cols] = t.shape as [number, number];
      for (let a = 0; a < cols; a++)
        for (let b = 0; b < cols; b++) {
          let dot = 0;
          for (let r = 0; r < rows; r++) dot += t.data[r * cols + a]! * t.data[r * cols + b]!;
          expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-5);
        }
      checked++;
    }
    expect(checked).toBe(5);
  });

  it('keys: per module (att), per layer (qkv), per type (depth), single (qkv_depth)', () => {
    const keys = (construction: string): string[] => {
      const ranks = SPEC[construction]!.modes.map((m) => TINY_RANKS[m]!);
      return tenslora.plan(parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction, ranks, target_modules: QKV }), tinyLlama()).params.map((p) => p.key);
    };
    expect(keys('att')).toContain('base_model.model.model.layers.2.self_attn.v_proj.tenslora_U_heads');
    expect(keys('qkv')).toContain('base_model.tenslora.layer_1.U_qkv');
    expect(keys('depth')).toContain('base_model.tenslora.self_attn.k_proj.U_depth');
    expect(keys('qkv_depth')).toEqual(['base_model.tenslora.core', 'base_model.tenslora.U_in', 'base_model.tenslora.U_out', 'base_model.tenslora.U_qkv', 'base_model.tenslora.U_depth']);
  });

  describe('bad configs', () => {
    it('wrong ranks length → ConfigError naming ranks, expected and found', () => {
      const e = catchErr(() => parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction: 'att_qkv', ranks: [4, 4, 4] }));
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).details.field).toBe('ranks');
      expect((e as ConfigError).details.found).toEqual([4, 4, 4]);
      expect((e as Error).message).toMatch(/expected 4, found 3/);
      expect((e as Error).message).toMatch(/in, out_head, heads, qkv/);
    });
    it('rank > mode size → ConfigError naming the mode', () => {
      const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction: 'qkv_depth', ranks: [3, 3, 4, 2], target_modules: QKV });
      const e = catchErr(() => tenslora.plan(c, tinyLlama()));
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).details).toMatchObject({ field: 'ranks.2', found: 4 });
      expect(String((e as ConfigError).details.expected)).toMatch(/≤ 3.*qkv/);
    });
    it('unknown construction → ConfigError naming the field', () => {
      const e = catchErr(() => parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction: 'heads_depth' }));
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).details).toMatchObject({ field: 'construction', found: 'heads_depth' });
      expect((e as Error).message).toMatch(/att_qkv_depth/);
    });
    it('unknown field → ConfigError (strict)', () => {
      const e = catchErr(() => parseMethodConfig(tenslora, { peft_type: 'TENSLORA', n_components: 4 }));
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as Error).message).toMatch(/n_components/);
    });
    it('aggregating modules of different shapes across types → ShapeMismatchError naming the module', () => {
      const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction: 'qkv', ranks: [2, 2, 2], target_modules: ['q_proj', 'up_proj'] });
      const e = catchErr(() => tenslora.plan(c, tinyLlama()));
      expect(e).toBeInstanceOf(ShapeMismatchError);
      expect((e as ShapeMismatchError).details).toMatchObject({ field: 'model.layers.0.mlp.up_proj', expected: '(in, out) = (12, 12)', found: '(in, out) = (12, 20)' });
    });
    it('GQA extension: k/v (Hkv heads) take the tensor rows of the first query head of each group', async () => {
      // d = 12, H = 6 heads of 2 rows, Hkv = 2 (k/v: 12 → 4); kv head g ↔ query head 3g.
      const shape = buildShape('llama', { hiddenSize: 12, numLayers: 2, numHeads: 6, numKvHeads: 2, intermediateSize: 20 });
      const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction: 'qkv_depth', ranks: [2, 3, 2, 2], target_modules: QKV, scaling: 1.5 });
      const plan = tenslora.plan(c, shape);
      const params = initParams(plan, { seed: 9, nonzero: true });
      const ups = await materialize(tenslora, c, plan, params, new JsBackend());
      const p = (k: string) => params.get('base_model.tenslora.' + k)!.data;
      const [G, Ui, Uo, Uq, Ud] = [p('core'), p('U_in'), p('U_out'), p('U_qkv'), p('U_depth')];
      const R = [2, 3, 2, 2];
      // T[i, o, t, l] = Σ G[a,b,c,e] Ui[i,a] Uo[o,b] Uq[t,c] Ud[l,e], written out.
      const T = (i: number, o: number, t: number, l: number): number => {
        let acc = 0;
        for (let a = 0; a < R[0]!; a++) for (let b = 0; b < R[1]!; b++) for (let cc = 0; cc < R[2]!; cc++) for (let e = 0; e < R[3]!; e++)
          acc += G[((a * R[1]! + b) * R[2]! + cc) * R[3]! + e]! * Ui[i * R[0]! + a]! * Uo[o * R[1]! + b]! * Uq[t * R[2]! + cc]! * Ud[l * R[3]! + e]!;
        return acc;
      };
      const k = ups.find((u) => u.path === 'model.layers.1.self_attn.k_proj')!;
      expect(k.m).toBe(4);
      const W = deltaW(k);
      for (let g = 0; g < 2; g++) for (let j = 0; j < 2; j++) for (let i = 0; i < 12; i++) expect(W[(g * 2 + j) * 12 + i]).toBeCloseTo(1.5 * T(i, 3 * g * 2 + j, 1, 1), 5);
    });
    it('att on a module whose output is not d → ShapeMismatchError naming the module', () => {
      const gpt2 = buildShape('gpt2', { hiddenSize: 12, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 20 });
      const c = parseMethodConfig(tenslora, { peft_type: 'TENSLORA', construction: 'att', ranks: [2, 2, 2], target_modules: ['c_attn'] });
      const e = catchErr(() => tenslora.plan(c, gpt2));
      expect(e).toBeInstanceOf(ShapeMismatchError);
      expect((e as ShapeMismatchError).details).toMatchObject({ field: 'transformer.h.0.attn.c_attn', found: '(in, out) = (12, 36)' });
    });
  });
});
