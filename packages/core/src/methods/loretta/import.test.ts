import { describe, expect, it } from 'vitest';
import { JsBackend, deltaW } from '../../backend/js.js';
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import { materializeAdapter } from '../../io/adapter.js';
import { detectOfficial, importOfficial } from '../../io/official/import.js';
import { json, randn, relErr, ttMatrix, type T } from '../../io/official/testing/reference.js';
import { writeTorchStateDict } from '../../io/torch/writer.js';
import { Prng } from '../../util/prng.js';
import '../all.js';

// Tiny official LoRETTA-rep run on a RoBERTa-like model: d = 24, r = 4, tensor_rank 3,
// A: 24·4 = [4, 4, 6], B: 4·24 = [4, 6, 4]; a tensor-train classifier.dense over [4, 6, 6, 4].
const D = 24;
const R = 4;
const TR = 3;
const ttCores = (factors: number[], g: Prng): T[] => factors.map((f, k) => randn([k === 0 ? 1 : TR, f, k === factors.length - 1 ? 1 : TR], g, 0.6));
const path = (l: number, t: string) => `roberta.encoder.layer.${l}.attention.self.${t}`;

function officialFiles(seed: number, withHead = true) {
  const g = new Prng(seed, 'loretta-official');
  const sd = new Map<string, T>();
  const expected = new Map<string, Float64Array>();
  const s = 16 / R;
  for (let l = 0; l < 2; l++)
    for (const t of ['query', 'value']) {
      const a = ttCores([4, 4, 6], g);
      const b = ttCores([4, 6, 4], g);
      a.forEach((c, k) => sd.set(`base_model.model.${path(l, t)}.lora_A.layer.tensor.factors.${k}`, c));
      b.forEach((c, k) => sd.set(`base_model.model.${path(l, t)}.lora_B.layer.tensor.factors.${k}`, c));
      for (const [side, n] of [['A', 3], ['B', 3]] as const)
        for (let k = 0; k < n - 1; k++) sd.set(`base_model.model.${path(l, t)}.lora_${side}.layer.tensor.rank_parameters.${k}`, { shape: [TR], data: new Float32Array(TR).fill(1) });
      // Official: result += lora_B(lora_A(x))·scaling with lora_A(x) = x @ TT_A.reshape(n, r), lora_B(y) = y @ TT_B.reshape(r, m).
      const A = ttMatrix(a).data; // n·r values, row-major [n, r]
      const B = ttMatrix(b).data; // r·m values, row-major [r, m]
      const W = new Float64Array(D * D);
      for (let o = 0; o < D; o++) for (let i = 0; i < D; i++) {
        let acc = 0;
        for (let k = 0; k < R; k++) acc += A[i * R + k]! * B[k * D + o]!;
        W[o * D + i] = s * acc;
      }
      expected.set(path(l, t), W);
    }
  let head: T[] = [];
  if (withHead) {
    head = ttCores([4, 6, 6, 4], g);
    head.forEach((c, k) => sd.set(`base_model.model.classifier.dense.layer.tensor.factors.${k}`, c));
    sd.set('base_model.model.classifier.dense.layer.bias', randn([D], g));
    sd.set('base_model.model.classifier.out_proj.weight', randn([3, D], g));
    sd.set('base_model.model.classifier.out_proj.bias', randn([3], g));
  }
  const config = { peft_type: 'LORA', task_type: 'SEQ_CLS', r: R, lora_alpha: 16, lora_dropout: 0.05, tensor_rank: TR, target_modules: ['query', 'value'], merge_weights: false, fan_in_fan_out: false, enable_lora: null, bias: 'none', modules_to_save: null, base_model_name_or_path: 'roberta-tiny', inference_mode: true };
  return { files: new Map([['adapter_config.json', json(config)], ['adapter_model.bin', writeTorchStateDict(sd)]]), expected, head, sd };
}

describe('LoRETTA official checkpoints import', () => {
  it('ΔW equals the official module’s ΔW (≤ 1e-5 relative); the TT classifier becomes a dense head', async () => {
    const { files, expected, head } = officialFiles(2);
    expect(detectOfficial({ files })).toBe('loretta');
    const { adapter, notes } = importOfficial({ files });
    expect(adapter.config.tensor_shape_a).toEqual({ [D]: [4, 4, 6] });
    const ups = await materializeAdapter(adapter, new JsBackend());
    expect(ups).toHaveLength(4);
    // fp32 cores, fp64 reference: float32 rounding only.
    for (const u of ups) expect(relErr(deltaW(u), expected.get(u.path)!)).toBeLessThan(1e-5);
    // classifier.dense: x @ TT.reshape(24, 24) + b  ⇒  torch weight [out, in] = (that matrix)ᵀ.
    const full = ttMatrix(head).data;
    const w = adapter.extras.get('base_model.model.classifier.dense.weight')!;
    expect(w.shape).toEqual([D, D]);
    const ref = new Float64Array(D * D);
    for (let i = 0; i < D; i++) for (let o = 0; o < D; o++) ref[o * D + i] = full[i * D + o]!;
    expect(relErr(w.data, ref)).toBeLessThan(1e-6);
    expect(adapter.extras.has('base_model.model.classifier.out_proj.weight')).toBe(true);
    expect(adapter.config.modules_to_save).toEqual(['classifier']);
    expect(notes.join(' ')).toContain('LayerNorm');
  });

  it('refuses rank-pruned files and unknown tensors by name', () => {
    const { sd, files } = officialFiles(3, false);
    const pruned = new Map(sd);
    pruned.set(`base_model.model.${path(0, 'query')}.lora_A.layer.tensor.rank_parameters.0`, { shape: [TR], data: new Float32Array([1, 0, 1]) });
    expect(() => importOfficial({ files: new Map([...files, ['adapter_model.bin', writeTorchStateDict(pruned)]]) })).toThrow(ConfigError);
    const odd = new Map(sd);
    odd.set('base_model.model.roberta.encoder.layer.0.output.LayerNorm.weight', randn([D], new Prng(1)));
    expect(() => importOfficial({ files: new Map([...files, ['adapter_model.bin', writeTorchStateDict(odd)]]) })).toThrow(ShapeMismatchError);
  });
});

describe('LoRETTA import bounds', () => {
  it('cores implying a module wider than 2^20 features are refused before the plan allocates for it', () => {
    const { files, sd } = officialFiles(5, false);
    const big = new Map(sd);
    const p0 = `base_model.model.${path(0, 'query')}.lora_A.layer.tensor`;
    // n·r = 4 · 2^19 · 4 = 2^23 → n = 2^21 (r = 4).
    big.set(`${p0}.factors.0`, { shape: [1, 4, 1], data: new Float32Array(4).fill(0.1) });
    big.set(`${p0}.factors.1`, { shape: [1, 1 << 19, 1], data: new Float32Array(1 << 19).fill(0.1) });
    big.set(`${p0}.factors.2`, { shape: [1, 4, 1], data: new Float32Array(4).fill(0.1) });
    for (let k = 0; k < 2; k++) big.set(`${p0}.rank_parameters.${k}`, { shape: [1], data: new Float32Array([1]) });
    expect(() => importOfficial({ files: new Map([...files, ['adapter_model.bin', writeTorchStateDict(big)]]) })).toThrow(/out of range/);
  });
});
