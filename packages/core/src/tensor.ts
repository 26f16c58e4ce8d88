/** A dense float32 tensor, row-major (C order). All computation is fp32; storage dtypes are a file concern. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function tensor(shape: number[], data?: Float32Array): Tensor {
  const n = numel(shape);
  if (data && data.length !== n) throw new RangeError(`tensor data length ${data.length} != product of shape [${shape}] = ${n}`);
  return { shape, data: data ?? new Float32Array(n) };
}

/** Parameters of an adapter (or any named tensors), keyed by safetensors key. */
export type TensorMap = Map<string, Tensor>;
