/// <reference types="@webgpu/types" preserve="true" />
/**
 * @tensorpeft/kernels-wgsl — WGSL compute kernels behind core's Backend interface (WebGPU), with
 * GPU-resident results for ONNX Runtime Web.
 *
 * ```ts
 * import { getBackend } from '@tensorpeft/core';
 * import { registerWebGpuBackend } from '@tensorpeft/kernels-wgsl';
 * registerWebGpuBackend();                      // or: import '@tensorpeft/kernels-wgsl/register'
 * const gpu = await getBackend('webgpu');       // WebGpuUnavailableError when there is no WebGPU
 * ```
 */
import { registerBackend } from '@tensorpeft/core';
import { WebGpuBackend, type WebGpuBackendOptions } from './backend.js';

export { WebGpuBackend, createWebGpuBackend, type GpuMaterializeOptions, type GpuModuleUpdate, type WebGpuBackendOptions } from './backend.js';
export { acquireDevice, SWIFTSHADER_ICD, type AcquiredDevice, type DeviceOptions } from './device.js';
export { WebGpuDeviceLostError, WebGpuKernelError, WebGpuUnavailableError } from './errors.js';
export { BufferPool, type PoolStats } from './pool.js';
export { SHADERS, TILE, type KernelName } from './shaders.js';

/**
 * Default priority in core's registry: above js (0), BELOW wasm (10). Registry priorities are
 * fixed when a backend registers, before any device exists, and on a machine without a GPU WebGPU
 * runs on a software rasterizer (SwiftShader: ~0.1–0.3 GFLOP/s against the wasm kernels' ~50), so
 * an automatic `getBackend()` must not pick it there. Where a real GPU is known to be present, or
 * to keep results on the GPU for ONNX Runtime Web, ask for it by name (`getBackend('webgpu')`), or
 * register with a higher priority (`registerWebGpuBackend({ priority: 20 })`), or use
 * `registerWebGpuBackendAuto()`, which probes the adapter first.
 */
export const WEBGPU_PRIORITY = 5;
/** Priority `registerWebGpuBackendAuto` uses when the adapter is a hardware GPU. */
export const WEBGPU_HARDWARE_PRIORITY = 20;

let registered = false;

/**
 * Register the WebGPU backend with core (`getBackend('webgpu')`). When its factory fails (no
 * WebGPU: WebGpuUnavailableError), `getBackend()` falls back to the next backend (wasm, js).
 * Idempotent without options; with options it re-registers (e.g. a shared ORT device).
 */
export function registerWebGpuBackend(opts?: WebGpuBackendOptions & { priority?: number }): void {
  if (registered && !opts) return;
  registered = true;
  registerBackend('webgpu', () => WebGpuBackend.create(opts), opts?.priority ?? WEBGPU_PRIORITY);
}

/**
 * Probe the adapter, then register: priority 20 (above wasm) on a hardware GPU, 5 on a software
 * adapter; not registered at all (returns false) when there is no WebGPU. The probed backend is
 * the instance `getBackend('webgpu')` returns.
 */
export async function registerWebGpuBackendAuto(opts?: WebGpuBackendOptions): Promise<boolean> {
  let b: WebGpuBackend;
  try {
    b = await WebGpuBackend.create(opts);
  } catch {
    return false;
  }
  registered = true;
  registerBackend('webgpu', () => b, b.software ? WEBGPU_PRIORITY : WEBGPU_HARDWARE_PRIORITY);
  return true;
}
