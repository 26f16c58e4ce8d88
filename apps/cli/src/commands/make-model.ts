/** `tensorpeft make-model`: write a transformers.js model folder with deterministic random weights. */
import { parseArgs } from 'node:util';
import { ARCH_TASKS, ARCHS, DEFAULT_TASK, ENCODER_DECODER_ARCHS, EXTRA_DTYPES, writeModel, type Arch, type ExtraDtype } from '@tensorpeft/model-gen';
import { parseIntArg, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const makeModelHelp = `tensorpeft make-model --arch <${[...ARCHS, ...ENCODER_DECODER_ARCHS].join('|')}> [--size tiny|base] [--task <task>] [--num-labels N] [--seed N] [--gpt2-conv1d Gemm|MatMul] [--no-quantized] [--external-data]
                      [--dtype fp16|int8|uint8|q4|q4f16|bnb4]… [--layout optimum|merged-decoder|genai] [--fresh-init] [--no-constant-folding] --out <dir>
  Writes config.json, tokenizer.json + tokenizer_config.json (preprocessor_config.json for vit),
  onnx/model.onnx (fp32) and onnx/model_quantized.onnx (q8) with seeded random weights, laid out like
  optimum exports (nodes named by module path, MatMul weights transposed as onnx::MatMul_N, Gemm heads).
  Tasks: feature-extraction (bare model), sequence-classification (encoders, vit), causal-lm (gpt2, llama;
  exported with past_key_values). Default: the PEFT task model (${Object.entries(DEFAULT_TASK)
    .map(([a, t]) => `${a}: ${t}`)
    .join(', ')}).
  Sizes: tiny (hidden 32–64, 2 layers) or base (BERT-base, RoBERTa-base, DistilBERT-base, GPT-2 small,
  ViT-B/16, SmolLM-135M shapes; hundreds of MB, a few seconds).
  --external-data: initializers of 1 KiB or more go to onnx/model.onnx_data (and model_quantized.onnx_data),
  with use_external_data_format in config.json — the layout of exports over 2 GB.
  --dtype (repeatable, or comma-separated): also write onnx/model_<dtype>.onnx as transformers.js'
  quantization script makes it (fp16 with Cast at the I/O; int8/uint8 MatMulInteger; q4/q4f16
  MatMulNBits block 32; bnb4 MatMulBnb4 NF4 block 64).
  --layout merged-decoder (causal-lm): every .onnx is a merged decoder — an If on use_cache_branch with
  the decoder in both subgraphs and the weights on the main graph (optimum's decoder_model_merged layout).
  --layout genai (llama causal-lm): onnxruntime-genai's model builder layout — packed qkv_proj MatMul into
  GroupQueryAttention, SkipSimplifiedLayerNormalization, genai_config.json; --dtype fp16, q4 and q4f16 only, no q8 file.
  --fresh-init: biases 0 and LayerNorm γ = 1 (a model built from its config); the bit-identical tensors
  are de-duplicated into Identity aliases as torch.onnx does. --no-constant-folding: Linear weights read
  through Transpose under their state-dict names.`;

export async function makeModelCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      arch: { type: 'string' },
      size: { type: 'string' },
      task: { type: 'string' },
      'num-labels': { type: 'string' },
      seed: { type: 'string' },
      'gpt2-conv1d': { type: 'string' },
      'no-quantized': { type: 'boolean', default: false },
      'external-data': { type: 'boolean', default: false },
      dtype: { type: 'string', multiple: true },
      'fresh-init': { type: 'boolean', default: false },
      layout: { type: 'string' },
      'no-constant-folding': { type: 'boolean', default: false },
      out: { type: 'string' },
    },
    strict: true,
  });
  if (!values.arch) throw new UsageError(`--arch is required (${[...ARCHS, ...ENCODER_DECODER_ARCHS].join(', ')})`);
  if (!values.out) throw new UsageError('--out <dir> is required');
  if (values.size !== undefined && values.size !== 'tiny' && values.size !== 'base') throw new UsageError(`--size must be tiny or base, got ${values.size}`);
  const conv1d = values['gpt2-conv1d'];
  if (conv1d !== undefined && conv1d !== 'Gemm' && conv1d !== 'MatMul') throw new UsageError(`--gpt2-conv1d must be Gemm or MatMul, got ${conv1d}`);
  const numLabels = parseIntArg(values['num-labels'], '--num-labels', 2);
  if (numLabels < 1) throw new UsageError('--num-labels must be at least 1');
  const layout = values.layout;
  if (layout !== undefined && layout !== 'optimum' && layout !== 'merged-decoder' && layout !== 'genai') throw new UsageError(`--layout must be optimum, merged-decoder or genai, got ${layout}`);
  const dtypes = (values.dtype ?? []).flatMap((d) => d.split(',')).filter((d) => d !== '');
  for (const d of dtypes) if (!(EXTRA_DTYPES as readonly string[]).includes(d)) throw new UsageError(`--dtype must be one of ${EXTRA_DTYPES.join(', ')}, got ${d}`);
  const t0 = performance.now();
  const m = await writeModel(
    {
      arch: values.arch,
      size: values.size ?? 'tiny',
      ...(values.task !== undefined ? { task: values.task } : {}),
      numLabels,
      seed: parseIntArg(values.seed, '--seed', 0),
      quantized: !values['no-quantized'],
      ...(values['external-data'] ? { externalData: true } : {}),
      ...(dtypes.length > 0 ? { dtypes: dtypes as ExtraDtype[] } : {}),
      ...(values['fresh-init'] ? { freshInit: true } : {}),
      ...(layout !== undefined ? { layout } : {}),
      ...(values['no-constant-folding'] ? { constantFolding: false } : {}),
      ...(conv1d !== undefined ? { gpt2Conv1d: conv1d } : {}),
    },
    values.out,
  );
  const note = tokenizerNote(m.size, m.arch, m.tokenizerSource);
  if (note) io.err(`tensorpeft make-model: note: ${note}`);
  printJson(io, {
    out: values.out,
    arch: m.arch,
    size: m.size,
    task: m.task,
    class: (m.config['architectures'] as string[])[0],
    tasks_available: ARCH_TASKS[m.arch as Arch],
    tokenizer: m.tokenizerSource ?? null,
    ...(note ? { tokenizer_note: note } : {}),
    modules: m.shape.modules.length,
    inputs: m.inputs.map((v) => v.name),
    outputs: m.outputs.map((v) => v.name),
    files: Object.fromEntries([...m.files].map(([k, v]) => [k, v.byteLength])),
    ms: Math.round(performance.now() - t0),
  });
  return 0;
}

/**
 * A base-size model is meant to look real; a generated tokenizer (no real tokenizer files for this
 * architecture, or the repository's fixtures/ missing, as in an npm install) makes any text
 * tokenize into a small made-up vocabulary, so say it rather than let outputs look meaningful.
 */
export function tokenizerNote(size: string, arch: string, source: string | undefined): string | undefined {
  if (size !== 'base' || source !== 'generated') return undefined;
  return `no real tokenizer files for ${arch}: wrote a small generated tokenizer (made-up vocabulary, not the published checkpoint's); real ones come from fixtures/peft-real in the repository (DistilBERT/BERT, GPT-2/RoBERTa), or copy tokenizer.json + tokenizer_config.json from the published model`;
}
