/**
 * Finding bit-identical initializers (same element type, dims and bytes), as torch.onnx's
 * de-duplication (dedupe.ts) and optimum's merge of the two decoder exports (build/whisper.ts) do:
 * a cheap bucket key first, then a full byte comparison within the bucket.
 */
import type { TensorData } from './graph.js';

/** The tensor's bytes as stored (a view, no copy). */
export function bytesOf(t: TensorData): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Equal for identical tensors (type, dims, byte length and a few sample bytes); compare in full within a key. */
export function bucketKey(t: TensorData): string {
  const b = bytesOf(t);
  return `${t.dtype}|${t.dims.join(',')}|${b.length}|${b[0]}|${b[b.length >> 1]}|${b[b.length - 1]}`;
}
