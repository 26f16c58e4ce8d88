import { describe, expect, it } from 'vitest';
import { JsBackend, deltaW } from '../../backend/js.js';
import { ConfigError } from '../../errors.js';
import { materializeAdapter } from '../../io/adapter.js';
import { detectOfficial, importOfficial } from '../../io/official/import.js';
import { randn, relErr, type T } from '../../io/official/testing/reference.js';
import { PickleWriter, tensorW, torchSaveZip, type W } from '../../io/torch/writer.js';
import { buildShape } from '../../model/architectures.js';
import { Prng } from '../../util/prng.js';
import '../all.js';

// Tiny RoBERTa-like model: d = 8, H = 2 heads of 4, L = 2 layers; q, k, v.
const D = 8;
const H = 2;
const L = 2;
const shape = buildShape('roberta', { hiddenSize: D, numLayers: L, numHeads: H, numKvHeads: H, intermediateSize: 16 });
const TYPES = ['query', 'key', 'value'];

/** A pickled nn.Module record: NEWOBJ of the class, then BUILD with a module __dict__. */
function moduleW(cls: [string, string], params: [string, W][], modules: [string, W][], attrs: [string, W][] = []): W {
  return {
    newobj: cls,
    state: {
      dict: [
        ['training', false],
        ['_parameters', { odict: params }],
        ['_buffers', { odict: [] }],
        ['_non_persistent_buffers_set', { reduce: { global: ['builtins', 'set'] }, args: [{ list: [] }] }],
        ['_forward_hooks', { odict: [] }],
        ['_modules', { odict: modules }],
        ...attrs,
      ],
    },
  };
}

/** An official `*_tensors.pth` for a construction with every Tucker tensor random, and its ΔW per module. */
function officialPth(construction: 'qkv_depth' | 'att_qkv_depth' | 'qkv', ranks: number[], scaling: number, seed: number) {
  const g = new Prng(seed, 'tenslora-official');
  const att = construction.startsWith('att');
  const dims = att ? [D, D / H, H] : [D, D];
  if (construction.includes('qkv')) dims.push(3);
  if (construction.includes('depth')) dims.push(L);
  const storages: { key: string; bytes: Uint8Array }[] = [];
  const store = (t: T): W => {
    const key = String(storages.length);
    storages.push({ key, bytes: new Uint8Array(t.data.buffer.slice(0)) });
    return tensorW(key, t.data.length, t.shape, { parameter: true });
  };
  const tuckers: { core: T; factors: T[] }[] = [];
  const adapterW = (): W => {
    const core = randn(ranks, g);
    const factors = dims.map((dm, i) => randn([dm, ranks[i]!], g, 0.5));
    tuckers.push({ core, factors });
    const coreW = store(core);
    const fW = factors.map(store);
    const tl = moduleW(['tltorch.factorized_tensors.factorized_tensors', 'TuckerTensor'], [['core', coreW]], [
      ['factors', moduleW(['tltorch.utils.parameter_list', 'FactorList'], fW.map((x, i) => [`factor_${i}`, x] as [string, W]), [])],
    ]);
    // The TensLoRA module holds the same tensors as tucker_core / tucker_factors (memoized views).
    const inner = moduleW(['tenslora.tensors_manipulator', construction === 'qkv' ? 'QKVTensorLoRA' : construction === 'qkv_depth' ? 'QKVDepthTensorLoRA' : 'AttQKVDepthTensorLoRA'], [['tucker_core', coreW]], [
      ['tucker_factors', moduleW(['torch.nn.modules.container', 'ParameterList'], fW.map((x, i) => [String(i), x] as [string, W]), [])],
      ['tltorch_tensor', tl],
    ], [['dropout_prob', { float: 0.1 }], ['n_components', { list: ranks }]]);
    return moduleW(['tenslora.adapters.tenslora_adapter', 'TensLoRA_adapter'], [], [['tensor_lora_module', inner]], [
      ['tensor_fac', 'tucker'],
      ['tensor_method', construction],
      ['tensor_init', 'orthogonal'],
      ['input_dim', D],
      ['output_dim', D],
      ['n_components', { list: ranks }],
      ['scaling', { float: scaling }],
      ['number_attention_layers', L],
      ...(att ? ([['number_heads', H]] as [string, W][]) : []),
    ]);
  };
  const root: W = construction === 'qkv' ? moduleW(['torch.nn.modules.container', 'ParameterList'], [], Array.from({ length: L }, (_, l) => [String(l), adapterW()] as [string, W])) : adapterW();
  const pth = torchSaveZip(PickleWriter.pickle(root), storages);

  // Reference: full Tucker tensor, then the official tensor_to_update_matrix and x @ (M·scaling).
  const full = (t: { core: T; factors: T[] }): { data: Float64Array; dims: number[] } => {
    const n = dims.reduce((a, b) => a * b, 1);
    const out = new Float64Array(n);
    const idx = new Array(dims.length).fill(0);
    const rIdx = new Array(ranks.length).fill(0);
    const rn = ranks.reduce((a, b) => a * b, 1);
    for (let e = 0; e < n; e++) {
      let rem = e;
      for (let k = dims.length - 1; k >= 0; k--) {
        idx[k] = rem % dims[k]!;
        rem = Math.floor(rem / dims[k]!);
      }
      let acc = 0;
      for (let c = 0; c < rn; c++) {
        let rr = c;
        for (let k = ranks.length - 1; k >= 0; k--) {
          rIdx[k] = rr % ranks[k]!;
          rr = Math.floor(rr / ranks[k]!);
        }
        let p = t.core.data[c]!;
        for (let k = 0; k < dims.length; k++) p *= t.factors[k]!.data[idx[k]! * ranks[k]! + rIdx[k]!]!;
        acc += p;
      }
      out[e] = acc;
    }
    return { data: out, dims };
  };
  const expected = new Map<string, Float64Array>();
  for (let l = 0; l < L; l++)
    TYPES.forEach((t, q) => {
      const tk = construction === 'qkv' ? tuckers[l]! : tuckers[0]!;
      const T_ = full(tk);
      const strides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
      const W_ = new Float64Array(D * D);
      for (let i = 0; i < D; i++)
        for (let o = 0; o < D; o++) {
          // M[i, col]: att → tl.unfold(T[..., q, l], 0) has col = j·H + h; else col = out index.
          let off = i * strides[0]!;
          if (att) {
            const j = Math.floor(o / H);
            const h = o % H;
            off += j * strides[1]! + h * strides[2]!;
          } else off += o * strides[1]!;
          const qi = dims.length - (construction.includes('depth') ? 2 : 1);
          off += q * strides[qi]!;
          if (construction.includes('depth')) off += l * strides[qi + 1]!;
          W_[o * D + i] = scaling * T_.data[off]!;
        }
      expected.set(`roberta.encoder.layer.${l}.attention.self.${t}`, W_);
    });
  return { files: new Map([['roberta_tensors.pth', pth]]), expected };
}

describe('TensLoRA official .pth import', () => {
  const cases: ['qkv_depth' | 'att_qkv_depth' | 'qkv', number[], number][] = [
    ['qkv_depth', [3, 4, 4, 2], 2],
    ['att_qkv_depth', [3, 2, 2, 4, 2], 0.5],
    ['qkv', [2, 3, 4], 1],
  ];
  for (const [construction, ranks, scaling] of cases) {
    it(`${construction} ranks [${ranks}]: ΔW equals the official module's ΔW (≤ 1e-5 relative)`, async () => {
      const { files, expected } = officialPth(construction, ranks, scaling, 7);
      expect(detectOfficial({ files })).toBe('tenslora');
      const { adapter } = importOfficial({ files }, { shape });
      expect(adapter.config.construction).toBe(construction);
      // qkv rank 4 on the 3-entry qkv mode, as the reference's default allows.
      expect(adapter.config.ranks_above_size).toBe(true);
      const ups = await materializeAdapter(adapter, new JsBackend());
      expect(ups).toHaveLength(3 * L);
      // fp32 factors, fp64 reference: float32 rounding only.
      for (const u of ups) expect(relErr(deltaW(u), expected.get(u.path)!)).toBeLessThan(1e-5);
    });
  }

  it('needs the model (the file does not name it)', () => {
    const { files } = officialPth('qkv_depth', [2, 2, 2, 2], 1, 3);
    expect(() => importOfficial({ files })).toThrow(ConfigError);
  });
});

describe('ranks above a mode size (the reference default)', () => {
  it('RoBERTa-base qkv, rank 4: 74,640 trainable as the reference counts (74,412 when clamped); wide factors start with orthonormal rows', async () => {
    const { presetShape } = await import('../../model/presets.js');
    const { createAdapter } = await import('../../io/adapter.js');
    const { countParams } = await import('../generic.js');
    const base = presetShape('roberta-base');
    const count = (extra: Record<string, unknown>) => countParams(createAdapter({ method: 'tenslora', shape: base, config: { construction: 'qkv', ranks: 4, target_modules: ['query', 'key', 'value'], ...extra } }).plan).trainable;
    // Per layer: 4·4·4 + 768·4 + 768·4 + 3·4 = 6,220; 12 layers.
    expect(count({ ranks_above_size: true })).toBe(74_640);
    expect(count({})).toBe(74_412);
    const small = buildShape('roberta', { hiddenSize: D, numLayers: L, numHeads: H, numKvHeads: H, intermediateSize: 16 });
    const a = createAdapter({ method: 'tenslora', shape: small, config: { construction: 'qkv_depth', ranks: [2, 2, 4, 2], ranks_above_size: true } });
    const u = a.params.get('base_model.tenslora.U_qkv')!;
    expect(u.shape).toEqual([3, 4]);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        let dot = 0;
        for (let k = 0; k < 4; k++) dot += u.data[i * 4 + k]! * u.data[j * 4 + k]!;
        expect(dot).toBeCloseTo(i === j ? 1 : 0, 5);
      }
  });
});
