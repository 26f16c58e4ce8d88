/**
 * LoRTA → the files the ihounie/lorta PEFT port reads: `adapter_config.json` (`peft_type:
 * "LORTA"` with the port's fields) and `adapter_model.safetensors` with `base_model.model.lora_A`
 * [d, r], `lora_B` [r, d/H], `lora_C_h`, `lora_C_l`, and the 4-row `lora_C_m` (q, k, v, o; rows of
 * untargeted types are zero and unused). The inverse of import.ts. Only `head_side: "input"`
 * adapters have the port's form (the paper's output-side heads are a different ΔW), and the port
 * has no grouped-query attention: both are refused by field.
 */
import { ConfigError } from '../../errors.js';
import type { ExportSource } from '../../io/official/types.js';
import { stableStringify } from '../../io/json.js';
import { writeSafetensors } from '../../io/safetensors.js';
import type { Tensor } from '../../tensor.js';
import { typesInOrder } from '../common.js';
import type { LortaConfig } from './config.js';
import { portMatrixRow } from './import.js';
import { LORTA_KEYS } from './plan.js';

export function exportLortaOfficial(a: ExportSource): { files: Map<string, Uint8Array>; notes: string[] } {
  const c = a.config as unknown as LortaConfig;
  if (c.head_side !== 'input') {
    throw new ConfigError('the LoRTA PEFT port puts the heads on the input side: only head_side "input" adapters have its form', { field: 'head_side', expected: 'input', found: c.head_side });
  }
  const d = a.shape.hiddenSize;
  const gqa = a.plan.modules.find((m) => m.m !== d || m.n !== d);
  if (gqa) throw new ConfigError('the LoRTA port adapts square d → d matrices only', { field: gqa.path, expected: [d, d], found: [gqa.n, gqa.m] });
  const r = c.r;
  const get = (k: string): Tensor => a.params.get(k)!;
  const B = get(LORTA_KEYS.B); // [d/H, r]
  const p = B.shape[0]!;
  const Bt = new Float32Array(r * p);
  for (let j = 0; j < p; j++) for (let k = 0; k < r; k++) Bt[k * p + j] = B.data[j * r + k]!;
  const CM = get(LORTA_KEYS.C_M);
  const cm4 = new Float32Array(4 * r);
  typesInOrder(a.plan.modules).forEach((t, i) => {
    const row = portMatrixRow(t);
    if (row === undefined) throw new ConfigError('the LoRTA port only adapts q, k, v and o matrices', { field: t, expected: 'q/k/v/o projections', found: t });
    cm4.set(CM.data.subarray(i * r, (i + 1) * r), row * r);
  });
  const tensors = new Map<string, Tensor>([
    ['base_model.model.lora_A', get(LORTA_KEYS.A)],
    ['base_model.model.lora_B', { shape: [r, p], data: Bt }],
    ['base_model.model.lora_C_h', get(LORTA_KEYS.C_H)],
    ['base_model.model.lora_C_l', get(LORTA_KEYS.C_L)],
    ['base_model.model.lora_C_m', { shape: [4, r], data: cm4 }],
  ]);
  for (const [k, t] of a.extras) tensors.set(k.replace('.modules_to_save.default.', '.'), t);
  const config = {
    peft_type: 'LORTA',
    task_type: c.task_type ?? null,
    base_model_name_or_path: c.base_model_name_or_path ?? null,
    revision: null,
    inference_mode: true,
    r,
    target_modules: c.target_modules,
    lora_alpha: c.lora_alpha,
    init_scale: c.init_scale,
    lora_dropout: c.lora_dropout,
    fan_in_fan_out: false,
    bias: 'none',
    use_rslora: c.use_rslora,
    modules_to_save: c.modules_to_save ?? null,
    init_lora_weights: true,
    layers_to_transform: c.layers_to_transform ?? null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    megatron_config: null,
    megatron_core: 'megatron.core',
    loftq_config: {},
    use_dora: false,
    layer_replication: null,
  };
  return {
    files: new Map([
      ['adapter_config.json', new TextEncoder().encode(stableStringify(config))],
      ['adapter_model.safetensors', writeSafetensors(tensors, { dtype: 'fp32', metadata: { format: 'pt' } })],
    ]),
    notes: [],
  };
}
