/**
 * The same seeded training run on onnxruntime-web (wasm, the runtime browsers use; here in Node)
 * and on onnxruntime-node: the trainer only sees the `ort` module it is given.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ortWeb from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import type { OrtLike } from '../probe.js';
import { ORT, TINY_CONFIGS, tinyModel } from '../test-utils/train.js';
import { createTrainer } from './trainer.js';

const dist = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
ortWeb.env.wasm.wasmPaths = `${pathToFileURL(dist).href}/`;
ortWeb.env.wasm.numThreads = 1;

describe('training on onnxruntime-web (wasm) gives the loss curve of onnxruntime-node', () => {
  it('TRAC on tiny DistilBERT, 6 steps, same seed', async () => {
    const t = tinyModel('distilbert');
    const model = { onnx: t.fp32, config: t.gm.config };
    const data = Array.from({ length: 24 }, (_, i) => ({ input_ids: [10 + (i % 7), 20 + ((i * 3) % 11), 7, 30 + (i % 5)].slice(0, 2 + (i % 3)), label: i % 2 }));
    const curves: number[][] = [];
    for (const ort of [ORT, ortWeb as unknown as OrtLike]) {
      const tr = await createTrainer(model, { method: 'trac', config: TINY_CONFIGS['trac']!, ort, seed: 4 });
      curves.push((await tr.train(data, { epochs: 2, batch_size: 8, learning_rate: 1e-2 })).losses);
      await tr.release();
    }
    expect(curves[0]!.length).toBe(6);
    // Different float32 kernels (summation order, exp/erf approximations): per-step losses agree to
    // ~1e-6 relative at first and drift slowly as Adam amplifies tiny differences; 1e-3 relative over
    // 6 steps leaves room for that and fails on any real difference (a wrong gradient changes the
    // curve by > 1e-2 within a few steps).
    curves[0]!.forEach((l, i) => expect(Math.abs(l - curves[1]![i]!)).toBeLessThan(1e-3 * Math.abs(l)));
  }, 120_000);
});
