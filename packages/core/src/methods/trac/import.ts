/**
 * Importer for what the official TRAC code (BangguoYe/TRAC) saves with `save_pretrained`:
 *
 * - `adapter_config.json` with `peft_type: "LORA"` and TRAC's fields (`tensor_shape`,
 *   `tensor_rank_A`, `tensor_rank_B` maps whose integer keys JSON turned into strings, or null for
 *   the `tensor_cfg.py` tables; `vector_activation`, `scale_shared_tt_cores`, `param_structure`, …);
 * - `adapter_model.bin` (torch.save of the state dict; read with the restricted unpickler):
 *   - per module `base_model.model.<path>.lora_{A,B}.tt_1d.U0` `[1, n1, r1]` (all cores `U0..U2`
 *     in the all-trainable structure),
 *   - per module controllers `….tt_1d.tt_rank_scale_factors.2` `[r2]` and `….tt_dim_scale_factors.2`
 *     `[n3]` (present when `scale_shared_tt_cores`),
 *   - per official module name t ∈ {q, k, v, proj, fc1, fc2}: frozen `base_model.model.
 *     shared_random_param_U_<t>_lora_{A,B}_1` and trainable `…shared_trainable_param_U_<t>_lora_{A,B}_2`,
 *   - `classifier.*` heads (saved whole) → `modules_to_save`.
 *
 * The official code shares cores by its coarse module name (`get_module_name`: `up_proj` and
 * `o_proj` both count as `proj`/`fc1`); here sharing is by exact matrix type, so a core the
 * official code shares between two of our types is copied into both (ΔW is unchanged; training
 * here afterwards would untie them — reported in `notes`).
 */
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import { checkShapeHas, location, modulesToSaveOf, need, officialConfig, officialStateDict, shapeFromModules } from '../../io/official/read.js';
import type { ImportedParts, OfficialFiles, OfficialImporter, OfficialImportOptions } from '../../io/official/types.js';
import { matchesTarget, moduleName, type ModelShape } from '../../model/shape.js';
import type { TensorMap } from '../../tensor.js';
import { parseMethodConfig } from '../generic.js';
import type { AdapterMethod } from '../types.js';
import { tracConfigSchema, type TracConfig } from './config.js';
import { controllerKey, coreKey, hasControllers, planTrac, type Side } from './plan.js';

/** The official `get_module_name`: the coarse sharing name of a target module's last path component. */
export function officialTracName(target: string): string | undefined {
  if (target.includes('q')) return 'q';
  if (target.includes('k')) return 'k';
  if (target.includes('v')) return 'v';
  if (target.includes('proj') || target.includes('attention.output.dense')) return 'proj';
  if (target.includes('fc1') || target.includes('up_proj') || target.includes('intermediate.dense')) return 'fc1';
  if (target.includes('fc2') || target.includes('down_proj') || (target.includes('output.dense') && !target.includes('attention'))) return 'fc2';
  return undefined;
}

const ACTIVATIONS: Record<string, TracConfig['controller_activation']> = { none: 'linear', linear: 'linear', softmax: 'softmax' };
const INITS: Record<string, TracConfig['init']> = { TTNorm: 'tt_normal', TTUnif: 'tt_uniform', KaimingNorm: 'kaiming_normal', KaimingUnif: 'kaiming_uniform' };

/** Fields of the official TracConfig that carry no information for the weights (dropped, noted). */
const INFORMATIVE = ['hidden_size', 'mlp_hidden_dim', 'tensor_rank', 'merge_weights', 'enable_lora', 'use_fast_tt', 'scale_init', 'revision', 'auto_mapping'];

const PREFIX = 'base_model.model.';

function isTracConfig(cfg: Record<string, unknown> | undefined): boolean {
  return cfg !== undefined && cfg.peft_type === 'LORA' && ['tensor_rank_A', 'tensor_rank_B', 'scale_shared_tt_cores', 'param_structure', 'vector_activation'].some((k) => k in cfg);
}

/** Which official structure the file uses: the default PARAM_STRUCTURE, or every core per module. */
function variantOf(cfg: Record<string, unknown>, sd: TensorMap, file: string): TracConfig['variant'] {
  const ps = cfg.param_structure as Record<string, Record<string, unknown>> | null | undefined;
  const allPerModule = [...sd.keys()].some((k) => /\.lora_A\.tt_1d\.U2$/.test(k));
  if (ps != null) {
    const same = (v: unknown, want: number[] | null) => JSON.stringify(v ?? null) === JSON.stringify(want);
    const isDefault =
      same(ps.trainable_dim?.A, [0]) && same(ps.trainable_dim?.B, [0]) && same(ps.shared_trainable_dim?.A, [2]) && same(ps.shared_trainable_dim?.B, [2]) && same(ps.shared_random_dim?.A, [1]) && same(ps.shared_random_dim?.B, [1]) && same(ps.random_dim?.A, null) && same(ps.random_dim?.B, null);
    const allTrain = same(ps.trainable_dim?.A, [0, 1, 2]) && same(ps.trainable_dim?.B, [0, 1, 2]) && ps.shared_trainable_dim?.A == null && ps.shared_random_dim?.A == null && ps.random_dim?.A == null;
    if (allTrain) return 'all_trainable';
    if (!isDefault) {
      throw new ConfigError('unsupported TRAC param_structure (only the default and all-trainable structures are modelled)', { file, field: 'param_structure', expected: 'the default PARAM_STRUCTURE of tensor_cfg.py', found: ps });
    }
  } else if (allPerModule) return 'all_trainable';
  return cfg.scale_shared_tt_cores === false ? 'shared_tt' : 'trac';
}

function importTrac(f: OfficialFiles, opts: OfficialImportOptions): ImportedParts {
  const cfg = officialConfig(f);
  const cfgFile = location(f, 'adapter_config.json');
  if (!cfg) throw new ConfigError('the official TRAC folder has no adapter_config.json', { file: f.source, expected: 'adapter_config.json', found: [...f.files.keys()] });
  const { tensors: sd, file } = officialStateDict(f, opts.allowNonFinite);
  const notes: string[] = [];
  const variant = variantOf(cfg, sd, cfgFile);
  const act = cfg.vector_activation ?? 'none';
  const activation = ACTIVATIONS[String(act).toLowerCase()];
  if (hasControllers({ variant } as TracConfig) && !activation) {
    throw new ConfigError('unsupported TRAC controller activation', { file: cfgFile, field: 'vector_activation', expected: Object.keys(ACTIVATIONS), found: act });
  }
  const r = cfg.r;
  if (typeof r !== 'number') throw new ConfigError('official TRAC config has no rank r', { file: cfgFile, field: 'r', found: r ?? 'nothing' });
  if (typeof cfg.lora_alpha !== 'number') throw new ConfigError('official TRAC config has no lora_alpha (its layers divide by it)', { file: cfgFile, field: 'lora_alpha', found: cfg.lora_alpha ?? 'nothing' });
  if (cfg.bias !== undefined && cfg.bias !== 'none') throw new ConfigError('TRAC bias training is not modelled', { file: cfgFile, field: 'bias', expected: 'none', found: cfg.bias });

  // Modules and their factor geometry, read off the tensors.
  const used = new Set<string>();
  const take = (key: string, dims: number) => {
    used.add(key);
    return need(sd, key, dims, file);
  };
  type Geo = { sizes: number[]; ranks: number[] };
  const mods: { path: string; n: number; m: number; name: string; geo: Record<Side, Geo> }[] = [];
  for (const key of sd.keys()) {
    const hit = /^base_model\.model\.(.+)\.lora_A\.tt_1d\.U0$/.exec(key);
    if (!hit) continue;
    const path = hit[1]!;
    const name = officialTracName(moduleName(path));
    if (!name) throw new ConfigError('module has no official TRAC sharing name', { file, field: path, expected: 'q, k, v, proj, fc1 or fc2 (tensor_rep.get_module_name)', found: moduleName(path) });
    const geo = {} as Record<Side, Geo>;
    for (const side of ['A', 'B'] as const) {
      const cores =
        variant === 'all_trainable'
          ? [0, 1, 2].map((k) => take(`${PREFIX}${path}.lora_${side}.tt_1d.U${k}`, 3))
          : [take(`${PREFIX}${path}.lora_${side}.tt_1d.U0`, 3), need(sd, `${PREFIX}shared_random_param_U_${name}_lora_${side}_1`, 3, file), need(sd, `${PREFIX}shared_trainable_param_U_${name}_lora_${side}_2`, 3, file)];
      const sizes = cores.map((c) => c.shape[1]!);
      const ranks = [cores[0]!.shape[0]!, cores[1]!.shape[0]!, cores[2]!.shape[0]!];
      if (ranks[0] !== 1 || cores[0]!.shape[2] !== ranks[1] || cores[1]!.shape[2] !== ranks[2] || cores[2]!.shape[2] !== r) {
        throw new ShapeMismatchError('official TRAC cores do not chain', { file, field: `${path}.lora_${side}`, expected: `[1,n1,r1] [r1,n2,r2] [r2,n3,${r}]`, found: cores.map((c) => c.shape) });
      }
      geo[side] = { sizes, ranks };
    }
    mods.push({ path, name, n: geo.A.sizes.reduce((a, b) => a * b, 1), m: geo.B.sizes.reduce((a, b) => a * b, 1), geo });
  }
  if (mods.length === 0) throw new ShapeMismatchError('no TRAC module in the official checkpoint', { file, expected: `${PREFIX}<module>.lora_A.tt_1d.U0`, found: [...sd.keys()].slice(0, 5) });

  const nameOrPath = typeof cfg.base_model_name_or_path === 'string' ? cfg.base_model_name_or_path : undefined;
  const shape: ModelShape = opts.shape ? checkShapeHas(opts.shape, mods, file) : shapeFromModules(mods, nameOrPath ? { nameOrPath } : {});

  // tensor_shape / ranks as maps by dimension, exactly as the tensors say.
  const tensorShape: Record<string, number[]> = {};
  const rankA: Record<string, number[]> = {};
  const rankB: Record<string, number[]> = {};
  for (const m of mods) {
    for (const [side, dim, ranks] of [['A', m.n, rankA], ['B', m.m, rankB]] as const) {
      const g = m.geo[side];
      const prev = tensorShape[dim];
      if (prev && prev.join() !== g.sizes.join()) throw new ShapeMismatchError('two modules fold the same dimension differently', { file, field: m.path, expected: prev, found: g.sizes });
      tensorShape[dim] = g.sizes;
      const pr = ranks[dim];
      const here = [1, g.ranks[1]!, g.ranks[2]!];
      if (pr && pr.join() !== here.join()) throw new ShapeMismatchError('two modules use different TT ranks for one dimension', { file, field: m.path, expected: pr, found: here });
      ranks[dim] = here;
    }
  }

  // target_modules: the official list if it selects exactly these modules here, else the paths.
  const paths = new Set(mods.map((m) => m.path));
  const official = cfg.target_modules;
  const fits = (official !== undefined && official !== null && (typeof official === 'string' || Array.isArray(official)) &&
    shape.modules.every((m) => matchesTarget(m.path, official as string | string[]) === paths.has(m.path)));
  const target_modules = fits ? official : [...paths];

  // Leftovers: classifier heads → modules_to_save; anything else is refused by name.
  const extras: TensorMap = new Map();
  const mts = new Set<string>(Array.isArray(cfg.modules_to_save) ? (cfg.modules_to_save as string[]) : []);
  for (const [k, t] of sd) {
    if (used.has(k) || /shared_(random|trainable)_param_U_|\.tt_1d\./.test(k)) continue;
    const name = modulesToSaveOf(k, ['classifier', 'score', ...mts]);
    if (!name) throw new ShapeMismatchError('official TRAC checkpoint holds a tensor this importer does not model', { file, tensor: k, expected: 'TRAC cores, controllers or classifier heads', found: t.shape });
    mts.add(name.split('.').pop()!);
    extras.set(k, t);
  }

  const config: Record<string, unknown> = {
    peft_type: 'TRAC',
    r,
    lora_alpha: cfg.lora_alpha,
    target_modules,
    tensor_shape: tensorShape,
    tensor_rank_a: rankA,
    tensor_rank_b: rankB,
    controller_activation: activation ?? 'linear',
    variant,
    lora_dropout: typeof cfg.lora_dropout === 'number' ? cfg.lora_dropout : 0,
    ...(typeof cfg.tensor_init === 'string' && INITS[cfg.tensor_init] ? { init: INITS[cfg.tensor_init] } : {}),
    ...(nameOrPath ? { base_model_name_or_path: nameOrPath } : {}),
    ...(typeof cfg.task_type === 'string' ? { task_type: cfg.task_type } : {}),
    ...(mts.size ? { modules_to_save: [...mts] } : {}),
    ...(cfg.fan_in_fan_out === true ? { fan_in_fan_out: true } : {}),
  };
  const dropped = INFORMATIVE.filter((k) => k in cfg);
  if (dropped.length) notes.push(`official fields kept out of the config (no effect on the weights): ${dropped.join(', ')}`);

  // Tensors, keyed as the native plan expects.
  const c = parseMethodConfig({ peftType: 'TRAC', schema: tracConfigSchema } as unknown as AdapterMethod<TracConfig>, { ...config, ...(opts.config ?? {}) }, cfgFile) as TracConfig;
  const plan = planTrac(c, shape);
  const params: TensorMap = new Map();
  const byPath = new Map(mods.map((m) => [m.path, m]));
  const typeNames = new Map<string, Set<string>>();
  for (const pm of plan.modules) {
    const m = byPath.get(pm.path)!;
    if (!typeNames.has(m.name)) typeNames.set(m.name, new Set());
    typeNames.get(m.name)!.add(pm.type);
    for (const side of ['A', 'B'] as const) {
      if (variant === 'all_trainable') {
        for (const k of [1, 2, 3] as const) params.set(coreKey(c, pm, side, k), sd.get(`${PREFIX}${pm.path}.lora_${side}.tt_1d.U${k - 1}`)!);
      } else {
        params.set(coreKey(c, pm, side, 1), sd.get(`${PREFIX}${pm.path}.lora_${side}.tt_1d.U0`)!);
        params.set(coreKey(c, pm, side, 2), sd.get(`${PREFIX}shared_random_param_U_${m.name}_lora_${side}_1`)!);
        params.set(coreKey(c, pm, side, 3), sd.get(`${PREFIX}shared_trainable_param_U_${m.name}_lora_${side}_2`)!);
      }
      if (hasControllers(c)) {
        params.set(controllerKey(pm.path, side, 'rank'), take(`${PREFIX}${pm.path}.lora_${side}.tt_1d.tt_rank_scale_factors.2`, 1));
        params.set(controllerKey(pm.path, side, 'mode'), take(`${PREFIX}${pm.path}.lora_${side}.tt_1d.tt_dim_scale_factors.2`, 1));
      }
    }
  }
  for (const [name, types] of typeNames) {
    if (types.size > 1 && variant !== 'all_trainable') notes.push(`official shared cores of "${name}" were copied into ${[...types].join(', ')} (shared per exact matrix type here)`);
  }
  return { config, params, extras, shape, notes };
}

export const tracImporter: OfficialImporter = {
  from: 'trac',
  source: 'BangguoYe/TRAC save_pretrained: adapter_config.json (peft_type LORA + TRAC fields) + adapter_model.bin',
  detect(f) {
    if (isTracConfig(officialConfig(f))) return true;
    return false;
  },
  importFiles: importTrac,
};
