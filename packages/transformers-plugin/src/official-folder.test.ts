/**
 * `load_adapter` on a folder saved by a method's official code: core imports it on the fly (Node).
 * The folder is written by core's `exportOfficial` (the official TRAC layout: adapter_model.bin +
 * a LORA-typed config with TRAC fields) from a native adapter; loading the folder must act exactly
 * like loading the native adapter it came from, and differently from the base model.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, exportOfficial } from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { from_pretrained } from './plugin.js';

let root: string;
let bert: GeneratedModel;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-official-'));
  bert = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 5 }, path.join(root, 'bert'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

type Fn = (x: Record<string, unknown>, o?: Record<string, unknown>) => Promise<{ logits: { data: Float32Array } }>;

describe('load_adapter on an official checkpoint folder', () => {
  test('an official TRAC folder loads and gives the logits of the native adapter it was exported from', async () => {
    const native = createAdapter({ method: 'TRAC', shape: bert.shape, nonzero: true, seed: 3 });
    const { files, from } = exportOfficial(native);
    expect(from).toBe('trac');
    expect([...files.keys()].sort()).toContain('adapter_model.bin');
    const dir = path.join(root, 'official-trac');
    await mkdir(dir, { recursive: true });
    for (const [name, bytes] of files) await writeFile(path.join(dir, name), bytes);

    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32' });
    await model.load_adapter(dir, { adapter_name: 'official' });
    await model.load_adapter(native, { adapter_name: 'native' });
    const tok = await AutoTokenizer.from_pretrained('bert');
    const inp = tok(['an official checkpoint', 'loads as it is'], { padding: true }) as Record<string, unknown>;
    const run = async (adapter: string | null) => Array.from((await (model as unknown as Fn)({ ...inp }, { adapter })).logits.data);
    const [off, nat, base] = [await run('official'), await run('native'), await run(null)];
    // Same ΔW through two paths (import vs native): equal up to fp32 rounding of the re-materialized
    // factors (the official file stores the same fp32 tensors, so in practice bit-identical).
    const diff = Math.max(...off.map((v, i) => Math.abs(v - nat[i]!)));
    expect(diff).toBeLessThanOrEqual(1e-6);
    // …and the adapter acts: the nonzero init moves the logits well above that.
    const effect = Math.max(...off.map((v, i) => Math.abs(v - base[i]!)));
    expect(effect).toBeGreaterThan(1e-4);
    const info = model.list_adapters().find((a: { name: string }) => a.name === 'official');
    expect(info?.peft_type).toBe('TRAC');
  });
});
