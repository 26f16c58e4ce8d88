/**
 * `layout: 'genai'`: the model folder of an onnxruntime-genai builder export (graphs in build/genai.ts)
 * that transformers.js also loads — config.json, tokenizer files, generation_config.json,
 * `genai_config.json` (the builder's), `onnx/model.onnx` (fp32, `-e cpu`) and, on request,
 * `onnx/model_fp16.onnx` (`-p fp16 -e webgpu`), `onnx/model_q4.onnx` (`-p int4 -e cpu`) and
 * `onnx/model_q4f16.onnx` (`-p int4 -e webgpu`).
 */
import { buildShape, ConfigError } from '@tensorpeft/core';
import type { GeneratedModel, MakeModelOptions } from '../make-model.js';
import { encodeModelExternal } from '../onnx/external.js';
import type { Graph } from '../onnx/graph.js';
import type { Arch, ModelDims, Size, Task } from '../spec.js';
import type { TokenizerFiles } from '../tokenizers.js';
import { buildGenaiLlama, encodeGenai, GENAI_DTYPES, genaiConfig, genaiQ4Graph, type GenaiDtype } from './genai.js';

export interface GenaiFolderContext {
  arch: Arch;
  size: Size;
  task: Task;
  d: ModelDims;
  seed: number;
  tok?: TokenizerFiles;
  json: (v: unknown) => Uint8Array;
  /** config.json for these dims (make-model's, so both layouts write the same one). */
  config: (meta: Record<string, unknown>) => Record<string, unknown>;
}

export function genaiFiles(opts: MakeModelOptions, c: GenaiFolderContext): GeneratedModel {
  // The builder's architectures that model-gen has: LlamaForCausalLM only (it has no BERT, GPT-2 or ViT builder).
  if (c.arch !== 'llama') throw new ConfigError('the genai layout exists for llama only (onnxruntime-genai has no builder for the other generated architectures)', { field: 'layout', expected: 'arch llama', found: c.arch });
  if (c.task !== 'causal-lm') throw new ConfigError('the genai layout is a causal LM with past (task causal-lm)', { field: 'layout', expected: 'causal-lm', found: c.task });
  const dtypes = (opts.dtypes ?? []) as readonly string[];
  for (const dt of dtypes) {
    if (!(GENAI_DTYPES as readonly string[]).includes(dt)) throw new ConfigError('dtype not made by the genai layout', { field: 'dtype', expected: GENAI_DTYPES.join(' | '), found: dt });
  }
  const { graph, ctx, linears } = buildGenaiLlama(c.d, c.seed, 'float32');
  const files = new Map<string, Uint8Array>();
  const meta = { name: `tensorpeft/random-${c.arch}-${c.size}`, generator: '@tensorpeft/model-gen', seed: c.seed, size: c.size, task: c.task, layout: 'genai', ...(c.d.shapeOf ? { shape_of: c.d.shapeOf } : {}) };
  const config = c.config(meta);
  if (opts.externalData === true) config['transformers.js_config'] = { use_external_data_format: true };
  files.set('config.json', c.json(config));
  if (c.tok) {
    files.set('tokenizer.json', c.json(c.tok.tokenizer));
    files.set('tokenizer_config.json', c.json(c.tok.config));
  }
  files.set('generation_config.json', c.json({ bos_token_id: config['bos_token_id'], eos_token_id: config['eos_token_id'], transformers_version: '4.46.3' }));
  files.set('genai_config.json', c.json(genaiConfig(c.d, { bos: config['bos_token_id'] as number, eos: config['eos_token_id'] as number }, 'onnx/model.onnx')));
  const onnxFile = (name: string, g: Graph): void => {
    if (!opts.externalData) {
      files.set(`onnx/${name}`, encodeGenai(g));
      return;
    }
    const e = encodeModelExternal(g, { location: `${name}_data` });
    files.set(`onnx/${name}`, e.model);
    files.set(`onnx/${name}_data`, e.data);
  };
  onnxFile('model.onnx', graph);
  // fp16 and q4f16 are their own exports (fp16 io_dtype): the builder rebuilds the graph in fp16
  // (then, for q4f16, int4). Built once when both are asked for.
  let half: Graph | undefined;
  const halfGraph = (): Graph => (half ??= buildGenaiLlama(c.d, c.seed, 'float16').graph);
  for (const dt of dtypes as readonly GenaiDtype[]) {
    onnxFile(`model_${dt}.onnx`, dt === 'fp16' ? halfGraph() : genaiQ4Graph(dt === 'q4' ? graph : halfGraph()));
  }
  const d = c.d;
  const shape = buildShape(c.arch, { hiddenSize: d.hiddenSize, numLayers: d.numLayers, numHeads: d.numHeads, numKvHeads: d.numKvHeads, intermediateSize: d.intermediateSize }, meta.name);
  const out: GeneratedModel = { files, shape, arch: c.arch, size: c.size, task: c.task, config, linears, inputs: graph.inputs, outputs: graph.outputs, weights: ctx.state };
  if (c.tok) out.tokenizerSource = c.tok.source;
  return out;
}
