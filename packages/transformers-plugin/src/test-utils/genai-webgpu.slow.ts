/**
 * Slow browser check (not in CI: minutes on SwiftShader, which compiles a WebGPU pipeline for every
 * new shape): the genai layout on ORT-web's WebGPU EP, fp32 and q4, all six methods CPU-fed and
 * GPU-fed, greedy decoding — what is checked and why: genai-webgpu-suite.ts. Run:
 *   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json npx vitest run -c packages/transformers-plugin/vitest.slow.config.ts packages/transformers-plugin/src/test-utils/genai-webgpu.slow.ts
 */
import { listMethods } from '@tensorpeft/core';
import { genaiWebgpuSuite } from './genai-webgpu-suite.js';

genaiWebgpuSuite({ dtypes: ['fp32', 'q4'], methods: listMethods().map((m) => m.peftType), decode: true });
