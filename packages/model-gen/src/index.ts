// onnx-proto's public types (ModelProto in rewriteModel / decodeModel) name the global `Long` of
// @types/long without referencing it: without this line, projects that list their own `types` and
// check libraries (skipLibCheck: false) fail with TS2304 "Cannot find name 'Long'".
/// <reference types="long" preserve="true" />
/**
 * @tensorpeft/model-gen — transformers.js-loadable model folders (config, tokenizer, ONNX fp32 and
 * q8) with deterministic random weights, laid out like optimum/torch exports.
 */
export { makeModel, writeModel, buildGraph, type MakeModelOptions, type GeneratedModel } from './make-model.js';
export { ARCHS, SIZES, TASKS, ARCH_TASKS, DEFAULT_TASK, CLASS_NAMES, TASK_ROOT, TASK_ALIASES, modelDims, type Arch, type Size, type Task, type ModelDims } from './spec.js';
export { scopeOf, F32_MIN, type GraphLinear, type StateDict } from './build/ctx.js';
export { encodeModel, decodeModel, type Graph, type GraphNode, type TensorData, type ValueInfo } from './onnx/graph.js';
export { quantizeDynamic, quantizeWeight, Q8_OPTIONS, INT8_OPTIONS, UINT8_OPTIONS, type DynamicQuantOptions } from './onnx/quantize.js';
export { EXTRA_DTYPES, dtypeGraph, type ExtraDtype } from './onnx/dtypes.js';
export { convertToFloat16, inferTypes } from './onnx/float16.js';
export { quantizeQ4, quantizeBnb4, quantizeQ4Graph, quantizeBnb4Graph, NF4, Q4_BLOCK, BNB4_BLOCK } from './onnx/quant4.js';
export { dedupeInitializers } from './onnx/dedupe.js';
export { buildGenaiLlama, genaiQ4Graph, genaiConfig, encodeGenai, GENAI_DTYPES, GENAI_ACCURACY_LEVEL, type GenaiBuild, type GenaiDtype } from './build/genai.js';
export { encodeModelExternal, DEFAULT_SIZE_THRESHOLD, DEFAULT_ALIGN_THRESHOLD, DEFAULT_ALIGNMENT, type ExternalDataOptions, type ExternalEntry, type ExternalEncoded } from './onnx/external.js';
export { makeTokenizer, defaultFixturesDir, type TokenizerFiles } from './tokenizers.js';
export { ENCODER_DECODER_ARCHS, type EncoderDecoderArch } from './spec.js';
export { mergeDecoders, whisperDims, type WhisperDims } from './build/whisper.js';
