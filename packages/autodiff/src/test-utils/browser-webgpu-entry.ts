/**
 * Browser side of the WebGPU case of train/browser.test.ts: the trainer on onnxruntime-web's WebGPU
 * execution provider (kernels it lacks fall back to its CPU provider inside the same session).
 */
import * as ort from 'onnxruntime-web/webgpu';
import type { OrtLike } from '../probe.js';
import { createTrainer } from '../train/trainer.js';
import type { Example } from '../train/data.js';

(globalThis as Record<string, unknown>)['tensorpeftTrainWebGpu'] = {
  async run(origin: string, config: Record<string, unknown>, methodConfig: Record<string, unknown>, data: Example[]): Promise<number[]> {
    // The WebGPU EP is what is under test: no adapter means no test, not a silent CPU run.
    const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
    if (!gpu || !(await gpu.requestAdapter())) throw new Error('no WebGPU adapter (navigator.gpu) in this Chromium');
    ort.env.wasm.wasmPaths = `${origin}/ort/`;
    ort.env.wasm.numThreads = 1;
    const onnx = new Uint8Array(await (await fetch(`${origin}/model.onnx`)).arrayBuffer());
    const tr = await createTrainer({ onnx, config }, { method: 'trac', config: methodConfig, ort: ort as unknown as OrtLike, seed: 4, sessionOptions: { executionProviders: ['webgpu'], graphOptimizationLevel: 'basic' } });
    const r = await tr.train(data, { epochs: 1, batch_size: 8, learning_rate: 1e-2 });
    await tr.release();
    return r.losses;
  },
};
