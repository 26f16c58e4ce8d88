/**
 * float32 heap regions → float16 result buffers, for fp16 graphs (transformers.js `dtype: 'fp16'`
 * / `'q4f16'`), whose adapter inputs ONNX Runtime Web takes as `Tensor.fromGpuBuffer(buf,
 * { dataType: 'float16' })`: IEEE binary16 values, two per 32-bit word, element 2k in the low half.
 *
 * Two kernels write that same layout:
 * - `half_pack` (core WGSL, every device): one invocation per word, `pack2x16float` of two heap
 *   values. No extension is needed, so it runs where `shader-f16` is missing (SwiftShader among them).
 * - `half_native` (devices with `shader-f16`): one invocation per element, `f16(v)` stored into an
 *   `array<f16>`.
 * WGSL leaves two things open in both conversions, so both kernels pin them down: a value beyond the
 * finite binary16 range (|v| > 65504) gives an *indeterminate* result, so those values are written
 * explicitly as round-to-nearest-even gives them — ±65504 below 65520, ±∞ from there — and NaN as a
 * quiet NaN, as the plugin's CPU converter does. For finite values in range WGSL lets the implementation pick
 * either adjacent binary16 value; SwiftShader rounds to nearest, ties to even (tested against a JS
 * reference: every one of 131 072 random values, ties and subnormals included).
 */
import { EW } from './shaders.js';

/** Parameters of both kernels: 0 source offset (floats, in the heap), 1 element count. */
export const HALF_PARAMS = 2;

/** Binary16 bits of v where WGSL leaves the conversion open (±∞ beyond range, NaN), else `h`. */
const fix = /* wgsl */ `
fn fix(v: f32, h: u32) -> u32 {
  let sign = select(0u, 0x8000u, v < 0.0);
  if (v != v) { return 0x7e00u; }
  if (abs(v) >= 65520.0) { return sign | 0x7c00u; }
  if (abs(v) > 65504.0) { return sign | 0x7bffu; }
  return h;
}
`;

const bindings = /* wgsl */ `
@group(0) @binding(0) var<storage, read> heap: array<f32>;
@group(0) @binding(1) var<storage, read> p: array<u32>;
`;

const index = /* wgsl */ `
  let idx = (wg.y * nwg.x + wg.x) * ${EW}u + li;
`;

export const HALF_PACK = /* wgsl */ `${bindings}
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
${fix}
@compute @workgroup_size(${EW})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${index}
  let len = p[1];
  if (idx >= (len + 1u) / 2u) { return; }
  let i = 2u * idx;
  let a = heap[p[0] + i];
  var b = 0.0;
  if (i + 1u < len) { b = heap[p[0] + i + 1u]; }
  let w = pack2x16float(vec2<f32>(a, b));
  dst[idx] = fix(a, w & 0xffffu) | (fix(b, w >> 16u) << 16u);
}
`;

export const HALF_NATIVE = /* wgsl */ `enable f16;
${bindings}
@group(0) @binding(2) var<storage, read_write> dst: array<f16>;
${fix}
@compute @workgroup_size(${EW})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${index}
  if (idx >= p[1]) { return; }
  let v = heap[p[0] + idx];
  let h = fix(v, 0u);
  if (v == v && abs(v) <= 65504.0) { dst[idx] = f16(v); } else { dst[idx] = bitcast<vec2<f16>>(h)[0]; }
}
`;

/** Bytes of a binary16 buffer of `len` elements (whole 32-bit words: `pack` writes pairs; ≥ 4). */
export function halfBufferBytes(len: number): number {
  return Math.max(4, Math.ceil(len / 2) * 4);
}

/** Invocations each kernel runs for `len` elements. */
export function halfInvocations(kernel: 'pack' | 'native', len: number): number {
  return kernel === 'pack' ? Math.ceil(len / 2) : len;
}
