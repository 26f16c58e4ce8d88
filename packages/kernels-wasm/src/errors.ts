/** Typed errors of the wasm backend (subclasses of core's TensorPeftError, rendered at the edge). */
import { TensorPeftError } from '@tensorpeft/core';

/**
 * The kernels' `.wasm` could not be loaded: missing file, failed fetch, not a WebAssembly binary,
 * failed compilation (a corrupted file, or an engine without 128-bit SIMD), missing exports, or
 * an ABI version other than the loader's.
 */
export class WasmLoadError extends TensorPeftError {
  override name = 'WasmLoadError';
  override readonly code: string = 'WASM_LOAD';
}

/** A kernel call failed inside wasm (a trap, or a program the kernels rejected). A bug, not bad input. */
export class WasmKernelError extends TensorPeftError {
  override name = 'WasmKernelError';
  override readonly code: string = 'WASM_KERNEL';
}
