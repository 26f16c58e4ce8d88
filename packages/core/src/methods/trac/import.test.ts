import { describe, expect, it } from 'vitest';
import { JsBackend, deltaW } from '../../backend/js.js';
import { ConfigError, ShapeMismatchError, TensorPeftError } from '../../errors.js';
import { adapterFromBytes, adapterToFiles, materializeAdapter } from '../../io/adapter.js';
import { detectOfficial, importOfficial } from '../../io/official/import.js';
import { exportOfficial } from '../../io/official/export.js';
import { json, loraDelta, randn, relErr, ttMatrix, type T } from '../../io/official/testing/reference.js';
import { writeTorchStateDict } from '../../io/torch/writer.js';
import { buildShape } from '../../model/architectures.js';
import { Prng } from '../../util/prng.js';
import '../all.js';

// Tiny official TRAC run: BERT-like, d = 24 = 2·3·4, q and v, r = 4, A ranks [1,2,3], B ranks [1,3,4].
const D = 24;
const SH = [2, 3, 4];
const RA = [1, 2, 3];
const RB = [1, 3, 4];
const R = 4;
const LAYERS = 2;
const TYPES = [
  ['query', 'q'],
  ['value', 'v'],
] as const;
const path = (l: number, t: string) => `bert.encoder.layer.${l}.attention.self.${t}`;

type Structure = 'trac' | 'shared_tt' | 'all_trainable';

/** An official state dict (names as TRAC's save_pretrained writes them) with random values. */
function officialFiles(structure: Structure, activation: string, seed: number) {
  const g = new Prng(seed, 'trac-official');
  const sd = new Map<string, T>();
  const shared = (side: 'A' | 'B', ranks: number[]) => {
    const out: Record<string, [T, T]> = {};
    for (const [, name] of TYPES) {
      const G2 = randn([ranks[1]!, SH[1]!, ranks[2]!], g, 0.7);
      const G3 = randn([ranks[2]!, SH[2]!, R], g, 0.7);
      out[name] = [G2, G3];
      if (structure !== 'all_trainable') {
        sd.set(`base_model.model.shared_random_param_U_${name}_lora_${side}_1`, G2);
        sd.set(`base_model.model.shared_trainable_param_U_${name}_lora_${side}_2`, G3);
      }
    }
    return out;
  };
  const sharedA = shared('A', RA);
  const sharedB = shared('B', RB);
  const expected = new Map<string, Float64Array>();
  const s = 8 / R;
  for (let l = 0; l < LAYERS; l++) {
    for (const [t, name] of TYPES) {
      const p = path(l, t);
      const mats: Record<'A' | 'B', ReturnType<typeof ttMatrix>> = {} as never;
      for (const [side, ranks, sh] of [['A', RA, sharedA], ['B', RB, sharedB]] as const) {
        const U0 = randn([1, SH[0]!, ranks[1]!], g, 0.7);
        sd.set(`base_model.model.${p}.lora_${side}.tt_1d.U0`, U0);
        let [U1, U2] = sh[name]!;
        if (structure === 'all_trainable') {
          U1 = randn([ranks[1]!, SH[1]!, ranks[2]!], g, 0.7);
          U2 = randn([ranks[2]!, SH[2]!, R], g, 0.7);
          sd.set(`base_model.model.${p}.lora_${side}.tt_1d.U1`, U1);
          sd.set(`base_model.model.${p}.lora_${side}.tt_1d.U2`, U2);
        }
        if (structure === 'trac') {
          // The official forward: U2 scaled by act(rank)[:, None, None] and act(dim)[None, :, None].
          const rank = randn([ranks[2]!], g, 0.5);
          const dim = randn([SH[2]!], g, 0.5);
          sd.set(`base_model.model.${p}.lora_${side}.tt_1d.tt_rank_scale_factors.2`, rank);
          sd.set(`base_model.model.${p}.lora_${side}.tt_1d.tt_dim_scale_factors.2`, dim);
          const act = (v: Float32Array): number[] => {
            if (activation === 'none') return [...v];
            const e = [...v].map((x) => Math.exp(x));
            const z = e.reduce((a, b) => a + b, 0);
            return e.map((x) => (v.length * x) / z);
          };
          const ra = act(rank.data);
          const da = act(dim.data);
          const scaled = new Float32Array(U2.data.length);
          for (let a = 0; a < ranks[2]!; a++) for (let j = 0; j < SH[2]!; j++) for (let k = 0; k < R; k++) {
            const idx = (a * SH[2]! + j) * R + k;
            scaled[idx] = U2.data[idx]! * ra[a]! * da[j]!;
          }
          U2 = { shape: U2.shape, data: scaled };
        }
        mats[side] = ttMatrix([U0, U1, U2]);
      }
      // Official TracLinear: result += lora_B(lora_A(x)) · scaling, A: x @ A_mat, B: · @ B_matᵀ.
      expected.set(p, loraDelta(mats.A, mats.B, s));
    }
  }
  sd.set('base_model.model.classifier.dense.weight', randn([D, D], g));
  sd.set('base_model.model.classifier.out_proj.weight', randn([2, D], g));
  const config = {
    peft_type: 'LORA',
    task_type: 'SEQ_CLS',
    base_model_name_or_path: 'my/tiny-bert',
    r: R,
    lora_alpha: 8,
    lora_dropout: 0.1,
    target_modules: ['query', 'value'],
    hidden_size: D,
    mlp_hidden_dim: 4 * D,
    tensor_rank: 8,
    tensor_shape: { [D]: SH },
    tensor_rank_A: { [D]: RA },
    tensor_rank_B: { [D]: RB },
    tensor_init: 'TTNorm',
    param_structure:
      structure === 'all_trainable'
        ? { trainable_dim: { A: [0, 1, 2], B: [0, 1, 2] }, random_dim: { A: null, B: null }, shared_trainable_dim: { A: null, B: null }, shared_random_dim: { A: null, B: null } }
        : null,
    merge_weights: false,
    fan_in_fan_out: false,
    bias: 'none',
    modules_to_save: null,
    scale_shared_tt_cores: structure === 'trac',
    vector_activation: activation,
    scale_init: 'ones',
    use_fast_tt: false,
    inference_mode: true,
  };
  const files = new Map<string, Uint8Array>([
    ['adapter_config.json', json(config)],
    ['adapter_model.bin', writeTorchStateDict(sd)],
  ]);
  return { files, expected, sd };
}

describe('TRAC official checkpoints import', () => {
  const cases: [Structure, string][] = [
    ['trac', 'softmax'],
    ['trac', 'none'],
    ['shared_tt', 'softmax'],
    ['all_trainable', 'none'],
  ];
  for (const [structure, act] of cases) {
    it(`${structure} / ${act}: ΔW equals the official module's ΔW (≤ 1e-5 relative)`, async () => {
      const { files, expected } = officialFiles(structure, act, 11);
      expect(detectOfficial({ files })).toBe('trac');
      const { adapter, notes } = importOfficial({ files, source: 'official-trac' });
      expect(adapter.config.peft_type).toBe('TRAC');
      expect(adapter.config.variant).toBe(structure);
      expect(notes.join(' ')).toContain('mlp_hidden_dim');
      const ups = await materializeAdapter(adapter, new JsBackend());
      expect(ups.map((u) => u.path).sort()).toEqual([...expected.keys()].sort());
      // fp32 storage of both sides, fp64 reference: errors are at float32 rounding (~1e-7).
      for (const u of ups) expect(relErr(deltaW(u), expected.get(u.path)!)).toBeLessThan(1e-5);
      // The classifier head is carried as modules_to_save, and the native files round-trip.
      expect(adapter.config.modules_to_save).toContain('classifier');
      expect(adapter.extras.get('base_model.model.classifier.out_proj.weight')!.shape).toEqual([2, D]);
      const { configJson, safetensors } = adapterToFiles(adapter);
      const back = adapterFromBytes({ config: configJson, safetensors });
      const ups2 = await materializeAdapter(back, new JsBackend());
      for (const u of ups2) expect(relErr(deltaW(u), expected.get(u.path)!)).toBeLessThan(1e-5);
    });
  }

  it('plans on a given model shape and checks the module dimensions against it', () => {
    const { files } = officialFiles('trac', 'softmax', 3);
    const shape = buildShape('bert', { hiddenSize: D, numLayers: LAYERS, numHeads: 2, numKvHeads: 2, intermediateSize: 48 });
    const { adapter } = importOfficial({ files }, { shape });
    expect(adapter.plan.modules).toHaveLength(4);
    const wrong = buildShape('bert', { hiddenSize: 32, numLayers: LAYERS, numHeads: 2, numKvHeads: 2, intermediateSize: 48 });
    expect(() => importOfficial({ files }, { shape: wrong })).toThrow(ShapeMismatchError);
  });

  it('refuses by name: a missing shared core, an unmodelled activation, an unknown tensor', () => {
    const { files, sd } = officialFiles('trac', 'softmax', 5);
    const err = (f: () => unknown): TensorPeftError => {
      try {
        f();
      } catch (e) {
        if (e instanceof TensorPeftError) return e;
        throw e;
      }
      throw new Error('expected an error');
    };
    const missing = new Map(sd);
    missing.delete('base_model.model.shared_trainable_param_U_v_lora_B_2');
    const e1 = err(() => importOfficial({ files: new Map([...files, ['adapter_model.bin', writeTorchStateDict(missing)]]) }));
    expect(e1).toBeInstanceOf(ShapeMismatchError);
    expect(e1.details.tensor).toBe('base_model.model.shared_trainable_param_U_v_lora_B_2');
    const cfg = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')));
    const e2 = err(() => importOfficial({ files: new Map([...files, ['adapter_config.json', json({ ...cfg, vector_activation: 'relu' })]]) }));
    expect(e2).toBeInstanceOf(ConfigError);
    expect(e2.details.found).toBe('relu');
    const extra = new Map(sd);
    extra.set('base_model.model.bert.encoder.layer.0.output.LayerNorm.weight', randn([D], new Prng(1)));
    const e3 = err(() => importOfficial({ files: new Map([...files, ['adapter_model.bin', writeTorchStateDict(extra)]]) }));
    expect(e3.details.tensor).toBe('base_model.model.bert.encoder.layer.0.output.LayerNorm.weight');
  });
});

describe('TRAC export to the official format (export --to official)', () => {
  for (const structure of ['trac', 'shared_tt', 'all_trainable'] as const) {
    it(`${structure}: official files → import → export give back every official tensor bit for bit`, async () => {
      const { files, sd } = officialFiles(structure, 'softmax', 13);
      const { adapter } = importOfficial({ files });
      const out = exportOfficial(adapter);
      expect(out.from).toBe('trac');
      const { readTorchStateDict } = await import('../../io/torch/checkpoint.js');
      const back = readTorchStateDict(out.files.get('adapter_model.bin')!);
      expect([...back.keys()].sort()).toEqual([...sd.keys()].sort());
      for (const [k, t] of sd) expect(back.get(k)!.data).toEqual(t.data);
      const cfg = JSON.parse(new TextDecoder().decode(out.files.get('adapter_config.json')));
      expect(cfg).toMatchObject({ peft_type: 'LORA', r: R, lora_alpha: 8, scale_shared_tt_cores: structure === 'trac', vector_activation: 'softmax' });
      // 24 is in no official table: string-keyed maps, with a note on the int keys the official code needs.
      expect(cfg.tensor_shape).toEqual({ [D]: SH });
      expect(out.notes.join(' ')).toContain('int');
      // And the exported folder imports again to the same ΔW.
      const again = importOfficial({ files: out.files });
      const u1 = await materializeAdapter(adapter, new JsBackend());
      const u2 = await materializeAdapter(again.adapter, new JsBackend());
      u1.forEach((u, i) => expect(deltaW(u2[i]!)).toEqual(deltaW(u)));
    });
  }

  it('a native RoBERTa-base adapter on the official tables exports null shape fields (the official code then uses tensor_cfg.py)', async () => {
    const { createAdapter } = await import('../../io/adapter.js');
    const { presetShape } = await import('../../model/presets.js');
    const a = createAdapter({ method: 'trac', shape: presetShape('roberta-base'), seed: 2, nonzero: true });
    const out = exportOfficial(a);
    const cfg = JSON.parse(new TextDecoder().decode(out.files.get('adapter_config.json')));
    expect([cfg.tensor_shape, cfg.tensor_rank_A, cfg.tensor_rank_B]).toEqual([null, null, null]);
    expect(out.notes).toEqual([]);
    const back = importOfficial({ files: out.files }, { shape: presetShape('roberta-base') });
    // Same tensors in, same ΔW out: compared bit for bit on two of the 24 modules (768 × 768 each).
    const u1 = await materializeAdapter(a, new JsBackend());
    const u2 = await materializeAdapter(back.adapter, new JsBackend());
    for (const i of [0, 23]) {
      const [w1, w2] = [deltaW(u1[i]!), deltaW(u2[i]!)];
      let diff = 0;
      for (let k = 0; k < w1.length; k++) diff = Math.max(diff, Math.abs(w1[k]! - w2[k]!));
      expect(diff).toBe(0);
    }
  });

  it('refuses what the official code cannot hold: the frozen variant, exp controllers', async () => {
    const { createAdapter } = await import('../../io/adapter.js');
    const shape = buildShape('bert', { hiddenSize: D, numLayers: 1, numHeads: 2, numKvHeads: 2, intermediateSize: 48 });
    expect(() => exportOfficial(createAdapter({ method: 'trac', shape, config: { variant: 'frozen' } }))).toThrow(/frozen/);
    expect(() => exportOfficial(createAdapter({ method: 'trac', shape, config: { controller_activation: 'exp' } }))).toThrow(ConfigError);
  });
});
