import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { expect, it } from 'vitest';
import { createTrainer, type OrtLike } from '@tensorpeft/autodiff';
import { saveAdapter } from '@tensorpeft/core';
import { makeModel } from '@tensorpeft/model-gen';

it('the README example runs and writes a LoRA adapter folder', async () => {
  const outDir = await mkdtemp(path.join(tmpdir(), 'tp-readme-'));
  try {
    const gm = makeModel({ arch: 'distilbert', size: 'tiny' });
    const t = await createTrainer({ onnx: gm.files.get('onnx/model.onnx')!, config: gm.config }, { method: 'lora', config: { r: 4 }, ort: ort as unknown as OrtLike });
    const data = [{ input_ids: [5, 7, 9], label: 1 }, { input_ids: [6, 8], label: 0 }];
    const steps: number[] = [];
    const r = await t.train(data, { epochs: 2, batch_size: 2, learning_rate: 1e-2, progress_callback: (p) => p.status === 'step' && steps.push(p.step) });
    await saveAdapter(t.adapter, outDir);
    expect(r.steps).toBe(2);
    expect(steps).toEqual([1, 2]);
    expect(JSON.parse(await readFile(path.join(outDir, 'adapter_config.json'), 'utf8')).peft_type).toBe('LORA');
    await t.release();
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
});
