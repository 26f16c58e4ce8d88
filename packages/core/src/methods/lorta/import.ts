/**
 * Importer for the official LoRTA PEFT port (ihounie/lorta, `peft/src/peft/tuners/lorta`):
 * `adapter_config.json` with `peft_type: "LORTA"` and the port's LoRA-style fields, and
 * `adapter_model.safetensors` (or `.bin`) holding five model-level tensors:
 *
 *   `base_model.model.lora_A` [d, r], `lora_B` [r, d/H], `lora_C_h` [H, r], `lora_C_l` [L, r],
 *   `lora_C_m` [4, r] (rows q, k, v, o — always four, whatever is targeted).
 *
 * The port computes, per layer l and matrix t, `dW = cat_h(A · diag(C_h[h] ⊙ C_m[t] ⊙ C_l[l]) · B)`
 * along columns and adds `x @ dWᵀ · scaling`: heads index the input side. That is our LoRTA with
 * `head_side: "input"`, `lorta_B = lora_Bᵀ`, and `C_M` = the rows of the targeted types.
 * The file cannot say where the modules are (paths, layer prefix): they come from the model shape
 * (`--model`, or a preset matching `base_model_name_or_path`).
 */
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import { shapeFromHubId } from '../../io/manifest.js';
import { location, modulesToSaveOf, need, officialConfig, officialStateDict } from '../../io/official/read.js';
import type { ImportedParts, OfficialFiles, OfficialImporter, OfficialImportOptions } from '../../io/official/types.js';
import { moduleName } from '../../model/shape.js';
import type { TensorMap } from '../../tensor.js';
import { targetedModules, typesInOrder } from '../common.js';
import { LORTA_KEYS } from './plan.js';

/** Row of the port's `lora_C_m` for a module: q, k, v, o (its TRANSFORMERS_MODELS_TO_LORTA_QKVO_MAPPING). */
export function portMatrixRow(type: string): number | undefined {
  const name = moduleName(type);
  if (['query', 'q_proj', 'q'].includes(name)) return 0;
  if (['key', 'k_proj', 'k'].includes(name)) return 1;
  if (['value', 'v_proj', 'v'].includes(name)) return 2;
  if (name === 'o_proj' || type.endsWith('attention.output.dense') || name === 'out_proj') return 3;
  return undefined;
}

const PORT_FIELDS = ['init_lora_weights', 'use_rslora', 'rank_pattern', 'alpha_pattern', 'use_dora', 'loftq_config', 'megatron_config'];
const P = 'base_model.model.';

function transpose(t: { shape: number[]; data: Float32Array }): { shape: number[]; data: Float32Array } {
  const [a, b] = t.shape as [number, number];
  const out = new Float32Array(a * b);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) out[j * a + i] = t.data[i * b + j]!;
  return { shape: [b, a], data: out };
}

function importLorta(f: OfficialFiles, opts: OfficialImportOptions): ImportedParts {
  const cfg = officialConfig(f);
  const cfgFile = location(f, 'adapter_config.json');
  if (!cfg) throw new ConfigError('the LoRTA port folder has no adapter_config.json', { file: f.source, expected: 'adapter_config.json', found: [...f.files.keys()] });
  const { tensors: sd, file } = officialStateDict(f, opts.allowNonFinite);
  const A = need(sd, `${P}lora_A`, 2, file);
  const B = need(sd, `${P}lora_B`, 2, file);
  const CH = need(sd, `${P}lora_C_h`, 2, file);
  const CL = need(sd, `${P}lora_C_l`, 2, file);
  const CM = need(sd, `${P}lora_C_m`, 2, file);
  const [d, r] = A.shape as [number, number];
  const H = CH.shape[0]!;
  const L = CL.shape[0]!;
  if (B.shape[0] !== r || B.shape[1]! * H !== d || CH.shape[1] !== r || CL.shape[1] !== r || CM.shape[1] !== r || CM.shape[0] !== 4) {
    throw new ShapeMismatchError('LoRTA port tensors do not fit together', {
      file,
      expected: `lora_A [d, r], lora_B [r, d/H], lora_C_h [H, r], lora_C_l [L, r], lora_C_m [4, r]`,
      found: { lora_A: A.shape, lora_B: B.shape, lora_C_h: CH.shape, lora_C_l: CL.shape, lora_C_m: CM.shape },
    });
  }
  const nameOrPath = typeof cfg.base_model_name_or_path === 'string' ? cfg.base_model_name_or_path : undefined;
  const shape = opts.shape ?? shapeFromHubId(nameOrPath);
  if (!shape) {
    throw new ConfigError('the LoRTA port file does not say where its modules are: pass the model (--model)', {
      file: cfgFile,
      field: 'base_model_name_or_path',
      expected: 'a known preset id, or --model <preset|config.json|model dir>',
      found: nameOrPath ?? 'nothing',
    });
  }
  if (shape.hiddenSize !== d || shape.numHeads !== H || shape.numLayers !== L) {
    throw new ShapeMismatchError('the LoRTA port tensors were made for another model', { file, expected: { d: shape.hiddenSize, H: shape.numHeads, L: shape.numLayers }, found: { d, H, L } });
  }
  if (typeof cfg.r === 'number' && cfg.r !== r) throw new ShapeMismatchError('config r differs from the tensors', { file: cfgFile, field: 'r', expected: r, found: cfg.r });
  const target = cfg.target_modules as string | string[] | undefined;
  if (target === undefined || target === null) throw new ConfigError('the LoRTA port config has no target_modules', { file: cfgFile, field: 'target_modules', found: 'nothing' });
  const layers = cfg.layers_to_transform as number | number[] | null | undefined;
  const mods = targetedModules(target, shape, layers);
  const types = typesInOrder(mods);
  const rows = types.map((t) => {
    const row = portMatrixRow(t);
    if (row === undefined) throw new ConfigError('the LoRTA port only adapts q, k, v and o matrices', { file: cfgFile, field: t, expected: 'q/k/v/o projections', found: t });
    return row;
  });
  const cm = new Float32Array(types.length * r);
  rows.forEach((row, i) => cm.set(CM.data.subarray(row * r, (row + 1) * r), i * r));

  const params: TensorMap = new Map([
    [LORTA_KEYS.A, A],
    [LORTA_KEYS.B, transpose(B)],
    [LORTA_KEYS.C_H, CH],
    [LORTA_KEYS.C_L, CL],
    [LORTA_KEYS.C_M, { shape: [types.length, r], data: cm }],
  ]);
  const extras: TensorMap = new Map();
  const mts = new Set<string>(Array.isArray(cfg.modules_to_save) ? (cfg.modules_to_save as string[]) : []);
  for (const [k, t] of sd) {
    if (/^base_model\.model\.lora_(A|B|C_h|C_l|C_m)$/.test(k)) continue;
    const name = modulesToSaveOf(k, ['classifier', 'score', ...mts]);
    if (!name) throw new ShapeMismatchError('LoRTA port checkpoint holds a tensor this importer does not model', { file, tensor: k, found: t.shape });
    mts.add(name.split('.').pop()!);
    extras.set(k, t);
  }
  const notes = [`the port's 4-row lora_C_m was reduced to the targeted rows (${types.join(', ')})`];
  const unused = [0, 1, 2, 3].filter((x) => !rows.includes(x));
  if (unused.length) notes.push(`lora_C_m rows ${unused.map((x) => 'qkvo'[x]).join(', ')} were trained by the port but act on no targeted module`);
  const config: Record<string, unknown> = {
    peft_type: 'LORTA',
    r,
    lora_alpha: typeof cfg.lora_alpha === 'number' ? cfg.lora_alpha : 8,
    target_modules: target,
    head_side: 'input',
    use_rslora: cfg.use_rslora === true,
    ...(typeof cfg.init_scale === 'number' ? { init_scale: cfg.init_scale } : {}),
    ...(typeof cfg.lora_dropout === 'number' ? { lora_dropout: cfg.lora_dropout } : {}),
    ...(layers !== undefined && layers !== null ? { layers_to_transform: layers } : {}),
    ...(nameOrPath ? { base_model_name_or_path: nameOrPath } : {}),
    ...(typeof cfg.task_type === 'string' ? { task_type: cfg.task_type } : {}),
    ...(mts.size ? { modules_to_save: [...mts] } : {}),
    ...(cfg.use_dora === true ? { use_dora: true } : {}),
    ...(cfg.rank_pattern && Object.keys(cfg.rank_pattern).length ? { rank_pattern: cfg.rank_pattern } : {}),
    ...(cfg.alpha_pattern && Object.keys(cfg.alpha_pattern).length ? { alpha_pattern: cfg.alpha_pattern } : {}),
  };
  return { config, params, extras, shape, notes };
}

export const lortaImporter: OfficialImporter = {
  from: 'lorta',
  source: 'ihounie/lorta PEFT port: adapter_config.json (peft_type LORTA) + adapter_model.safetensors with lora_A/B/C_h/C_l/C_m',
  detect(f) {
    const cfg = officialConfig(f);
    return cfg !== undefined && cfg.peft_type === 'LORTA' && PORT_FIELDS.some((k) => k in cfg) && !('head_side' in cfg);
  },
  importFiles: importLorta,
};
