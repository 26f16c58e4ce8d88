import { Prng } from '@tensorpeft/core';
import { describe, expect, it } from 'vitest';
import type { Example } from './data.js';
import { createTrainer } from './trainer.js';
import { ORT, TINY_CONFIGS, tinyModel } from '../test-utils/train.js';

/** A learnable rule on random token sequences: label 1 iff token 7 occurs. */
function dataset(n: number, seed: number, vocab: number): Example[] {
  const r = new Prng(seed, 'trainer-data');
  return Array.from({ length: n }, (_, i) => {
    const ids = Array.from({ length: 6 }, () => 10 + Math.floor(r.uniform() * (vocab - 10)));
    if (i % 2 === 0) ids[1 + Math.floor(r.uniform() * 5)] = 7;
    return { input_ids: ids, label: ids.includes(7) ? 1 : 0 };
  });
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('Trainer (onnxruntime-node, tiny DistilBERT classifier)', () => {
  const t = tinyModel('distilbert');
  const model = { onnx: t.fp32, config: t.gm.config };
  const data = dataset(32, 1, t.vocab);

  for (const method of Object.keys(TINY_CONFIGS)) {
    it(`${method}: the training loss falls (adapter + head), frozen tensors stay fixed`, async () => {
      const tr = await createTrainer(model, { method, config: TINY_CONFIGS[method]!, ort: ORT, seed: 3 });
      const frozen = tr.adapter.plan.params.filter((p) => p.kind === 'frozen').map((p) => [p.key, Float32Array.from(tr.adapter.params.get(p.key)!.data)] as const);
      const r = await tr.train(data, { epochs: 6, batch_size: 8, learning_rate: 1e-2, warmup_steps: 2 });
      expect(r.steps).toBe(24);
      // Mean of the last 4 steps below 80 % of the first 4 (measured: well below on every method).
      expect(mean(r.losses.slice(-4))).toBeLessThan(0.8 * mean(r.losses.slice(0, 4)));
      for (const [k, v] of frozen) expect(tr.adapter.params.get(k)!.data).toEqual(v);
      expect(tr.adapter.config.modules_to_save).toEqual(['pre_classifier', 'classifier']);
      await tr.release();
    });
  }

  it('q8 model (straight-through backward): TRAC loss falls', async () => {
    const tr = await createTrainer({ onnx: t.q8, config: t.gm.config }, { method: 'trac', config: TINY_CONFIGS['trac']!, ort: ORT, seed: 3 });
    expect(tr.graph.straightThrough.length).toBe(12);
    const r = await tr.train(data, { epochs: 6, batch_size: 8, learning_rate: 1e-2, warmup_steps: 2 });
    expect(mean(r.losses.slice(-4))).toBeLessThan(0.8 * mean(r.losses.slice(0, 4)));
    await tr.release();
  });

  it('gradient accumulation of 2 × 4 equals one batch of 8 (same first update)', async () => {
    const a = await createTrainer(model, { method: 'lora', config: TINY_CONFIGS['lora']!, ort: ORT, seed: 5 });
    const b = await createTrainer(model, { method: 'lora', config: TINY_CONFIGS['lora']!, ort: ORT, seed: 5 });
    const eight = data.slice(0, 8);
    await a.train(eight, { batch_size: 8, learning_rate: 1e-2, max_steps: 1 });
    await b.train(eight, { batch_size: 4, gradient_accumulation_steps: 2, learning_rate: 1e-2, max_steps: 1 });
    for (const k of a.trainableKeys) {
      const x = a.adapter.params.get(k)?.data ?? a.adapter.extras.get(k)!.data;
      const y = b.adapter.params.get(k)?.data ?? b.adapter.extras.get(k)!.data;
      // float32 sums in a different order: equal to ~1e-6 (Adam's first step is ±lr per element).
      for (let i = 0; i < x.length; i++) expect(Math.abs(x[i]! - y[i]!)).toBeLessThan(1e-5);
    }
    await a.release();
    await b.release();
  });

  it('eval, early stop, progress callback and cancel', async () => {
    const tr = await createTrainer(model, { method: 'lora', config: TINY_CONFIGS['lora']!, ort: ORT, seed: 2 });
    const seen: string[] = [];
    const r = await tr.train(data.slice(0, 16), {
      epochs: 50,
      batch_size: 8,
      learning_rate: 0.5,
      eval_dataset: data.slice(16),
      early_stopping_patience: 1,
      progress_callback: (p) => seen.push(p.status),
    });
    expect(r.stopped).toBe('early_stop');
    expect(r.evals.length).toBeGreaterThanOrEqual(2);
    expect(seen).toContain('step');
    expect(seen).toContain('eval');
    expect(seen[seen.length - 1]).toBe('done');
    let n = 0;
    const c = await tr.train(data, { epochs: 5, batch_size: 4, progress_callback: (p) => p.status === 'step' && ++n === 3 && tr.cancel() });
    expect(c.stopped).toBe('cancelled');
    expect(c.steps).toBe(3);
    await tr.release();
  });

  it('rows longer than the model\'s position table are truncated to it', async () => {
    const tr = await createTrainer(model, { method: 'lora', config: TINY_CONFIGS['lora']!, ort: ORT });
    const positions = (t.gm.config as { max_position_embeddings: number }).max_position_embeddings;
    const long = [{ input_ids: Array.from({ length: positions + 20 }, (_, i) => 10 + (i % 50)), label: 1 }];
    const r = await tr.train(long, { batch_size: 1, max_length: 512 });
    expect(r.steps).toBe(1);
    expect((await tr.predict(long)).length).toBe(1);
    await tr.release();
  });

  it('typed dataset errors: empty, unknown label, token outside the vocabulary', async () => {
    const tr = await createTrainer(model, { method: 'lora', config: TINY_CONFIGS['lora']!, ort: ORT });
    await expect(tr.train([])).rejects.toMatchObject({ name: 'DatasetError', code: 'DATASET' });
    await expect(tr.train([{ input_ids: [5, 6], label: 'LABEL_9' }])).rejects.toThrow(/label is not in the model's label set.*example 1/);
    await expect(tr.train([{ input_ids: [5, 6], label: 2 }])).rejects.toThrow(/label outside/);
    await expect(tr.train([{ input_ids: [5, t.vocab], label: 0 }])).rejects.toThrow(/outside the vocabulary/);
    await tr.release();
  });
});

describe('Trainer, causal LM (next token, padding ignored)', () => {
  const cases: Array<['gpt2' | 'llama', string]> = [['gpt2', 'lora'], ...['trac', 'lora', 'vera', 'loretta', 'lorta', 'tenslora'].map((m) => ['llama', m] as ['llama', string])];
  for (const [arch, method] of cases) {
    it(`${arch}: ${method} (default config) loss falls on a repeated pattern`, async () => {
      const t = tinyModel(arch);
      const tr = await createTrainer({ onnx: t.fp32, config: t.gm.config }, { method, ...(method === 'lora' ? { config: { r: 4, lora_alpha: 8 } } : {}), ort: ORT, seed: 1 });
      expect(tr.task).toBe('causal-lm');
      const data: Example[] = Array.from({ length: 8 }, (_, i) => ({ input_ids: [11, 12, 13, 14, 15, 16, 17, 18].slice(0, 4 + (i % 5)) }));
      // VeRA trains only per-module scaling vectors over frozen random projections: it needs a larger rate (as in the VeRA paper).
      const r = await tr.train(data, { epochs: 10, batch_size: 4, learning_rate: method === 'vera' ? 1e-1 : 2e-2 });
      expect(mean(r.losses.slice(-3))).toBeLessThan(0.8 * mean(r.losses.slice(0, 3)));
      await tr.release();
    });
  }
});
