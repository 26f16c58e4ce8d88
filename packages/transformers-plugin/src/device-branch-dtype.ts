/**
 * Which branch precision a transformers.js `device` gets (branch-dtype.ts has the rewrite side).
 * Kept apart from branch-dtype.ts, which imports onnx-proto: the public declarations (cache.d.ts,
 * from-pretrained.d.ts) reach this module, and users' type checks must not need onnx-proto.
 */
import type { BranchDtype } from './rewrite-types.js';

/** transformers.js' devices (its `device` option); the ones whose ONNX Runtime EP has no fp16 MatMul. */
const CPU_DEVICES = new Set(['cpu', 'wasm']);

/** transformers.js' `device`: one for every file, or per file name (`{ encoder_model: 'cpu', decoder_model_merged: 'webgpu' }`). */
export type DeviceOption = string | Readonly<Record<string, string>>;

/** `…/onnx/decoder_model_merged_q4f16.onnx` → `decoder_model_merged` (the name transformers.js looks per-file options up by). */
function fileNameOf(file: string): string {
  const base = (file.split('?')[0] ?? '').split('/').pop() ?? '';
  return base.replace(/\.onnx$/, '').replace(/_(fp32|fp16|q8|quantized|int8|uint8|q4|q4f16|bnb4)$/, '');
}

/**
 * The branch precision for `file` loaded on `device` (undefined: transformers.js' default, `cpu` in
 * Node and `wasm` in browsers — both CPU providers, as is a per-file record without this file).
 */
export function branchDtypeForDevice(device: DeviceOption | undefined, file: string): BranchDtype {
  // Falsy (undefined, null, ''): transformers.js' default device, as its selectDevice has it.
  const d = !device ? undefined : typeof device === 'string' ? device : typeof device === 'object' && Object.hasOwn(device, fileNameOf(file)) ? device[fileNameOf(file)] : undefined;
  return d === undefined || CPU_DEVICES.has(d) ? 'float32' : 'activation';
}
