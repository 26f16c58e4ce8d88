/**
 * Mixed-adapter batches in headless Chromium (transformers.js' web build): the same tiny BERT
 * served from 127.0.0.1 on ONNX Runtime Web's wasm EP and on its WebGPU EP (SwiftShader without a
 * GPU; `--enable-unsafe-webgpu`). test-utils/mixed-entry.ts runs one mixed batch and each row alone.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleEntry, needChromium, useBrowserTest, type ServedFile } from '@tensorpeft/browser-harness';
import { makeModel } from '@tensorpeft/model-gen';
import { describe, expect, it } from 'vitest';
import type { MixedRunResult } from './test-utils/mixed-entry.js';
import { checkMixed } from './test-utils/mixed-check.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const made = makeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 4, quantized: false });

const browser = useBrowserTest({
  site: async () => {
    const m = await made;
    const files: Record<string, ServedFile> = {
      '/': ['text/html', '<!doctype html><meta charset="utf-8"><title>tensorpeft mixed batches</title><script type="module" src="/assets/entry.js"></script>'],
      '/assets/entry.js': ['text/javascript', await bundleEntry(path.join(here, 'test-utils/mixed-entry.ts'), root)],
    };
    for (const [rel, bytes] of m.files) files[`/models/bert/${rel}`] = [rel.endsWith('.json') ? 'application/json' : 'application/octet-stream', bytes];
    const tfDir = path.dirname(createRequire(import.meta.url).resolve('@huggingface/transformers'));
    const ortDist = path.dirname(createRequire(path.join(tfDir, 'x.js')).resolve('onnxruntime-web'));
    for (const f of readdirSync(ortDist)) {
      if (/^ort-wasm-simd-threaded\.(asyncify|jsep)\.(wasm|mjs)$/.test(f)) files[`/ort/${f}`] = [f.endsWith('.wasm') ? 'application/wasm' : 'text/javascript', readFileSync(path.join(ortDist, f))];
    }
    return { lookup: (p) => files[p], headers: { 'cache-control': 'no-store' } };
  },
  launch: { extraArgs: ['--enable-unsafe-webgpu'] },
  pageGlobal: 'tensorpeftMixed',
  timeout: 120_000,
});

describe('mixed-adapter batches in headless Chromium', () => {
  it('wasm EP and WebGPU EP: rows = alone (≤ 1e-5), null rows = base bit for bit, wrong row count typed', async () => {
    needChromium();
    const m = await made;
    for (const device of ['wasm', 'webgpu'] as const) {
      const r = (await browser.page.evaluate(
        (o: Record<string, unknown>) => (globalThis as any).tensorpeftMixed.run(o),
        { origin: browser.origin, shape: JSON.parse(JSON.stringify(m.shape)), vocab: m.config.vocab_size as number, device },
      )) as MixedRunResult;
      checkMixed(r, `Chromium ${device}`);
    }
    expect(browser.pageErrors).toEqual([]);
  }, 240_000);
});
