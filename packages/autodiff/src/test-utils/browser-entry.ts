/**
 * Browser side of train/browser.test.ts (an esbuild bundle served from 127.0.0.1): the trainer on
 * onnxruntime-web's wasm backend in headless Chromium, fed the model bytes the server serves.
 */
import * as ort from 'onnxruntime-web';
import type { OrtLike } from '../probe.js';
import { createTrainer } from '../train/trainer.js';
import type { Example } from '../train/data.js';

(globalThis as Record<string, unknown>)['tensorpeftTrainTest'] = {
  async run(origin: string, config: Record<string, unknown>, methodConfig: Record<string, unknown>, data: Example[]): Promise<number[]> {
    ort.env.wasm.wasmPaths = `${origin}/ort/`;
    ort.env.wasm.numThreads = 1;
    const onnx = new Uint8Array(await (await fetch(`${origin}/model.onnx`)).arrayBuffer());
    const tr = await createTrainer({ onnx, config }, { method: 'trac', config: methodConfig, ort: ort as unknown as OrtLike, seed: 4 });
    const r = await tr.train(data, { epochs: 1, batch_size: 8, learning_rate: 1e-2 });
    await tr.release();
    return r.losses;
  },
};
