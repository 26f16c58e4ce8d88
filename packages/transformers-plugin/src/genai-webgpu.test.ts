/**
 * The genai layout (packed qkv_proj → GroupQueryAttention) on ORT-web's WebGPU EP in headless
 * Chromium (SwiftShader), CI-sized: fp32, LoRA fed from CPU tensors and from kernels-wgsl's GPU
 * buffers, vs the fp32 merge of the standard layout computed in Node; disabled = base bit for bit.
 * The full check (q4, all six methods, greedy decoding) takes minutes on SwiftShader and is run by
 * hand: test-utils/genai-webgpu.slow.ts (numbers in the plugin README).
 */
import { genaiWebgpuSuite } from './test-utils/genai-webgpu-suite.js';

genaiWebgpuSuite({ dtypes: ['fp32'], methods: ['LORA'], decode: false });
