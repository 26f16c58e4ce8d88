/**
 * The plugin in a real browser (headless Chromium, transformers.js' web build on ONNX Runtime Web
 * wasm), served the way apps serve models: the model under `/models/` through `env.localModelPath`
 * with no custom cache of the app's own (the plugin's cache fetches local paths relative to the
 * page), an adapter by relative URL, the same adapter by Hub id at a revision from a stand-in Hub
 * (`env.remoteHost`), and as dropped Files. All three give the same logits, which differ from the
 * base; per-call `null` and `disable_adapters()` give the base exactly; a missing adapter is a typed
 * `FetchError` with its code.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleEntry, needChromium, useBrowserTest, type ServedFile } from '@tensorpeft/browser-harness';
import { adapterToFiles, createAdapter } from '@tensorpeft/core';
import { makeModel } from '@tensorpeft/model-gen';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const made = makeModel({ arch: 'bert', size: 'tiny', numLabels: 3, quantized: false });

const browser = useBrowserTest({
  site: async () => {
    const m = await made;
    const adapter = adapterToFiles(createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 5 }));
    const config: ServedFile = ['application/json', new TextEncoder().encode(adapter.configJson)];
    const weights: ServedFile = ['application/octet-stream', adapter.safetensors];
    const files: Record<string, ServedFile> = {
      '/': ['text/html', '<!doctype html><meta charset="utf-8"><title>tensorpeft browser io</title><script type="module" src="/assets/entry.js"></script>'],
      '/assets/entry.js': ['text/javascript', await bundleEntry(path.join(here, 'test-utils/browser-io-entry.ts'), root)],
      '/adapters/emotion/adapter_config.json': config,
      '/adapters/emotion/adapter_model.safetensors': weights,
      '/hub/alice/bert-lora/resolve/v2/adapter_config.json': config,
      '/hub/alice/bert-lora/resolve/v2/adapter_model.safetensors': weights,
    };
    for (const [rel, bytes] of m.files) files[`/models/bert/${rel}`] = [rel.endsWith('.json') ? 'application/json' : 'application/octet-stream', bytes];
    const tfDir = path.dirname(createRequire(import.meta.url).resolve('@huggingface/transformers'));
    const ortDist = path.dirname(createRequire(path.join(tfDir, 'x.js')).resolve('onnxruntime-web'));
    for (const f of readdirSync(ortDist)) {
      if (/^ort-wasm-simd-threaded\.(asyncify|jsep)\.(wasm|mjs)$/.test(f)) files[`/ort/${f}`] = [f.endsWith('.wasm') ? 'application/wasm' : 'text/javascript', readFileSync(path.join(ortDist, f))];
    }
    return { lookup: (p) => files[p], headers: { 'cache-control': 'no-store' } };
  },
  pageGlobal: 'tensorpeftBrowserIo',
  timeout: 120_000,
});

describe('plugin in a browser app (headless Chromium)', () => {
  it('local model path, relative adapter URL, Hub id, Files; per-call and disable give the base', async () => {
    needChromium();
    const texts = ['i feel happy today', 'a b c'];
    const r = (await browser.page.evaluate(([origin, t]: readonly [string, string[]]) => (globalThis as any).tensorpeftBrowserIo.run(origin, t), [browser.origin, texts] as const)) as {
      customCacheBefore: boolean;
      base: number[];
      rel: number[];
      hub: number[];
      files: number[];
      perCallBase: number[];
      disabled: number[];
      active: string[];
      missing: { name: string; code: string; message: string };
    };
    expect(r.customCacheBefore).toBe(false);
    expect(r.base.length).toBe(3 * texts.length);
    expect(Math.max(...r.rel.map((v, i) => Math.abs(v - r.base[i]!))), 'the adapter changes the output').toBeGreaterThan(1e-4);
    // The same adapter bytes from three sources: the same feeds, so the same logits exactly.
    expect(r.hub).toEqual(r.rel);
    expect(r.files).toEqual(r.rel);
    expect(r.perCallBase).toEqual(r.base);
    expect(r.disabled).toEqual(r.base);
    expect(r.active).toEqual(['rel']);
    expect(r.missing).toMatchObject({ name: 'FetchError', code: 'FETCH_FAILED' });
    expect(r.missing.message).toContain(`${browser.origin}/adapters/missing/adapter_config.json`);
    expect(browser.pageErrors).toEqual([]);
  }, 240_000);
});
