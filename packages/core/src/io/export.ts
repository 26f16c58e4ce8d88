/**
 * Export any adapter to a plain HF PEFT LoRA adapter (METHODS.md, "Export to PEFT LoRA"):
 * `r = ρ`, `lora_A.weight = A′ᵀ` `[ρ, n]`, `lora_B.weight = s·B′` `[m, ρ]`, `lora_alpha = ρ` (so
 * PEFT's scaling is 1). Modules with a smaller ρ than the largest are zero-padded (exact).
 */
import type { Backend } from '../backend/types.js';
import { ShapeMismatchError } from '../errors.js';
import { checkParams, parseMethodConfig } from '../methods/generic.js';
import { moduleKey } from '../methods/common.js';
import { getMethod } from '../methods/registry.js';
import type { BaseAdapterConfig } from '../methods/types.js';
import type { TensorMap } from '../tensor.js';
import { materializeAdapter, type Adapter } from './adapter.js';
import { sameModules } from './manifest.js';
import { moduleName, selectModules } from '../model/shape.js';

/**
 * `target_modules` as a PEFT user would write them: the distinct module names (`query`, `value`)
 * when they select exactly the exported modules on the adapter's shape, else the full paths.
 */
function shortTargets(paths: string[], a: Adapter): string[] {
  const names = [...new Set(paths.map(moduleName))];
  const selected = selectModules(a.shape, names).map((m) => m.path);
  const same = selected.length === paths.length && selected.every((p, i) => p === paths[i]);
  return same ? names : paths;
}

/** The PEFT LoRA equivalent of `a` (same ΔW for every module, up to float32 rounding). */
export async function exportToLora(a: Adapter, backend?: Backend): Promise<Adapter> {
  const updates = await materializeAdapter(a, backend);
  const rho = Math.max(1, ...updates.map((u) => u.rho));
  const params: TensorMap = new Map();
  for (const u of updates) {
    const A = new Float32Array(rho * u.n); // [ρ, n] = A′ᵀ
    for (let j = 0; j < u.n; j++) for (let k = 0; k < u.rho; k++) A[k * u.n + j] = u.A[j * u.rho + k]!;
    const B = new Float32Array(u.m * rho); // [m, ρ] = s·B′
    for (let i = 0; i < u.m; i++) for (let k = 0; k < u.rho; k++) B[i * rho + k] = u.s * u.B[i * u.rho + k]!;
    params.set(moduleKey(u.path, 'lora_A.weight'), { shape: [rho, u.n], data: A });
    params.set(moduleKey(u.path, 'lora_B.weight'), { shape: [u.m, rho], data: B });
  }

  const src = a.config;
  const fanInFanOut = typeof src.fan_in_fan_out === 'boolean' ? src.fan_in_fan_out : a.plan.modules.some((m) => m.fanInFanOut);
  const raw: Record<string, unknown> = {
    peft_type: 'LORA',
    r: rho,
    lora_alpha: rho,
    target_modules: shortTargets(updates.map((u) => u.path), a),
    fan_in_fan_out: fanInFanOut,
    use_rslora: false,
    use_dora: false,
    bias: 'none',
    lora_dropout: 0,
    init_lora_weights: true,
    inference_mode: true,
    base_model_name_or_path: src.base_model_name_or_path ?? a.shape.nameOrPath ?? null,
    modules_to_save: src.modules_to_save ?? null,
    task_type: (src.task_type as string | null | undefined) ?? null,
  };
  if (typeof src.revision === 'string') raw.revision = src.revision;
  const lora = getMethod('LORA');
  const config = parseMethodConfig(lora, raw) as BaseAdapterConfig;
  const plan = lora.plan(config, a.shape);
  if (!sameModules(plan.modules, a.plan.modules)) {
    throw new ShapeMismatchError('exported LoRA does not target the same modules', {
      expected: a.plan.modules.map((m) => m.path),
      found: plan.modules.map((m) => m.path),
    });
  }
  checkParams(plan, params);
  return { method: lora, config, plan, params, extras: new Map(a.extras), shape: a.shape, dtype: a.dtype };
}
