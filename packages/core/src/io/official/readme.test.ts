import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countParams } from '../../methods/generic.js';
import '../../methods/all.js';
import { presetShape } from '../../model/presets.js';
import { Prng } from '../../util/prng.js';
import { loadAdapter, saveAdapter } from '../load.js';
import { writeTorchStateDict } from '../torch/writer.js';
import { importOfficial } from './import.js';
import { readOfficialFiles } from './node.js';
import { json, randn, type T } from './testing/reference.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-official-readme-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** An official TRAC run on RoBERTa-base q,v with tensor_cfg.py's 768 entries (random values), as save_pretrained writes it. */
async function officialRobertaTrac(dir: string): Promise<void> {
  const g = new Prng(3, 'readme');
  const sd = new Map<string, T>();
  for (const [name, side, r1, r2] of [['q', 'A', 8, 12], ['q', 'B', 24, 36], ['v', 'A', 8, 12], ['v', 'B', 24, 36]] as const) {
    sd.set(`base_model.model.shared_random_param_U_${name}_lora_${side}_1`, randn([r1, 8, r2], g, 0.3));
    sd.set(`base_model.model.shared_trainable_param_U_${name}_lora_${side}_2`, randn([r2, 12, 16], g, 0.3));
  }
  for (let l = 0; l < 12; l++)
    for (const t of ['query', 'value']) {
      const p = `base_model.model.roberta.encoder.layer.${l}.attention.self.${t}`;
      sd.set(`${p}.lora_A.tt_1d.U0`, randn([1, 8, 8], g, 0.3));
      sd.set(`${p}.lora_B.tt_1d.U0`, randn([1, 8, 24], g, 0.3));
      for (const [side, r2] of [['A', 12], ['B', 36]] as const) {
        sd.set(`${p}.lora_${side}.tt_1d.tt_rank_scale_factors.2`, { shape: [r2], data: new Float32Array(r2).fill(1) });
        sd.set(`${p}.lora_${side}.tt_1d.tt_dim_scale_factors.2`, { shape: [12], data: new Float32Array(12).fill(1) });
      }
    }
  await mkdir(dir, { recursive: true });
  const cfg = { peft_type: 'LORA', r: 16, lora_alpha: 32, target_modules: ['query', 'value'], tensor_shape: null, tensor_rank_A: null, tensor_rank_B: null, vector_activation: 'softmax', scale_shared_tt_cores: true };
  await writeFile(path.join(dir, 'adapter_config.json'), json(cfg));
  await writeFile(path.join(dir, 'adapter_model.bin'), writeTorchStateDict(sd));
}

describe('core README: official checkpoints snippet', () => {
  it('runs as written (readOfficialFiles → importOfficial → saveAdapter) and gives the paper count', async () => {
    const run = path.join(tmp, 'runs/trac-sst2');
    await officialRobertaTrac(run);
    // --- README snippet ---
    const files = await readOfficialFiles(run);
    const { adapter, from } = importOfficial(files, { shape: presetShape('roberta-base') });
    await saveAdapter(adapter, path.join(tmp, 'adapters/trac-sst2'));
    // ---
    expect(from).toBe('trac');
    // RoBERTa-base q,v TRAC (paper): 26,304 trainable.
    expect(countParams(adapter.plan).trainable).toBe(26_304);
    const back = await loadAdapter(path.join(tmp, 'adapters/trac-sst2'));
    expect(back.config.peft_type).toBe('TRAC');
  });
});
