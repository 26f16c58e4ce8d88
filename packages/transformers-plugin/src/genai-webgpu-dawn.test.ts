/**
 * The genai layout (packed qkv_proj → GroupQueryAttention) in fp16 on ORT-web's WebGPU EP with
 * `shader-f16`, CI-sized: the page code runs in a Node child on Dawn over Mesa's lavapipe (headless
 * Chromium without a GPU offers only SwiftShader, which lacks the feature). LoRA fed from CPU tensors
 * and from kernels-wgsl's binary16 GPU buffers (native f16 kernel) vs the fp32 merge of the standard
 * layout computed in Node; disabled = base bit for bit. fp16 rather than q4f16 here: on the genai
 * q4f16 file the disabled plugin model is not yet base bit for bit on this EP (plugin README), which
 * the by-hand check shows: test-utils/genai-webgpu-dawn.slow.ts (fp16 and q4f16, all six methods,
 * greedy decoding; minutes on lavapipe). Checks and tolerances: test-utils/genai-webgpu-suite.ts.
 */
import { genaiWebgpuSuite } from './test-utils/genai-webgpu-suite.js';

genaiWebgpuSuite({ runner: 'dawn', dtypes: ['fp16'], methods: ['LORA'], decode: false });
