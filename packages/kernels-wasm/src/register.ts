/**
 * Side-effect entry: `import '@tensorpeft/kernels-wasm/register'` makes core's `getBackend()`
 * prefer the wasm kernels (falling back to JS when they cannot load).
 */
import { registerWasmBackend } from './index.js';

registerWasmBackend();
