/**
 * Encoder–decoder folders (optimum's `encoder_model*.onnx` + `decoder_model_merged*.onnx`, which
 * transformers.js loads as two sessions): which of the model's modules each file holds.
 *
 * optimum exports the encoder as its own root module (`model.get_encoder()`), so the encoder file's
 * node names are relative to it — `/layers.0/self_attn/q_proj/MatMul`, module path
 * `layers.0.self_attn.q_proj` — and that path is a suffix of both `model.encoder.layers.0.self_attn.q_proj`
 * and `model.decoder.layers.0.self_attn.q_proj`. Matching it against the encoder's modules only
 * makes it unambiguous; the decoder file (exported from the whole model, `/model/decoder/…`) gets
 * the decoder's modules. Each session then declares adapter inputs under the full PEFT path, and the
 * registry feeds every session the modules it has (a module no session has is an error there).
 */
import type { ModelShape } from '@tensorpeft/core';

const ENCODER_FILE = /(^|\/)encoder_model(_[a-z0-9]+)?\.onnx$/;
const DECODER_FILE = /(^|\/)decoder_(with_past_)?model(_merged)?(_[a-z0-9]+)?\.onnx$/;

/** Is `path` (a PEFT module path) inside the encoder stack (`model.encoder.…`, `encoder.…`)? */
export function inEncoder(path: string): boolean {
  return path.split('.').includes('encoder');
}

/** Which stack of an encoder–decoder export a model file holds, from its name (undefined: a single-file model). */
export function fileStack(file: string): 'encoder' | 'decoder' | undefined {
  const f = file.split('?')[0]!;
  if (ENCODER_FILE.test(f)) return 'encoder';
  if (DECODER_FILE.test(f)) return 'decoder';
  return undefined;
}

/**
 * `shape` with only the modules file `file` holds: the encoder's for `encoder_model*.onnx`, the
 * others for `decoder_*model*.onnx`. Unchanged for other files and for models without both stacks.
 */
export function shapeForFile(file: string, shape: ModelShape): ModelShape {
  const stack = fileStack(file);
  if (stack === undefined) return shape;
  const enc = shape.modules.filter((m) => inEncoder(m.path));
  if (enc.length === 0 || enc.length === shape.modules.length) return shape;
  return { ...shape, modules: stack === 'encoder' ? enc : shape.modules.filter((m) => !inEncoder(m.path)) };
}
