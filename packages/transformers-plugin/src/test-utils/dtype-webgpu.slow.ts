/**
 * Slow browser check (not in CI: minutes on SwiftShader, which compiles a WebGPU pipeline for every
 * new shape): tiny LLaMA `model_q4.onnx` on ORT-web's WebGPU EP in headless Chromium, the adapter fed
 * from CPU tensors and from kernels-wgsl's GPU-resident buffers, disabled = base bit for bit, both vs
 * the fp32 merge, greedy generate() of the GPU-fed adapter. Run:
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json npx vitest run -c packages/transformers-plugin/vitest.slow.config.ts
 */
import { dtypeBrowserSuite } from './dtype-browser-suite.js';

dtypeBrowserSuite(['q4-webgpu']);
