import { Prng } from '@tensorpeft/core';
import { describe, expect, it } from 'vitest';
import { createTrainer } from './trainer.js';
import { ORT, TINY_CONFIGS, tinyModel } from '../test-utils/train.js';

describe('logits-mse loss (distillation from a teacher\'s logits)', () => {
  it('classification: the training graph\'s gradients match central differences; the loss is Σ_c (l − t)² averaged over rows', async () => {
    const t = tinyModel('distilbert', 4);
    const rng = new Prng(5, 'logits-mse');
    const data = Array.from({ length: 4 }, () => ({ input_ids: Array.from({ length: 5 }, () => 3 + Math.floor(rng.uniform() * (t.vocab - 3))), logits: [2 * rng.uniform() - 1, 2 * rng.uniform() - 1] }));
    const tr = await createTrainer({ onnx: t.fp32, config: t.gm.config }, { method: 'lora', config: TINY_CONFIGS['lora']!, ort: ORT, seed: 2, loss: 'logits-mse' });
    expect(tr.graph.lossKind).toBe('logits-mse');
    // Nonzero B first (B = 0 at init leaves ∂L/∂A = 0 and half the check vacuous): one step.
    await tr.train(data, { epochs: 1, batch_size: 4, learning_rate: 1e-2 });
    // Trainer.gradCheck's bound: a correct graph reads ≲ 1e-2 (float32 loss over 2h, see its comment).
    const gc = await tr.gradCheck(data, { tensors: 12, seed: 3 });
    expect(gc.checked).toBe(12);
    expect(gc.max_rel_err).toBeLessThan(2e-2);
    // The loss against an independent evaluation from predict()'s logits: mean over rows of Σ_c (l − t)².
    const pred = await tr.predict(data);
    const want = pred.reduce((a, l, i) => a + l.reduce((s, x, c) => s + (x - data[i]!.logits[c]!) ** 2, 0), 0) / data.length;
    const ev = await tr.evaluate(data);
    expect(Math.abs(ev.loss - want)).toBeLessThan(1e-5 * Math.max(1, want)); // float32 sums of 4 × 2 terms
    await tr.release();
  });

  it('typed errors: an example without teacher logits, or logits of the wrong length', async () => {
    const t = tinyModel('llama', 4);
    const tr = await createTrainer({ onnx: t.fp32, config: t.gm.config }, { method: 'lora', config: { r: 2 }, ort: ORT, loss: 'logits-mse' });
    const V = tr.graph.classes;
    expect(V).toBe(t.vocab);
    await expect(tr.train([{ input_ids: [5, 6, 7] }])).rejects.toMatchObject({ name: 'DatasetError', message: expect.stringMatching(/no teacher logits.*example 1/) });
    await expect(tr.train([{ input_ids: [5, 6, 7], logits: new Float32Array(2 * V) }])).rejects.toThrow(/wrong length.*tokens × \d+ = \d+.*found \d+/);
    await expect(tr.train([{ input_ids: [5, 6, 7], logits: new Float32Array(3 * V).fill(Number.NaN) }])).rejects.toThrow(/not all finite/);
    await tr.release();
  });
});
