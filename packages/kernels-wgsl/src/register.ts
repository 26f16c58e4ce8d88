/**
 * Side-effect entry: `import '@tensorpeft/kernels-wgsl/register'` registers the WebGPU backend
 * with core (priority 5: below wasm, see WEBGPU_PRIORITY; `getBackend('webgpu')` selects it).
 */
import { registerWebGpuBackend } from './index.js';

registerWebGpuBackend();
