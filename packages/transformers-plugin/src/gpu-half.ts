/**
 * GPU-fed adapters on fp16 graphs (transformers.js `dtype: 'fp16'` / `'q4f16'`, issue 12). Those
 * graphs declare the adapter inputs `tensorpeft.<path>.A|B` float16, and a float32 GPUBuffer cannot
 * be converted on the way in as CPU tensors are (half-feeds.ts). So the registry asks the WebGPU
 * backend for float16 results instead (`materializeToGpu(…, { dtype: 'float16' })`: A′ and s·B′ᵀ
 * computed in float32, then rounded once to binary16 on the GPU) and feeds them as
 * `Tensor.fromGpuBuffer(buf, { dataType: 'float16' })`. The dtype follows the hooked sessions'
 * declared inputs; sessions that disagree (one fp32, one fp16) cannot share one set of buffers.
 */
import { PluginError } from './errors.js';
import type { GpuMaterializer } from './ort-feeds.js';
import { INPUT_PREFIX } from './rewrite.js';

export type AdapterDtype = 'float32' | 'float16';

/** The element type a session declares for its branch inputs (`tensorpeft.<path>.A`); undefined without any. */
export function adapterInputDtype(session: { inputMetadata?: ReadonlyArray<{ name: string; type?: string }> }): AdapterDtype | undefined {
  const a = (session.inputMetadata ?? []).find((m) => m.name.startsWith(INPUT_PREFIX) && m.name.endsWith('.A'));
  if (!a) return undefined;
  return a.type === 'float16' ? 'float16' : 'float32';
}

/** Bytes per element of GPU-fed buffers for sessions declaring `dtypes`. */
export function gpuElementBytes(dtypes: ReadonlySet<AdapterDtype>): number {
  return dtypes.has('float16') && !dtypes.has('float32') ? 2 : 4;
}

/**
 * `gpu` asking for the element type the sessions declare (unchanged for float32 graphs). A
 * PluginError when sessions disagree: one set of GPU buffers cannot be both.
 */
export function gpuForSessions(gpu: GpuMaterializer | undefined, dtypes: ReadonlySet<AdapterDtype>): GpuMaterializer | undefined {
  if (!gpu || !dtypes.has('float16')) return gpu;
  if (dtypes.has('float32')) {
    throw new PluginError('GPU-fed adapters ({ gpu }) need every session of the model to declare the same adapter input type: this model has float32 and float16 ones; load the adapter with { gpu: null }');
  }
  return { materializeToGpu: (jobs, opts) => gpu.materializeToGpu(jobs, { ...opts, dtype: 'float16' }) };
}
