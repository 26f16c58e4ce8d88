/**
 * @tensorpeft/kernels-wasm — SIMD WebAssembly kernels behind core's Backend interface.
 *
 * ```ts
 * import { getBackend } from '@tensorpeft/core';
 * import { registerWasmBackend } from '@tensorpeft/kernels-wasm';
 * registerWasmBackend();               // or: import '@tensorpeft/kernels-wasm/register'
 * const backend = await getBackend();  // 'wasm', or 'js' when the .wasm cannot load
 * ```
 */
import { registerBackend } from '@tensorpeft/core';
import { WasmBackend, type WasmBackendOptions } from './backend.js';

export { WasmBackend, createWasmBackend, type WasmBackendOptions } from './backend.js';
export { WasmKernelError, WasmLoadError } from './errors.js';
export { ResidentBuffer } from './resident.js';
export { availableThreads, DEFAULT_WORKER_URL } from './threads.js';
export { ABI_VERSION, DEFAULT_MT_WASM_URL, DEFAULT_WASM_URL, compileKernels, instantiateKernels, loadKernels, type KernelExports, type WasmSource } from './loader.js';
export { runSelftest, SELFTEST_TOLERANCE, type SelftestCase, type SelftestResult } from './selftest.js';
/**
 * The selftest's building blocks, for other backends' tests: `compareArrays` (the per-array
 * tolerance check), `absExpr` / `exprDepth` (|y| reference and K_eff of an expression),
 * `TINY_CONFIGS` (tiny adapter configs per method) and seeded data (`mulberry32`, `randF32`,
 * `positive`). Not needed to use the backend.
 */
export * as selftestHelpers from './selftest-helpers.js';
export { runKernelBench, type BenchRow, type BenchOptions } from './bench.js';

/** Priority in core's registry: above js (0), below a GPU backend. */
export const WASM_PRIORITY = 10;

let registered = false;

/**
 * Register the wasm backend with core (`getBackend('wasm')`, and the default when it loads).
 * Idempotent without options; with options it re-registers (e.g. a custom `.wasm` location).
 */
export function registerWasmBackend(opts?: WasmBackendOptions & { priority?: number }): void {
  if (registered && !opts) return;
  registered = true;
  registerBackend('wasm', () => WasmBackend.create(opts), opts?.priority ?? WASM_PRIORITY);
}
