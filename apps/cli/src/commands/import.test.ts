import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PickleWriter, Prng, loadAdapter, materializeAdapter, torchSaveZip, writeTorchStateDict, deltaW, JsBackend } from '@tensorpeft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../main.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { code, out, err };
}

const randn = (shape: number[], g: Prng) => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => g.normal()) });

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-import-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('tensorpeft import', () => {
  it('detects an official TRAC folder (shared_tt, adapter_model.bin) and writes a native adapter with the same ΔW', async () => {
    const g = new Prng(4);
    const sd = new Map<string, { shape: number[]; data: Float32Array }>();
    const p = 'bert.encoder.layer.0.attention.self.query';
    sd.set(`base_model.model.${p}.lora_A.tt_1d.U0`, randn([1, 2, 2], g));
    sd.set(`base_model.model.${p}.lora_B.tt_1d.U0`, randn([1, 2, 3], g));
    for (const side of ['A', 'B']) {
      const r1 = side === 'A' ? 2 : 3;
      sd.set(`base_model.model.shared_random_param_U_q_lora_${side}_1`, randn([r1, 2, 2], g));
      sd.set(`base_model.model.shared_trainable_param_U_q_lora_${side}_2`, randn([2, 2, 4], g));
    }
    const src = path.join(tmp, 'official-trac');
    await mkdir(src, { recursive: true });
    const cfg = { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['query'], tensor_shape: { 8: [2, 2, 2] }, tensor_rank_A: { 8: [1, 2, 2] }, tensor_rank_B: { 8: [1, 3, 2] }, scale_shared_tt_cores: false };
    await writeFile(path.join(src, 'adapter_config.json'), JSON.stringify(cfg));
    await writeFile(path.join(src, 'adapter_model.bin'), writeTorchStateDict(sd));
    const out = path.join(tmp, 'native-trac');
    const r = await run('import', src, '--out', out);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.out);
    expect(printed.from).toBe('trac');
    expect(printed.peft_type).toBe('TRAC');
    const a = await loadAdapter(out);
    expect(a.config.variant).toBe('shared_tt');
    // ΔW = s · B Aᵀ with A = TT(U0, G2, G3) as [8, 4]: spot-check one entry against the chain written out.
    const [u] = await materializeAdapter(a, new JsBackend());
    const W = deltaW(u!);
    const tt = (side: string, i: number, k: number) => {
      const U0 = sd.get(`base_model.model.${p}.lora_${side}.tt_1d.U0`)!;
      const G2 = sd.get(`base_model.model.shared_random_param_U_q_lora_${side}_1`)!;
      const G3 = sd.get(`base_model.model.shared_trainable_param_U_q_lora_${side}_2`)!;
      const [i1, i2, i3] = [Math.floor(i / 4), Math.floor(i / 2) % 2, i % 2];
      const r1 = U0.shape[2]!;
      let acc = 0;
      for (let a1 = 0; a1 < r1; a1++) for (let a2 = 0; a2 < 2; a2++) acc += U0.data[i1 * r1 + a1]! * G2.data[(a1 * 2 + i2) * 2 + a2]! * G3.data[(a2 * 2 + i3) * 4 + k]!;
      return acc;
    };
    let ref = 0;
    for (let k = 0; k < 4; k++) ref += tt('B', 5, k) * tt('A', 3, k);
    expect(W[5 * 8 + 3]).toBeCloseTo(2 * ref, 5);
    // The official folder itself loads (core's loadAdapter imports it) and inspects the same.
    const direct = await loadAdapter(src);
    expect(deltaW((await materializeAdapter(direct, new JsBackend()))[0]!)).toEqual(W);
    const ins = await run('inspect', src);
    expect(ins.code).toBe(0);
    expect(JSON.parse(ins.out).peft_type).toBe('TRAC');
  });

  it('refuses a checkpoint whose pickle would run code, naming the global (exit 1)', async () => {
    const src = path.join(tmp, 'evil');
    await mkdir(src, { recursive: true });
    await writeFile(path.join(src, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['query'], tensor_rank_A: null }));
    await writeFile(path.join(src, 'adapter_model.bin'), torchSaveZip(PickleWriter.pickle({ reduce: { global: ['os', 'system'] }, args: ['touch /tmp/pwned'] }), []));
    const r = await run('import', src, '--out', path.join(tmp, 'never'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('UnsafePickleError');
    expect(r.err).toContain('os.system');
  });

  it('says which sources exist when the files match none', async () => {
    const src = path.join(tmp, 'nothing');
    await mkdir(src, { recursive: true });
    await writeFile(path.join(src, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8 }));
    const r = await run('import', src, '--out', path.join(tmp, 'never2'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('--from');
  });
});

describe('tensorpeft export --to official', () => {
  it('writes the official TRAC files, which import back to the same ΔW', async () => {
    const native = path.join(tmp, 'native-for-official');
    expect((await run('init', '--model', 'roberta-base', '--method', 'trac', '--nonzero', '--seed', '3', '--out', native)).code).toBe(0);
    const off = path.join(tmp, 'official-out');
    const r = await run('export', native, '--to', 'official', '--out', off);
    expect(r.err).toBe('');
    const printed = JSON.parse(r.out);
    expect(printed.files).toEqual(['adapter_config.json', 'adapter_model.bin']);
    const [a, b] = [await loadAdapter(native), await loadAdapter(off)];
    expect(b.config.peft_type).toBe('TRAC');
    const [u, v] = [(await materializeAdapter(a, new JsBackend()))[5]!, (await materializeAdapter(b, new JsBackend()))[5]!];
    const [w1, w2] = [deltaW(u), deltaW(v)];
    let diff = 0;
    for (let k = 0; k < w1.length; k++) diff = Math.max(diff, Math.abs(w1[k]! - w2[k]!));
    expect(diff).toBe(0);
  });

  it('names the method when it has no official format', async () => {
    const native = path.join(tmp, 'native-vera');
    expect((await run('init', '--model', 'roberta-base', '--method', 'vera', '--out', native)).code).toBe(0);
    const r = await run('export', native, '--to', 'official', '--out', path.join(tmp, 'never3'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('VERA');
  });
});
