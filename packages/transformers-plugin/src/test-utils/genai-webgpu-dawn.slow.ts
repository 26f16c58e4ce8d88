/**
 * Slow check (not in CI: minutes on lavapipe, which compiles a WebGPU pipeline for every new shape):
 * the genai layout on ORT-web's WebGPU EP with `shader-f16` (page code on Dawn over Mesa's lavapipe
 * in a Node child), fp16 and q4f16, all six methods CPU-fed and GPU-fed (binary16), greedy
 * decoding — what is checked and why: genai-webgpu-suite.ts. Run:
 *   npx vitest run -c packages/transformers-plugin/vitest.slow.config.ts packages/transformers-plugin/src/test-utils/genai-webgpu-dawn.slow.ts
 */
import { listMethods } from '@tensorpeft/core';
import { genaiWebgpuSuite } from './genai-webgpu-suite.js';

genaiWebgpuSuite({ runner: 'dawn', dtypes: ['fp16', 'q4f16'], methods: listMethods().map((m) => m.peftType), decode: true });
