/**
 * Mixed-adapter batches on ONNX Runtime Web (wasm) in Node, the runtime browsers use: ORT-web is
 * installed as transformers.js' runtime before transformers.js is imported (see ort-web.test.ts),
 * then test-utils/mixed-entry.ts runs one mixed batch and each row alone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-web';
import { afterAll, expect, test } from 'vitest';
import { writeModel } from '@tensorpeft/model-gen';
import { checkMixed } from './test-utils/mixed-check.js';

const dist = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
ort.env.wasm.wasmPaths = `${pathToFileURL(dist).href}/`;
ort.env.wasm.numThreads = 1;
(globalThis as Record<symbol, unknown>)[Symbol.for('onnxruntime')] = ort;

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('mixed batch on onnxruntime-web wasm in Node: rows = alone (≤ 1e-5), null rows = base bit for bit', async () => {
  const tf = await import('@huggingface/transformers');
  expect((tf.env.backends.onnx as { versions?: { web?: string } }).versions?.web).toBe(ort.env.versions.web);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tp-mixed-web-'));
  dirs.push(dir);
  const m = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 4, quantized: false }, path.join(dir, 'bert'));
  const { mixedRun } = await import('./test-utils/mixed-entry.js');
  checkMixed(await mixedRun({ local: dir, shape: m.shape, vocab: m.config.vocab_size as number, device: 'auto' }), 'ort-web wasm (Node)');
}, 120_000);
