/** Typed errors of the WebGPU backend (subclasses of core's TensorPeftError, rendered at the edge). */
import { TensorPeftError } from '@tensorpeft/core';

/**
 * No usable WebGPU here: no `navigator.gpu` (browser without WebGPU, or not a secure context), the
 * `webgpu` npm package (Dawn) failed to load in Node, no adapter (no Vulkan loader / ICD), or
 * `requestDevice` failed. core's `getBackend()` then falls back to the next backend (wasm, js).
 */
export class WebGpuUnavailableError extends TensorPeftError {
  override name = 'WebGpuUnavailableError';
  override readonly code: string = 'WEBGPU_UNAVAILABLE';
}

/** The GPUDevice was lost (destroyed, driver reset, GPU removed) before or during a call. */
export class WebGpuDeviceLostError extends TensorPeftError {
  override name = 'WebGpuDeviceLostError';
  override readonly code: string = 'WEBGPU_DEVICE_LOST';
}

/**
 * A call failed on the GPU: a validation or out-of-memory error reported by the device, or a
 * problem too large for one storage binding. A bug or a resource limit, not bad input (bad
 * shapes are core's ShapeMismatchError, raised before anything is submitted).
 */
export class WebGpuKernelError extends TensorPeftError {
  override name = 'WebGpuKernelError';
  override readonly code: string = 'WEBGPU_KERNEL';
}
