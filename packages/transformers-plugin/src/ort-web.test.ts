/**
 * The plugin on ONNX Runtime Web (wasm) in Node, the runtime browsers use: transformers.js takes
 * the runtime from `globalThis[Symbol.for('onnxruntime')]` when it is set before transformers.js
 * is imported (DESIGN.md), so this file sets it first and imports the plugin dynamically.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdapter, saveAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';

const dist = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
ort.env.wasm.wasmPaths = `${pathToFileURL(dist).href}/`;
ort.env.wasm.numThreads = 1;
(globalThis as Record<symbol, unknown>)[Symbol.for('onnxruntime')] = ort;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-ortweb-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('plugin on onnxruntime-web (wasm) in Node', () => {
  it('adapter output equals the offline merge (≤ 1e-4) and disabled equals the base exactly, fp32 and q8', async () => {
    const tf = await import('@huggingface/transformers');
    // The runtime transformers.js picked is the one we set, not onnxruntime-node.
    expect((tf.env.backends.onnx as { versions?: { web?: string } }).versions?.web).toBe(ort.env.versions.web);
    const { verify } = await import('./verify.js');
    const model = path.join(tmp, 'bert');
    const m = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3 }, model);
    for (const method of ['LORA', 'TENSLORA']) {
      const dir = path.join(tmp, method);
      await saveAdapter(createAdapter({ method, shape: m.shape, nonzero: true, seed: 3 }), dir);
      const r = await verify({ model, adapter: dir, dtype: 'fp32', device: 'auto' });
      expect(r.base_max_abs_diff).toBe(0);
      expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
      const q = await verify({ model, adapter: dir, dtype: 'q8', device: 'auto' });
      expect(q.base_max_abs_diff).toBe(0);
    }
  }, 120_000);
});
