/**
 * TRAC → the files BangguoYe/TRAC's `PeftModel.from_pretrained` reads: `adapter_config.json`
 * (`peft_type: "LORA"` + TRAC fields) and `adapter_model.bin` (torch.save of the state dict with
 * the official key names; the inverse of import.ts).
 *
 * The official config indexes `tensor_shape[in_features]` with integer keys, which JSON cannot
 * carry: when every dimension uses `tensor_cfg.py`'s tables the fields are written as null (the
 * official code then uses its tables); otherwise string-keyed maps are written and `notes` says to
 * turn the keys into ints in Python. What the official code cannot represent is refused by name:
 * the `frozen` variant, the `exp` activation, and two of our matrix types that map to one official
 * sharing name (q, k, v, proj, fc1, fc2) with different shared cores.
 */
import { ConfigError } from '../../errors.js';
import type { ExportSource } from '../../io/official/types.js';
import { stableStringify } from '../../io/json.js';
import { writeTorchStateDict } from '../../io/torch/writer.js';
import { moduleName } from '../../model/shape.js';
import type { Tensor } from '../../tensor.js';
import { DEFAULT_TRAC_RANK_A, DEFAULT_TRAC_RANK_B, DEFAULT_TRAC_TENSOR_SHAPE, type TracConfig } from './config.js';
import { officialTracName } from './import.js';
import { controllerKey, coreKey, sideGeometry, type Side } from './plan.js';

const P = 'base_model.model.';
const INIT_NAMES: Record<TracConfig['init'], string> = { tt_normal: 'TTNorm', tt_uniform: 'TTUnif', kaiming_normal: 'KaimingNorm', kaiming_uniform: 'KaimingUnif' };

function sameData(a: Tensor, b: Tensor): boolean {
  return a.data.length === b.data.length && a.data.every((x, i) => Object.is(x, b.data[i]));
}

export function exportTracOfficial(a: ExportSource): { files: Map<string, Uint8Array>; notes: string[] } {
  const c = a.config as unknown as TracConfig;
  if (c.variant === 'frozen') throw new ConfigError('the official TRAC code has no frozen-G3 variant', { field: 'variant', expected: 'trac, shared_tt or all_trainable', found: c.variant });
  if (c.controller_activation === 'exp' && c.variant === 'trac') {
    throw new ConfigError('the official TRAC code has no exp controller activation', { field: 'controller_activation', expected: 'linear or softmax', found: 'exp' });
  }
  const notes: string[] = [];
  const sd = new Map<string, Tensor>();
  const sharedBy = new Map<string, { type: string; tensors: Map<string, Tensor> }>();
  const shapes: Record<string, number[]> = {};
  const ranksA: Record<string, number[]> = {};
  const ranksB: Record<string, number[]> = {};
  for (const m of a.plan.modules) {
    const name = officialTracName(moduleName(m.path));
    if (!name) throw new ConfigError('module has no official TRAC sharing name', { field: m.path, expected: 'q, k, v, proj, fc1 or fc2 (get_module_name)', found: moduleName(m.path) });
    for (const [side, dim, ranks] of [['A', m.n, ranksA], ['B', m.m, ranksB]] as const) {
      const g = sideGeometry(c, side, dim, m.path);
      shapes[dim] = [...g.sizes];
      ranks[dim] = [1, g.ranks[1], g.ranks[2]];
    }
    for (const side of ['A', 'B'] as Side[]) {
      if (c.variant === 'all_trainable') {
        for (const k of [1, 2, 3] as const) sd.set(`${P}${m.path}.lora_${side}.tt_1d.U${k - 1}`, a.params.get(coreKey(c, m, side, k))!);
      } else {
        sd.set(`${P}${m.path}.lora_${side}.tt_1d.U0`, a.params.get(coreKey(c, m, side, 1))!);
        const shared = new Map<string, Tensor>([
          [`${P}shared_random_param_U_${name}_lora_${side}_1`, a.params.get(coreKey(c, m, side, 2))!],
          [`${P}shared_trainable_param_U_${name}_lora_${side}_2`, a.params.get(coreKey(c, m, side, 3))!],
        ]);
        const prev = sharedBy.get(`${name}.${side}`);
        if (prev && prev.type !== m.type) {
          for (const [k, t] of shared) {
            if (!sameData(prev.tensors.get(k)!, t)) {
              throw new ConfigError(`matrix types ${prev.type} and ${m.type} both map to the official sharing name "${name}" but hold different shared cores`, { field: m.path, expected: 'one core per official name', found: [prev.type, m.type] });
            }
          }
        } else if (!prev) sharedBy.set(`${name}.${side}`, { type: m.type, tensors: shared });
        for (const [k, t] of shared) sd.set(k, t);
      }
      if (c.variant === 'trac') {
        sd.set(`${P}${m.path}.lora_${side}.tt_1d.tt_rank_scale_factors.2`, a.params.get(controllerKey(m.path, side, 'rank'))!);
        sd.set(`${P}${m.path}.lora_${side}.tt_1d.tt_dim_scale_factors.2`, a.params.get(controllerKey(m.path, side, 'mode'))!);
      }
    }
  }
  for (const [k, t] of a.extras) sd.set(k.replace('.modules_to_save.default.', '.'), t);

  const fromTable = (got: Record<string, number[]>, table: Record<string, number[]>) => Object.entries(got).every(([d, v]) => table[d]?.join() === v.join());
  const tablesFit = fromTable(shapes, DEFAULT_TRAC_TENSOR_SHAPE) && fromTable(ranksA, DEFAULT_TRAC_RANK_A) && fromTable(ranksB, DEFAULT_TRAC_RANK_B);
  if (!tablesFit) notes.push('tensor_shape / tensor_rank_A / tensor_rank_B are maps with string keys: the official code indexes them with ints, so convert the keys (e.g. {int(k): v for k, v in d.items()}) before from_pretrained');
  const config = {
    peft_type: 'LORA',
    task_type: c.task_type ?? null,
    base_model_name_or_path: c.base_model_name_or_path ?? null,
    inference_mode: true,
    r: c.r,
    lora_alpha: c.lora_alpha,
    lora_dropout: c.lora_dropout,
    target_modules: c.target_modules,
    hidden_size: a.shape.hiddenSize,
    mlp_hidden_dim: a.shape.intermediateSize,
    tensor_shape: tablesFit ? null : shapes,
    tensor_rank_A: tablesFit ? null : ranksA,
    tensor_rank_B: tablesFit ? null : ranksB,
    tensor_init: INIT_NAMES[c.init],
    param_structure:
      c.variant === 'all_trainable'
        ? { trainable_dim: { A: [0, 1, 2], B: [0, 1, 2] }, random_dim: { A: null, B: null }, shared_trainable_dim: { A: null, B: null }, shared_random_dim: { A: null, B: null } }
        : null,
    scale_shared_tt_cores: c.variant === 'trac',
    vector_activation: c.controller_activation === 'linear' ? 'none' : c.controller_activation,
    scale_init: 'ones',
    use_fast_tt: false,
    merge_weights: false,
    fan_in_fan_out: c.fan_in_fan_out ?? false,
    bias: 'none',
    modules_to_save: c.modules_to_save ?? null,
  };
  return {
    files: new Map([
      ['adapter_config.json', new TextEncoder().encode(stableStringify(config))],
      ['adapter_model.bin', writeTorchStateDict(sd)],
    ]),
    notes,
  };
}
