/**
 * The generated folders load in transformers.js 4.3 (onnxruntime-node, CPU) through from_pretrained
 * and pipeline(), fp32 and q8, and compute what an independent JS forward pass computes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AutoModel,
  AutoModelForCausalLM,
  AutoModelForImageClassification,
  AutoModelForSequenceClassification,
  AutoProcessor,
  AutoTokenizer,
  env,
  pipeline,
  RawImage,
  Tensor,
} from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARCH_TASKS, ARCHS, TASK_ROOT, writeModel, type Arch, type GeneratedModel, type Task } from './index.js';
import { decoderForward, encoderForward, encoderHead, maxAbsDiff, vitForward, type RefDims } from './test-utils/reference.js';

const TEXTS = ['Hello world! I love this movie.', 'The quick brown fox'];
let dir = '';
const models = new Map<string, GeneratedModel>();
const id = (arch: Arch, task: Task): string => `${arch}-${task}`;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'tensorpeft-model-gen-'));
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${dir}/`;
  for (const arch of ARCHS) for (const task of ARCH_TASKS[arch]) models.set(id(arch, task), await writeModel({ arch, task, numLabels: 3, seed: 11 }, path.join(dir, id(arch, task))));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function refDims(m: GeneratedModel): RefDims {
  const c = m.config as Record<string, number>;
  return {
    hidden: m.shape.hiddenSize,
    layers: m.shape.numLayers,
    heads: m.shape.numHeads,
    kvHeads: m.shape.numKvHeads,
    inter: m.shape.intermediateSize,
    eps: c['layer_norm_eps'] ?? c['layer_norm_epsilon'] ?? c['rms_norm_eps'] ?? 1e-12,
    ropeTheta: c['rope_theta'],
    patch: c['patch_size'],
    channels: c['num_channels'],
    image: c['image_size'],
  };
}

const rowsOf = (t: Tensor, b: number): Float32Array => {
  const per = t.dims.slice(1).reduce((x, y) => x * y, 1);
  return (t.data as Float32Array).subarray(b * per, (b + 1) * per);
};
const list = (t: Tensor, b: number): number[] => Array.from(rowsOf(t, b) as unknown as BigInt64Array, Number);

/** transformers.js' position ids: cumsum(mask) − 1, 1 where masked. */
const positionsOf = (mask: number[]): number[] => {
  let c = -1;
  return mask.map((m) => (m ? ++c : 1));
};

async function loadText(arch: Arch, task: Task, dtype: 'fp32' | 'q8') {
  const name = id(arch, task);
  const Cls = task === 'sequence-classification' ? AutoModelForSequenceClassification : task === 'causal-lm' ? AutoModelForCausalLM : AutoModel;
  const tokenizer = await AutoTokenizer.from_pretrained(name);
  const model = await Cls.from_pretrained(name, { dtype });
  return { tokenizer, model };
}

async function runText(arch: Arch, task: Task, dtype: 'fp32' | 'q8'): Promise<{ out: Tensor; inputs: Record<string, Tensor> }> {
  const { tokenizer, model } = await loadText(arch, task, dtype);
  const inputs = tokenizer(TEXTS, { padding: true }) as unknown as Record<string, Tensor>;
  const res = (await model(inputs)) as Record<string, Tensor>;
  await model.dispose();
  return { out: res[task === 'feature-extraction' ? 'last_hidden_state' : 'logits']!, inputs };
}

const textArchs = ARCHS.filter((a) => a !== 'vit');

describe('transformers.js 4.3 loads the generated models', () => {
  for (const arch of textArchs) {
    for (const task of ARCH_TASKS[arch]) {
      it(`${arch} ${task}: fp32 matches an independent JS forward pass (padded batch), q8 stays close`, async () => {
        const m = models.get(id(arch, task))!;
        const { out, inputs } = await runText(arch, task, 'fp32');
        const d = refDims(m);
        const root = task === 'feature-extraction' ? '' : TASK_ROOT[arch];
        const numLabels = 3;
        let worst = 0;
        for (let b = 0; b < TEXTS.length; b++) {
          const ids = list(inputs['input_ids']!, b);
          const mask = list(inputs['attention_mask']!, b);
          let ref: ArrayLike<number>;
          if (arch === 'gpt2' || arch === 'llama') {
            const r = decoderForward(m.weights, arch, d, root, { ids, mask, positions: positionsOf(mask) }, task === 'causal-lm' ? (m.config['vocab_size'] as number) : undefined);
            ref = r.logits ?? r.hidden;
          } else {
            const tokenTypes = inputs['token_type_ids'] ? list(inputs['token_type_ids'], b) : undefined;
            const r = encoderForward(m.weights, arch, d, root, { ids, mask, ...(tokenTypes ? { tokenTypes } : {}) });
            ref = task === 'sequence-classification' ? encoderHead(m.weights, arch, d.hidden, numLabels, r.first) : r.hidden;
          }
          const got = rowsOf(out, b);
          // Outputs at padded positions are compared too: the graph and the reference mask alike.
          worst = Math.max(worst, maxAbsDiff(got, ref));
        }
        expect(list(inputs['attention_mask']!, 1)).toContain(0); // the batch really is padded
        expect(worst).toBeLessThanOrEqual(1e-4);

        const q8 = await runText(arch, task, 'q8');
        expect(q8.out.dims).toEqual(out.dims);
        const scale = Math.max(...Array.from(out.data as Float32Array, Math.abs));
        const diff = maxAbsDiff(q8.out.data as Float32Array, out.data as Float32Array);
        expect(diff).toBeGreaterThan(0); // it really is another (quantized) graph
        expect(diff / scale).toBeLessThan(0.05);
      });
    }
  }

  it('vit: the image processor and both models match the JS forward pass; q8 close', async () => {
    const img = new RawImage(new Uint8ClampedArray(40 * 40 * 3).map((_, i) => (i * 37) % 256), 40, 40, 3);
    const processor = await AutoProcessor.from_pretrained(id('vit', 'feature-extraction'));
    const { pixel_values } = (await processor(img)) as { pixel_values: Tensor };
    expect(pixel_values.dims).toEqual([1, 3, 32, 32]);
    for (const task of ARCH_TASKS.vit) {
      const m = models.get(id('vit', task))!;
      const Cls = task === 'feature-extraction' ? AutoModel : AutoModelForImageClassification;
      const outs: Record<string, Tensor> = {};
      for (const dtype of ['fp32', 'q8'] as const) {
        const model = await Cls.from_pretrained(id('vit', task), { dtype });
        const res = (await model({ pixel_values })) as Record<string, Tensor>;
        outs[dtype] = res[task === 'feature-extraction' ? 'last_hidden_state' : 'logits']!;
        await model.dispose();
      }
      const r = vitForward(m.weights, refDims(m), task === 'feature-extraction' ? '' : 'vit', pixel_values.data as Float32Array);
      const ref = task === 'feature-extraction' ? r.hidden : encoderHead(m.weights, 'vit', m.shape.hiddenSize, 3, r.first);
      expect(maxAbsDiff(outs['fp32']!.data as Float32Array, ref)).toBeLessThanOrEqual(1e-4);
      const scale = Math.max(...Array.from(outs['fp32']!.data as Float32Array, Math.abs));
      expect(maxAbsDiff(outs['q8']!.data as Float32Array, outs['fp32']!.data as Float32Array) / scale).toBeLessThan(0.05);
    }
  });

  it('runs in pipeline(): feature-extraction, text-classification, image-classification (labels from id2label)', async () => {
    const fe = await pipeline('feature-extraction', id('distilbert', 'feature-extraction'), { dtype: 'q8' });
    const emb = (await fe('hello world', { pooling: 'mean', normalize: true })) as Tensor;
    expect(emb.dims).toEqual([1, 32]);
    await fe.dispose();
    const tc = await pipeline('text-classification', id('bert', 'sequence-classification'), { dtype: 'fp32' });
    const res = (await tc('I love this movie', { top_k: 3 })) as Array<{ label: string; score: number }>;
    expect(res.map((r) => r.label).sort()).toEqual(['LABEL_0', 'LABEL_1', 'LABEL_2']);
    expect(res.reduce((s, r) => s + r.score, 0)).toBeCloseTo(1, 5);
    await tc.dispose();
    const ic = await pipeline('image-classification', id('vit', 'sequence-classification'));
    const img = new RawImage(new Uint8ClampedArray(32 * 32 * 3).fill(200), 32, 32, 3);
    const labels = (await ic(img)) as Array<{ label: string }>;
    expect(labels[0]!.label).toMatch(/^LABEL_[012]$/);
    await ic.dispose();
  });

  for (const arch of ['gpt2', 'llama'] as const) {
    it(`${arch}: generate() with the KV cache gives the same greedy tokens as full recomputation`, async () => {
      const name = id(arch, 'causal-lm');
      const m = models.get(name)!;
      const { tokenizer, model } = await loadText(arch, 'causal-lm', 'fp32');
      const enc = tokenizer('Hello world') as unknown as Record<string, Tensor>;
      const prompt = list(enc['input_ids']!, 0);
      const steps = 6;
      const seq = (await model.generate({ ...enc, max_new_tokens: steps, min_new_tokens: steps, do_sample: false })) as Tensor;
      const cached = list(seq, 0);
      // Greedy decoding by the reference forward pass over the whole sequence at every step.
      const ids = [...prompt];
      const V = m.config['vocab_size'] as number;
      for (let s = 0; s < steps; s++) {
        const mask = ids.map(() => 1);
        const { logits } = decoderForward(m.weights, arch, refDims(m), TASK_ROOT[arch], { ids, mask, positions: positionsOf(mask) }, V);
        const last = logits!.subarray((ids.length - 1) * V, ids.length * V);
        ids.push(last.indexOf(Math.max(...last)));
      }
      expect(cached).toEqual(ids);
      await model.dispose();

      const gen = await pipeline('text-generation', name, { dtype: 'q8' });
      const out = (await gen('Hello world', { max_new_tokens: 4, do_sample: false })) as Array<{ generated_text: string }>;
      expect(out[0]!.generated_text.startsWith('Hello world')).toBe(true);
      await gen.dispose();
    });
  }
});
