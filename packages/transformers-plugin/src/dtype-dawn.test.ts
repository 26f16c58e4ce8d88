/**
 * q4f16 tiny LLaMA on ORT-web's WebGPU EP with `shader-f16` (issue 12): headless Chromium without a
 * GPU only offers SwiftShader, which lacks the feature ORT's float16 kernels need, so the same page
 * code (dtype-browser-entry.ts: transformers.js' web build, ORT-web, the plugin, kernels-wgsl) runs
 * in a Node child process on Dawn over Mesa's lavapipe, which has it (test-utils/dawn-page.mjs).
 * Checks and tolerances: test-utils/dtype-browser-suite.ts.
 */
import { dtypeBrowserSuite } from './test-utils/dtype-browser-suite.js';

dtypeBrowserSuite(['q4f16-webgpu-dawn']);
