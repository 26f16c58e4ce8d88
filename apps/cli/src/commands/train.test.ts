import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeModel } from '@tensorpeft/model-gen';
import { trainCommand } from './train.js';
import { verifyCommand } from './verify.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-train-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function run(cmd: typeof trainCommand, ...argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await cmd(argv, { out: (t) => (out += `${t}\n`), err: () => {} });
  return { code, out };
}

describe('tensorpeft train', () => {
  it('DistilBERT seq-cls with TRAC from JSONL text: summary, adapter folder, loss.svg, grad check; verify passes on the result', async () => {
    const model = path.join(tmp, 'distilbert');
    await writeModel({ arch: 'distilbert', size: 'tiny', seed: 2 }, model);
    const rows = ['a great film', 'terrible and boring', 'great acting, great story', 'boring, slow, terrible', 'what a great day', 'a terrible mess'];
    const data = path.join(tmp, 'train.jsonl');
    await writeFile(data, rows.map((t, i) => JSON.stringify({ text: t, label: i % 2 === 0 ? 'LABEL_1' : 'LABEL_0' })).join('\n'));
    const out = path.join(tmp, 'trac-out');
    const config = JSON.stringify({ r: 4, lora_alpha: 8, tensor_shape: [2, 4, 4], tensor_rank_a: [1, 2, 4], tensor_rank_b: [1, 2, 4] });
    const r = await run(trainCommand, '--model', model, '--method', 'trac', '--config', config, '--data', data, '--eval', data, '--epochs', '8', '--batch-size', '3', '--lr', '0.03', '--grad-check', '--out', out, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ method: 'trac', steps: 16, task: 'seq-cls', out });
    for (const k of ['loss_first', 'loss_last', 'eval_loss', 'eval_accuracy', 'seconds']) expect(typeof j[k]).toBe('number');
    expect(j.loss_last).toBeLessThan(j.loss_first);
    // The directional-derivative check's bound (see Trainer.gradCheck): a correct graph reads ≲ 1e-2.
    expect(j.grad_check.checked).toBeGreaterThan(0);
    expect(j.grad_check.max_rel_err).toBeLessThan(2e-2);
    expect(await readFile(path.join(out, 'loss.svg'), 'utf8')).toMatch(/^<svg[\s\S]*train loss[\s\S]*<\/svg>\n$/);
    const cfg = JSON.parse(await readFile(path.join(out, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'TRAC', modules_to_save: ['pre_classifier', 'classifier'] });
    const v = JSON.parse((await run(verifyCommand, '--model', model, '--adapter', out)).out);
    expect(v.ok).toBe(true);
  });

  it('GPT-2 causal LM with LoRA from CSV; malformed data is a typed error naming the line', async () => {
    const model = path.join(tmp, 'gpt2');
    await writeModel({ arch: 'gpt2', size: 'tiny', seed: 1 }, model);
    const data = path.join(tmp, 'lm.csv');
    await writeFile(data, 'text\n"the cat sat on the mat"\n"the dog sat on the log"\n"the cat sat on the log"\n');
    const out = path.join(tmp, 'lora-out');
    const r = await run(trainCommand, '--model', model, '--method', 'lora', '--config', '{"r":4,"lora_alpha":8}', '--data', data, '--epochs', '6', '--batch-size', '3', '--lr', '0.02', '--out', out, '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ method: 'lora', task: 'causal-lm', steps: 6, eval_loss: null });
    expect(j.loss_last).toBeLessThan(j.loss_first);
    // No modules_to_save on a causal LM (GPT-2's Conv1D Gemms are not heads), and the adapter reloads: verify passes.
    expect(JSON.parse(await readFile(path.join(out, 'adapter_config.json'), 'utf8')).modules_to_save ?? null).toBeNull();
    expect(JSON.parse((await run(verifyCommand, '--model', model, '--adapter', out)).out).ok).toBe(true);
    const bad = path.join(tmp, 'bad.jsonl');
    await writeFile(bad, '{"text":"ok"}\n{"txt":"no"}\n');
    await expect(run(trainCommand, '--model', model, '--method', 'lora', '--data', bad, '--out', out)).rejects.toThrow(/no "text" string.*file .*bad\.jsonl, field line 2/);
  });
});
