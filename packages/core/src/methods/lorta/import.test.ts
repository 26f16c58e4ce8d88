import { describe, expect, it } from 'vitest';
import { JsBackend, deltaW } from '../../backend/js.js';
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import { materializeAdapter } from '../../io/adapter.js';
import { detectOfficial, importOfficial } from '../../io/official/import.js';
import { exportOfficial } from '../../io/official/export.js';
import { json, randn, relErr, type T } from '../../io/official/testing/reference.js';
import { writeSafetensors } from '../../io/safetensors.js';
import { writeTorchStateDict } from '../../io/torch/writer.js';
import { buildShape } from '../../model/architectures.js';
import { Prng } from '../../util/prng.js';
import '../all.js';

// A tiny LLaMA: d = 32, H = 4 heads of 8, L = 3 layers.
const D = 32;
const H = 4;
const L = 3;
const R = 3;
const shape = buildShape('llama', { hiddenSize: D, numLayers: L, numHeads: H, numKvHeads: H, intermediateSize: 64 });
const QKVO: Record<string, number> = { q_proj: 0, k_proj: 1, v_proj: 2, o_proj: 3 };

/** The port's saved tensors and, for each targeted module, scaling·dW written out from `_compute_weights_from_tensor`. */
function portFiles(targets: string[], opts: { rslora?: boolean; bin?: boolean; alpha?: number } = {}) {
  const g = new Prng(21, 'lorta-port');
  const sd = new Map<string, T>([
    ['base_model.model.lora_A', randn([D, R], g)],
    ['base_model.model.lora_B', randn([R, D / H], g)],
    ['base_model.model.lora_C_h', randn([H, R], g)],
    ['base_model.model.lora_C_l', randn([L, R], g)],
    ['base_model.model.lora_C_m', randn([4, R], g)],
  ]);
  const A = sd.get('base_model.model.lora_A')!.data;
  const B = sd.get('base_model.model.lora_B')!.data;
  const Ch = sd.get('base_model.model.lora_C_h')!.data;
  const Cl = sd.get('base_model.model.lora_C_l')!.data;
  const Cm = sd.get('base_model.model.lora_C_m')!.data;
  const alpha = opts.alpha ?? 16;
  const scaling = opts.rslora ? alpha / Math.sqrt(R) : alpha / R;
  const expected = new Map<string, Float64Array>();
  const p = D / H;
  for (let l = 0; l < L; l++)
    for (const t of targets) {
      const mi = QKVO[t]!;
      // dW [D, D] = cat over heads (dim 1) of A @ diag(c) @ B; the layer adds x @ dWᵀ · scaling → W_eff = scaling · dW.
      const dW = new Float64Array(D * D);
      for (let h = 0; h < H; h++)
        for (let o = 0; o < D; o++)
          for (let j = 0; j < p; j++) {
            let acc = 0;
            for (let k = 0; k < R; k++) acc += A[o * R + k]! * Ch[h * R + k]! * Cm[mi * R + k]! * Cl[l * R + k]! * B[k * p + j]!;
            dW[o * D + h * p + j] = scaling * acc;
          }
      expected.set(`model.layers.${l}.self_attn.${t}`, dW);
    }
  const config = {
    peft_type: 'LORTA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: 'my/tiny-llama',
    r: R,
    lora_alpha: alpha,
    init_scale: 0,
    lora_dropout: 0.05,
    target_modules: targets,
    fan_in_fan_out: false,
    bias: 'none',
    use_rslora: opts.rslora ?? false,
    modules_to_save: null,
    init_lora_weights: true,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    megatron_config: null,
    megatron_core: 'megatron.core',
    loftq_config: {},
    use_dora: false,
    layer_replication: null,
    revision: null,
    inference_mode: true,
    peft_version: '0.12.1.dev0',
  };
  const weights = opts.bin
    ? (['adapter_model.bin', writeTorchStateDict(sd)] as const)
    : (['adapter_model.safetensors', writeSafetensors(new Map([...sd].map(([k, v]) => [k, v])), { dtype: 'fp32', metadata: { format: 'pt' } })] as const);
  return { files: new Map<string, Uint8Array>([['adapter_config.json', json(config)], weights]), expected };
}

describe('LoRTA PEFT-port checkpoints import', () => {
  const cases: [string, string[], { rslora?: boolean; bin?: boolean }][] = [
    ['q,v safetensors', ['q_proj', 'v_proj'], {}],
    ['q,k,v,o safetensors', ['q_proj', 'k_proj', 'v_proj', 'o_proj'], {}],
    ['k,o with rsLoRA', ['k_proj', 'o_proj'], { rslora: true }],
    ['v from adapter_model.bin', ['v_proj'], { bin: true }],
  ];
  for (const [name, targets, opts] of cases) {
    it(`${name}: ΔW equals the port's scaling·dW (≤ 1e-5 relative)`, async () => {
      const { files, expected } = portFiles(targets, opts);
      expect(detectOfficial({ files })).toBe('lorta');
      const { adapter } = importOfficial({ files }, { shape });
      expect(adapter.config.head_side).toBe('input');
      const ups = await materializeAdapter(adapter, new JsBackend());
      expect(ups).toHaveLength(L * targets.length);
      // fp32 tensors, fp64 reference: float32 rounding only.
      for (const u of ups) expect(relErr(deltaW(u), expected.get(u.path)!)).toBeLessThan(1e-5);
    });
  }

  it('the port config (9 extra fields) parses as a native LORTA config', () => {
    const { files } = portFiles(['q_proj', 'v_proj']);
    const { adapter } = importOfficial({ files }, { shape });
    expect(adapter.params.get('base_model.lorta_C_M')!.shape).toEqual([2, R]);
  });

  it('asks for the model when the file cannot place its modules, and checks d, H, L', () => {
    const { files } = portFiles(['q_proj']);
    expect(() => importOfficial({ files })).toThrow(ConfigError);
    const other = buildShape('llama', { hiddenSize: D, numLayers: L, numHeads: 8, numKvHeads: 8, intermediateSize: 64 });
    expect(() => importOfficial({ files }, { shape: other })).toThrow(ShapeMismatchError);
  });

  it('refuses port settings it does not model, by field', () => {
    const { files } = portFiles(['q_proj']);
    const cfg = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')));
    const withDora = new Map([...files, ['adapter_config.json', json({ ...cfg, use_dora: true })]]);
    expect(() => importOfficial({ files: withDora }, { shape })).toThrow(/use_dora/);
    const withPattern = new Map([...files, ['adapter_config.json', json({ ...cfg, rank_pattern: { q_proj: 8 } })]]);
    expect(() => importOfficial({ files: withPattern }, { shape })).toThrow(/rank_pattern/);
  });
});

describe('LoRTA export to the PEFT port (export --to official)', () => {
  it('port files → import → export give back the port tensors (untargeted lora_C_m rows zero) and the same ΔW', async () => {
    const { files } = portFiles(['q_proj', 'v_proj']);
    const { adapter } = importOfficial({ files }, { shape });
    const out = exportOfficial(adapter);
    const { parseSafetensors } = await import('../../io/safetensors.js');
    const orig = parseSafetensors(files.get('adapter_model.safetensors')!).tensors;
    const back = parseSafetensors(out.files.get('adapter_model.safetensors')!).tensors;
    for (const k of ['base_model.model.lora_A', 'base_model.model.lora_B', 'base_model.model.lora_C_h', 'base_model.model.lora_C_l']) {
      expect(back.get(k)!.shape).toEqual(orig.get(k)!.shape);
      expect(back.get(k)!.data).toEqual(orig.get(k)!.data);
    }
    const cm = back.get('base_model.model.lora_C_m')!.data;
    const cm0 = orig.get('base_model.model.lora_C_m')!.data;
    for (const row of [0, 2]) expect(cm.subarray(row * R, (row + 1) * R)).toEqual(cm0.subarray(row * R, (row + 1) * R));
    for (const row of [1, 3]) expect([...cm.subarray(row * R, (row + 1) * R)].every((x) => x === 0)).toBe(true);
    const again = importOfficial({ files: out.files }, { shape });
    const u1 = await materializeAdapter(adapter, new JsBackend());
    const u2 = await materializeAdapter(again.adapter, new JsBackend());
    u1.forEach((u, i) => expect(deltaW(u2[i]!)).toEqual(deltaW(u)));
  });

  it('refuses the paper orientation (heads on the output side) by field', async () => {
    const { createAdapter } = await import('../../io/adapter.js');
    const a = createAdapter({ method: 'lorta', shape, config: { target_modules: ['q_proj'] } });
    expect(() => exportOfficial(a)).toThrow(/head_side/);
  });
});
