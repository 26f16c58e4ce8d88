import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { diffAdapters, loadAdapter } from '@tensorpeft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCommand } from './convert.js';

const FIXTURES = fileURLToPath(new URL('../../../../fixtures/peft-real/', import.meta.url));

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await convertCommand(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { code, out, err };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-convert-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('tensorpeft convert', () => {
  it('writes a LoRTA adapter from the DistilBERT LoRA at --ratio 10; rel_error is what diff measures on the written file', async () => {
    const out = path.join(tmp, 'lorta');
    const src = FIXTURES + 'distilbert-lora-emotion';
    const r = await run(src, '--to', 'lorta', '--ratio', '10', '--out', out, '--json', '--iters', '3', '--als', '2', '--seed', '1');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.params_before).toBe(147456);
    expect(j.params_after).toBeLessThanOrEqual(14745);
    expect(j.to).toBe('LORTA');
    for (const k of ['params_before', 'params_after', 'rel_error', 'svd_rel_error']) expect(typeof j[k]).toBe('number');
    const d = await diffAdapters(await loadAdapter(src), await loadAdapter(out));
    expect(Math.abs(d.rel_fro - j.rel_error)).toBeLessThan(1e-6);
  });
  it('prints a readable summary without --json', async () => {
    const r = await run(FIXTURES + 'distilbert-lora-emotion', '--to', 'loretta', '--budget', '20000', '--out', path.join(tmp, 'lt'), '--iters', '2');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/rel_error [0-9.]+ \(from the written file\); truncated-SVD LoRA with the same budget: [0-9.]+/);
  });
  it('rejects bad usage', async () => {
    await expect(run(FIXTURES + 'distilbert-lora-emotion', '--ratio', '10', '--out', tmp)).rejects.toThrow(/--to is required/);
    await expect(run(FIXTURES + 'distilbert-lora-emotion', '--to', 'trac', '--ratio', '10', '--budget', '5', '--out', tmp)).rejects.toThrow(/not both/);
    await expect(run(FIXTURES + 'gpt2-lora-tigrinya', '--to', 'lorta', '--ratio', '10', '--out', tmp)).rejects.toThrow(/transformer\.h\.0\.attn\.c_attn/);
  });
});
