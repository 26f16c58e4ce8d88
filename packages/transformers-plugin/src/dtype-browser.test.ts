/**
 * The plugin on transformers.js' LLM dtypes in headless Chromium, ORT-web wasm EP: tiny LLaMA as
 * `model_q4.onnx` and `model_q4f16.onnx` (on this CPU EP with fp32 branches and float32 adapter
 * inputs, branch-dtype.ts). What is checked and
 * why: test-utils/dtype-browser-suite.ts. The WebGPU run (GPU-fed adapters on `model_q4.onnx`) takes
 * minutes on SwiftShader, so it is a separate check: test-utils/dtype-webgpu.slow.ts (see the README).
 */
import { dtypeBrowserSuite } from './test-utils/dtype-browser-suite.js';

dtypeBrowserSuite(['q4-wasm', 'q4f16-wasm']);
