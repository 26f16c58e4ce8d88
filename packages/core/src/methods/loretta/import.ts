/**
 * Importer for what the official LoRETTA code (yifanycc/loretta, `loretta_rep`) saves:
 *
 * - `adapter_config.json` with `peft_type: "LORA"` plus `tensor_rank` (and no tensor shapes: the
 *   official layers take them from `TRANSFORMERS_HIDDEN_SIZE_TO_TENSOR_SHAPE[r][dim]`);
 * - `adapter_model.bin`: per module `base_model.model.<path>.lora_{A,B}.layer.tensor.factors.<k>`
 *   (cores `[t_k, f_k, t_{k+1}]`; the module computes `x @ TT.reshape(in, out)`), the rank-pruning
 *   masks `….layer.tensor.rank_parameters.<k>` (all ones unless rank pruning ran; the plain forward
 *   ignores them), and, for sequence classification, the head: `classifier.dense` is itself a
 *   tensor train (`classifier.dense.layer.tensor.factors.<k>` over the CLS shape table, plus
 *   `classifier.dense.layer.bias`) and `classifier.out_proj.{weight,bias}` is dense.
 *
 * The tensor-train head is materialized to a dense `classifier.dense.weight` [out, in] (the
 * transpose of `TT.reshape(in, out)`) in `modules_to_save`. The factor shapes are read off the
 * tensors, so the imported config records them exactly. The official code also trains every
 * LayerNorm but never saves them: an imported adapter runs with the base model's LayerNorms
 * (reported in `notes`).
 */
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import { checkShapeHas, location, need, officialConfig, officialStateDict, shapeFromModules } from '../../io/official/read.js';
import type { ImportedParts, OfficialFiles, OfficialImporter, OfficialImportOptions } from '../../io/official/types.js';
import { MAX_TORCH_TENSOR_ELEMENTS } from '../../io/torch/checkpoint.js';
import { matchesTarget } from '../../model/shape.js';
import type { Tensor, TensorMap } from '../../tensor.js';
import { lorettaCoreKey } from './plan.js';

const P = 'base_model.model.';
const TRAC_ONLY = ['tensor_rank_A', 'tensor_rank_B', 'scale_shared_tt_cores', 'param_structure', 'vector_activation', 'tensor_shape'];

/** Cores `<prefix>.factors.0 …` in order; errors name the first gap or a non-chaining core. */
function cores(sd: TensorMap, prefix: string, file: string, used: Set<string>): Tensor[] {
  const out: Tensor[] = [];
  for (let k = 0; sd.has(`${prefix}.factors.${k}`); k++) {
    const key = `${prefix}.factors.${k}`;
    used.add(key);
    const t = need(sd, key, 3, file);
    const prev = out[out.length - 1];
    if ((prev ? prev.shape[2] : 1) !== t.shape[0]) throw new ShapeMismatchError('tensor-train cores do not chain', { file, tensor: key, expected: `left rank ${prev ? prev.shape[2] : 1}`, found: t.shape });
    out.push(t);
  }
  if (out.length === 0 || out[out.length - 1]!.shape[2] !== 1) {
    throw new ShapeMismatchError('tensor train missing or not closed', { file, tensor: `${prefix}.factors.0`, expected: 'cores [1, f0, t] … [t, fK, 1]', found: out.map((c) => c.shape) });
  }
  for (let k = 0; sd.has(`${prefix}.rank_parameters.${k}`); k++) used.add(`${prefix}.rank_parameters.${k}`);
  return out;
}

/** The full tensor of a TT, flattened row-major (first mode slowest), in float64. */
function ttFull(cs: Tensor[]): Float64Array {
  let cur = new Float64Array([1]);
  let rows = 1;
  for (const c of cs) {
    const [r0, n, r1] = c.shape as [number, number, number];
    const next = new Float64Array(rows * n * r1);
    for (let i = 0; i < rows; i++)
      for (let a = 0; a < r0; a++) {
        const v = cur[i * r0 + a]!;
        for (let j = 0; j < n; j++) for (let b = 0; b < r1; b++) next[(i * n + j) * r1 + b]! += v * c.data[(a * n + j) * r1 + b]!;
      }
    cur = next;
    rows *= n;
  }
  return cur;
}

function importLoretta(f: OfficialFiles, opts: OfficialImportOptions): ImportedParts {
  const cfg = officialConfig(f);
  const cfgFile = location(f, 'adapter_config.json');
  if (!cfg) throw new ConfigError('the official LoRETTA folder has no adapter_config.json', { file: f.source, expected: 'adapter_config.json', found: [...f.files.keys()] });
  const { tensors: sd, file } = officialStateDict(f, opts.allowNonFinite);
  const r = cfg.r;
  if (typeof r !== 'number') throw new ConfigError('official LoRETTA config has no rank r', { file: cfgFile, field: 'r', found: r ?? 'nothing' });
  if (typeof cfg.lora_alpha !== 'number') throw new ConfigError('official LoRETTA config has no lora_alpha (its layers divide by it)', { file: cfgFile, field: 'lora_alpha', found: cfg.lora_alpha ?? 'nothing' });
  if (cfg.bias !== undefined && cfg.bias !== 'none') throw new ConfigError('LoRETTA bias training is not modelled', { file: cfgFile, field: 'bias', expected: 'none', found: cfg.bias });

  const used = new Set<string>();
  const mods: { path: string; n: number; m: number; a: Tensor[]; b: Tensor[] }[] = [];
  let t: number | undefined;
  for (const key of sd.keys()) {
    const hit = /^base_model\.model\.(.+)\.lora_A\.layer\.tensor\.factors\.0$/.exec(key);
    if (!hit) continue;
    const path = hit[1]!;
    const a = cores(sd, `${P}${path}.lora_A.layer.tensor`, file, used);
    const b = cores(sd, `${P}${path}.lora_B.layer.tensor`, file, used);
    const na = a.reduce((x, c) => x * c.shape[1]!, 1);
    const nb = b.reduce((x, c) => x * c.shape[1]!, 1);
    if (na % r !== 0 || nb % r !== 0) throw new ShapeMismatchError('tensor-train sizes are not multiples of r', { file, field: path, expected: `n·${r} and ${r}·m`, found: [na, nb] });
    for (const c of [...a, ...b].slice(0, -1)) t ??= c.shape[2];
    mods.push({ path, n: na / r, m: nb / r, a, b });
  }
  if (mods.length === 0) throw new ShapeMismatchError('no LoRETTA module in the official checkpoint', { file, expected: `${P}<module>.lora_A.layer.tensor.factors.0`, found: [...sd.keys()].slice(0, 5) });
  const tensorRank = typeof cfg.tensor_rank === 'number' ? cfg.tensor_rank : (t ?? 5);
  const nameOrPath = typeof cfg.base_model_name_or_path === 'string' ? cfg.base_model_name_or_path : undefined;
  const shape = opts.shape ? checkShapeHas(opts.shape, mods, file) : shapeFromModules(mods, nameOrPath ? { nameOrPath } : {});

  const shapeA: Record<string, number[]> = {};
  const shapeB: Record<string, number[]> = {};
  for (const m of mods) {
    for (const [map, dim, cs] of [[shapeA, m.n, m.a], [shapeB, m.m, m.b]] as const) {
      const fs = cs.map((c) => c.shape[1]!);
      const prev = map[dim];
      if (prev && prev.join() !== fs.join()) throw new ShapeMismatchError('two modules factor the same dimension differently', { file, field: m.path, expected: prev, found: fs });
      map[dim] = fs;
    }
  }
  const paths = new Set(mods.map((m) => m.path));
  const official = cfg.target_modules;
  const fits = official != null && (typeof official === 'string' || Array.isArray(official)) && shape.modules.every((m) => matchesTarget(m.path, official as string | string[]) === paths.has(m.path));

  const params: TensorMap = new Map();
  for (const m of mods) {
    m.a.forEach((c, k) => params.set(lorettaCoreKey(m.path, 'A', k), c));
    m.b.forEach((c, k) => params.set(lorettaCoreKey(m.path, 'B', k), c));
  }

  // Heads: a tensor-train dense layer becomes a dense weight; dense tensors are kept as they are.
  const extras: TensorMap = new Map();
  const notes: string[] = ['the official code trains every LayerNorm but does not save them: the imported adapter uses the base model’s LayerNorms'];
  const mts = new Set<string>(Array.isArray(cfg.modules_to_save) ? (cfg.modules_to_save as string[]) : []);
  const ttHeads = new Set<string>();
  for (const key of sd.keys()) {
    const hit = /^base_model\.model\.(.+)\.layer\.tensor\.factors\.0$/.exec(key);
    if (hit && !/\.lora_[AB]$/.test(hit[1]!)) ttHeads.add(hit[1]!);
  }
  for (const head of ttHeads) {
    const cs = cores(sd, `${P}${head}.layer.tensor`, file, used);
    const biasKey = `${P}${head}.layer.bias`;
    const bias = sd.get(biasKey);
    const out = bias ? bias.data.length : undefined;
    const total = cs.reduce((x, c) => x * c.shape[1]!, 1);
    if (total > MAX_TORCH_TENSOR_ELEMENTS) throw new ShapeMismatchError('tensor-train head is larger than the element cap', { file, tensor: `${P}${head}.layer.tensor.factors.0`, expected: `≤ ${MAX_TORCH_TENSOR_ELEMENTS} elements`, found: total });
    if (out === undefined || total % out !== 0) throw new ShapeMismatchError('tensor-train head needs its bias to know its output size', { file, tensor: biasKey, expected: `a bias whose length divides ${total}`, found: bias?.shape ?? 'nothing' });
    used.add(biasKey);
    const inF = total / out;
    const full = ttFull(cs); // [in, out] row-major; torch Linear stores [out, in]
    const w = new Float32Array(out * inF);
    for (let i = 0; i < inF; i++) for (let o = 0; o < out; o++) w[o * inF + i] = full[i * out + o]!;
    extras.set(`${P}${head}.weight`, { shape: [out, inF], data: w });
    extras.set(`${P}${head}.bias`, bias!);
    mts.add(head.split('.')[0]!);
    notes.push(`tensor-train head ${head} (${cs.length} cores) materialized to a dense [${out}, ${inF}] weight in modules_to_save`);
  }
  for (const [k, v] of sd) {
    if (used.has(k)) continue;
    const rest = k.slice(P.length);
    const top = rest.split('.')[0]!;
    if (!k.startsWith(P) || /lora_/.test(k) || !(top === 'classifier' || top === 'score' || mts.has(top))) {
      throw new ShapeMismatchError('official LoRETTA checkpoint holds a tensor this importer does not model', { file, tensor: k, expected: 'LoRETTA cores, rank masks or classifier heads', found: v.shape });
    }
    mts.add(top);
    extras.set(k, v);
  }
  const masks = [...used].filter((k) => /rank_parameters/.test(k));
  const pruned = masks.filter((k) => sd.get(k)!.data.some((x) => x <= 0));
  if (pruned.length) throw new ConfigError('rank-pruned LoRETTA checkpoints are not modelled (a rank mask has zeros)', { file, tensor: pruned[0], expected: 'all-ones rank_parameters', found: 'zeros' });

  const config: Record<string, unknown> = {
    peft_type: 'LORETTA',
    r,
    lora_alpha: cfg.lora_alpha,
    tensor_rank: tensorRank,
    tensor_shape_a: shapeA,
    tensor_shape_b: shapeB,
    target_modules: fits ? official : [...paths],
    lora_dropout: typeof cfg.lora_dropout === 'number' ? cfg.lora_dropout : 0,
    ...(nameOrPath ? { base_model_name_or_path: nameOrPath } : {}),
    ...(typeof cfg.task_type === 'string' ? { task_type: cfg.task_type } : {}),
    ...(mts.size ? { modules_to_save: [...mts] } : {}),
  };
  return { config, params, extras, shape, notes };
}

export const lorettaImporter: OfficialImporter = {
  from: 'loretta',
  source: 'yifanycc/loretta (loretta_rep): adapter_config.json (peft_type LORA + tensor_rank) + adapter_model.bin with lora_{A,B}.layer.tensor.factors.<k>',
  detect(f) {
    const cfg = officialConfig(f);
    return cfg !== undefined && cfg.peft_type === 'LORA' && 'tensor_rank' in cfg && !TRAC_ONLY.some((k) => k in cfg);
  },
  importFiles: importLoretta,
};
