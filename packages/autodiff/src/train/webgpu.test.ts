/**
 * The trainer in headless Chromium on onnxruntime-web's WebGPU EP (SwiftShader without a GPU): the
 * same seeded run as on onnxruntime-node gives the same loss curve within float32 tolerance.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleEntry, needChromium, useBrowserTest, type ServedFile } from '@tensorpeft/browser-harness';
import { describe, expect, it } from 'vitest';
import { ORT, TINY_CONFIGS, tinyModel } from '../test-utils/train.js';
import { createTrainer } from './trainer.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../../..');
const t = tinyModel('distilbert');
const data = Array.from({ length: 24 }, (_, i) => ({ input_ids: [10 + (i % 7), 20 + ((i * 3) % 11), 7, 30 + (i % 5)].slice(0, 2 + (i % 3)), label: i % 2 }));

const browser = useBrowserTest({
  site: async () => {
    const files: Record<string, ServedFile> = {
      '/': ['text/html', '<!doctype html><meta charset="utf-8"><title>tensorpeft train webgpu</title><script type="module" src="/assets/entry.js"></script>'],
      '/assets/entry.js': ['text/javascript', await bundleEntry(path.join(here, '../test-utils/browser-webgpu-entry.ts'), root)],
      '/model.onnx': ['application/octet-stream', t.fp32],
    };
    const ortDist = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
    for (const f of readdirSync(ortDist)) {
      if (/^ort-wasm.*\.(wasm|mjs)$/.test(f)) files[`/ort/${f}`] = [f.endsWith('.wasm') ? 'application/wasm' : 'text/javascript', readFileSync(path.join(ortDist, f))];
    }
    return { lookup: (p) => files[p], headers: { 'cache-control': 'no-store' } };
  },
  launch: { extraArgs: ['--enable-unsafe-webgpu'] },
  pageGlobal: 'tensorpeftTrainWebGpu',
  timeout: 120_000,
});

describe('training in headless Chromium on the WebGPU EP', () => {
  it('TRAC on tiny DistilBERT: the loss curve of onnxruntime-node, same seed', async () => {
    needChromium();
    const web = (await browser.page.evaluate(
      ([origin, config, mc, d]: readonly [string, unknown, unknown, unknown]) => (globalThis as any).tensorpeftTrainWebGpu.run(origin, config, mc, d),
      [browser.origin, t.gm.config, TINY_CONFIGS['trac'], data] as const,
    )) as number[];
    const tr = await createTrainer({ onnx: t.fp32, config: t.gm.config }, { method: 'trac', config: TINY_CONFIGS['trac']!, ort: ORT, seed: 4 });
    const node = (await tr.train(data, { epochs: 1, batch_size: 8, learning_rate: 1e-2 })).losses;
    await tr.release();
    expect(web.length).toBe(3);
    expect(browser.pageErrors).toEqual([]);
    // WebGPU kernels (SwiftShader) sum in other orders than the CPU ones; as on wasm, 1e-3 relative.
    node.forEach((l, i) => expect(Math.abs(l - web[i]!)).toBeLessThan(1e-3 * Math.abs(l)));
  }, 180_000);
});
