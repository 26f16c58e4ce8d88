/** `tensorpeft verify`: plugin + adapter vs an offline-merged model, and plugin disabled vs the untouched base. */
import { parseArgs } from 'node:util';
import { verify } from '@tensorpeft/transformers-plugin/node';
import { UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const verifyHelp = `tensorpeft verify --model <model dir> --adapter <adapter dir|URL> [--dtype fp32|q8] [--mode branch|merge] [--text "…"]… [--tolerance X]
  Runs the same fixed texts (or the given --text, repeatable) through transformers.js four ways:
  the untouched base model; the model with the TensorPEFT plugin and adapters disabled; the plugin with
  the adapter active; and an independently built model whose fp32 ONNX initializers were merged offline
  (W0 + ΔW in each weight's own layout, plus modules_to_save). Prints JSON with max_abs_diff (plugin vs
  merged) and base_max_abs_diff (disabled vs base; must be exactly 0). --dtype q8 runs the plugin on
  onnx/model_quantized.onnx (the merged reference stays fp32, so max_abs_diff then includes quantization
  error). Exit code 1 when base_max_abs_diff ≠ 0 or max_abs_diff > tolerance (default 1e-4 for fp32,
  5e-2 for q8). Text models (encoders, GPT-2, LLaMA) in a local folder.`;

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
    },
    strict: true,
  });
  if (!values.model) throw new UsageError('--model <model dir> is required');
  if (!values.adapter) throw new UsageError('--adapter <adapter dir|URL> is required');
  const dtype = values.dtype ?? 'fp32';
  if (dtype !== 'fp32' && dtype !== 'q8') throw new UsageError(`--dtype must be fp32 or q8, got ${dtype}`);
  const mode = values.mode ?? 'branch';
  if (mode !== 'branch' && mode !== 'merge') throw new UsageError(`--mode must be branch or merge, got ${mode}`);
  const tolerance = values.tolerance === undefined ? (dtype === 'q8' ? 5e-2 : 1e-4) : Number(values.tolerance);
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new UsageError(`--tolerance must be a non-negative number, got ${values.tolerance}`);
  const t0 = performance.now();
  const r = await verify({ model: values.model, adapter: values.adapter, dtype, mode, ...(values.text ? { texts: values.text } : {}) });
  const ok = r.base_max_abs_diff === 0 && r.max_abs_diff <= tolerance;
  printJson(io, { ...r, tolerance, ok, ms: Math.round(performance.now() - t0) });
  return ok ? 0 : 1;
}
