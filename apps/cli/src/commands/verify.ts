/** `tensorpeft verify`: plugin + adapter vs an offline-merged model, and plugin disabled vs the untouched base. */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isVerifyDtype, verify, VERIFY_DTYPES } from '@tensorpeft/transformers-plugin/node';
import { UsageError } from '../args.js';
import { FileNotFoundError } from '../file-errors.js';
import { printJson, type CliIO } from '../io.js';

export const verifyHelp = `tensorpeft verify --model <model dir> --adapter <adapter dir|URL> [--dtype fp32|fp16|q8|int8|uint8|q4|q4f16|bnb4] [--mode branch|merge] [--json] [--text "…"]… [--tolerance X]
                  [--graph-optimization disabled|basic|extended|all] [--base-tolerance X]
  Runs the same fixed inputs through transformers.js four ways (text models: fixed texts, or the given
  --text, repeatable; image models such as ViT: three synthetic images of different sizes, batched
  through the model's own image processor):
  the untouched base model; the model with the TensorPEFT plugin and adapters disabled; the plugin with
  the adapter active; and an independently built model whose fp32 ONNX initializers were merged offline
  (W0 + ΔW in each weight's own layout, plus modules_to_save). Prints JSON (always; --json is accepted)
  with max_abs_diff (plugin vs merged, at positions the attention mask keeps) and base_max_abs_diff
  (disabled vs base, every element; must be exactly 0). --dtype runs the plugin on transformers.js'
  file for that dtype (onnx/model_fp16.onnx, model_quantized.onnx for q8, model_<dtype>.onnx); the merged
  reference stays fp32, so max_abs_diff then includes the dtype's own error. Exit code 1 when
  base_max_abs_diff > --base-tolerance (default 0) or max_abs_diff > tolerance: by default the derived
  one verify reports (3 · dtype_error + 1e-4 · max(1, reference_max_abs) + 4u · adapter_effect, where
  dtype_error = |base on the dtype − base fp32| on the same inputs and u = 2^-11 on fp16 graphs, 2^-24
  otherwise; see the plugin's tolerance.ts); --tolerance X replaces it. --graph-optimization sets onnxruntime's level for all four
  models (default: onnxruntime's own, all). The rewrite keeps the chains onnxruntime fuses (e.g.
  SkipLayerNormalization with its bias) as in the base, so base_max_abs_diff is 0 at every level for
  the supported architectures; if another export gives a few ulps (≈ 1e-7) at the default level and 0
  with --graph-optimization basic, the rewritten graph misses one of its fusions (not an adapter fault):
  --base-tolerance accepts that. Text models (encoders, GPT-2, LLaMA) and ViT image classifiers in a
  local folder, including models with ONNX external data (onnx/model.onnx_data, read from that folder
  only).`;

export async function verifyCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      adapter: { type: 'string' },
      dtype: { type: 'string' },
      text: { type: 'string', multiple: true },
      tolerance: { type: 'string' },
      mode: { type: 'string' },
      'graph-optimization': { type: 'string' },
      'base-tolerance': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.model) throw new UsageError('--model <model dir> is required');
  if (!values.adapter) throw new UsageError('--adapter <adapter dir|URL> is required');
  const dtype = values.dtype ?? 'fp32';
  if (!isVerifyDtype(dtype)) throw new UsageError(`--dtype must be one of ${VERIFY_DTYPES.join(', ')}, got ${dtype}`);
  const mode = values.mode ?? 'branch';
  if (mode !== 'branch' && mode !== 'merge') throw new UsageError(`--mode must be branch or merge, got ${mode}`);
  const given = values.tolerance === undefined ? undefined : Number(values.tolerance);
  if (given !== undefined && (!Number.isFinite(given) || given < 0)) throw new UsageError(`--tolerance must be a non-negative number, got ${values.tolerance}`);
  const level = values['graph-optimization'];
  if (level !== undefined && !isLevel(level)) throw new UsageError(`--graph-optimization must be disabled, basic, extended or all, got ${level}`);
  const baseTolerance = values['base-tolerance'] === undefined ? 0 : Number(values['base-tolerance']);
  if (!Number.isFinite(baseTolerance) || baseTolerance < 0) throw new UsageError(`--base-tolerance must be a non-negative number, got ${values['base-tolerance']}`);
  await needModelFolder(values.model);
  const t0 = performance.now();
  const r = await verify({
    model: values.model,
    adapter: values.adapter,
    dtype,
    mode,
    ...(values.text ? { texts: values.text } : {}),
    ...(level ? { graphOptimizationLevel: level } : {}),
  });
  // The derived tolerance (r.tolerance) unless --tolerance overrides it.
  const tolerance = given ?? r.tolerance;
  const ok = r.base_max_abs_diff <= baseTolerance && r.max_abs_diff <= tolerance;
  printJson(io, { ...r, tolerance, ...(given !== undefined ? { derived_tolerance: r.tolerance } : {}), base_tolerance: baseTolerance, ok, ms: Math.round(performance.now() - t0) });
  // A tiny base difference at the default level would most likely be a fusion the rewritten graph of
  // an unfamiliar export misses (see the help); say how to tell that from a plugin fault instead of
  // leaving a bare exit code 1.
  if (!level && r.base_max_abs_diff > baseTolerance && r.base_max_abs_diff <= 1e-6)
    io.err(`base_max_abs_diff ${r.base_max_abs_diff} at onnxruntime's default optimization level: rerun with --graph-optimization basic (must give 0) to rule out a plugin fault`);
  return ok ? 0 : 1;
}

const LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;
function isLevel(v: string): v is (typeof LEVELS)[number] {
  return (LEVELS as readonly string[]).includes(v);
}

/** --model must be a local folder with a config.json: say so in one line before anything loads. */
async function needModelFolder(dir: string): Promise<void> {
  const expected = 'a transformers.js model folder (config.json, onnx/model.onnx)';
  const isDir = await stat(dir).then((s) => s.isDirectory(), () => undefined);
  if (isDir === undefined) throw new FileNotFoundError('model folder not found', { file: dir, expected });
  if (!isDir) throw new FileNotFoundError('--model is a file, not a model folder', { file: dir, expected });
  const config = path.join(dir, 'config.json');
  if (!(await stat(config).then((s) => s.isFile(), () => false))) throw new FileNotFoundError('model folder has no config.json', { file: config, expected });
}
