import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { loadAdapter, saveAdapter } from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { from_pretrained } from '@tensorpeft/transformers-plugin';
import { readFile } from 'node:fs/promises';
import { createTrainer } from './trainer.js';
import { ORT, TINY_CONFIGS } from '../test-utils/train.js';

let root: string;
let gen: GeneratedModel;
const ID = 'distilbert-train';

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-train-'));
  gen = await writeModel({ arch: 'distilbert', size: 'tiny', seed: 4 }, path.join(root, ID));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('a trained adapter is a PEFT adapter folder the plugin hot-swaps', () => {
  it('TRAC + heads: saved, reloaded by core, loaded into the running transformers.js model; logits = the trainer\'s', async () => {
    const tok = await AutoTokenizer.from_pretrained(ID);
    const ids = (text: string): number[] => Array.from((tok(text) as { input_ids: { data: BigInt64Array } }).input_ids.data, Number);
    const texts = ['good movie, great cast', 'dull and slow', 'great fun', 'slow, dull, bad'];
    const data = texts.flatMap((t, i) => [{ text: t, label: i % 2 === 0 ? 1 : 0 }]);
    const model = { onnx: await readFile(path.join(root, ID, 'onnx/model.onnx')), config: gen.config };
    const tr = await createTrainer(model, { method: 'trac', config: TINY_CONFIGS['trac']!, ort: ORT, seed: 1, tokenize: ids });
    await tr.train(data, { epochs: 5, batch_size: 2, learning_rate: 5e-2 });
    const dir = path.join(root, 'trained');
    await saveAdapter(tr.adapter, dir);
    const back = await loadAdapter(dir);
    expect(back.config.peft_type).toBe('TRAC');
    expect(back.config.modules_to_save).toEqual(['pre_classifier', 'classifier']);
    const want = await tr.predict(texts.map((t) => ({ text: t })));
    const hf = await from_pretrained(env, AutoModelForSequenceClassification, ID, { dtype: 'fp32' });
    const base = Float32Array.from(((await hf({ ...(tok(texts[0]!) as object) })) as { logits: { data: Float32Array } }).logits.data);
    await hf.load_adapter('trained', dir);
    hf.set_adapter('trained');
    for (let i = 0; i < texts.length; i++) {
      const got = ((await hf({ ...(tok(texts[i]!) as object) })) as { logits: { data: Float32Array } }).logits.data;
      // Same graph and weights up to onnxruntime's fusions (training sessions use basic
      // optimizations, the plugin's session the default): float32 agreement ~1e-6, allow 1e-4.
      for (let k = 0; k < got.length; k++) expect(Math.abs(got[k]! - want[i]![k]!)).toBeLessThan(1e-4);
    }
    // The adapter changed the model's output (training did something).
    const first = ((await hf({ ...(tok(texts[0]!) as object) })) as { logits: { data: Float32Array } }).logits.data;
    expect(Math.max(...Array.from(first, (v, k) => Math.abs(v - base[k]!)))).toBeGreaterThan(1e-2);
    await tr.release();
  });
});
