import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from './main.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/peft-real/', import.meta.url));
const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { code, out, err };
}

async function runJson(...argv: string[]): Promise<any> {
  const r = await run(...argv);
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out);
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('tensorpeft params reproduces the published counts', () => {
  const tracPaper = { tensor_shape: [8, 8, 12], tensor_rank_a: [1, 8, 12], tensor_rank_b: [1, 24, 36], r: 16, target_modules: ['query', 'value'] };
  it('TRAC RoBERTa-base q,v → 26,304 trainable (paper Table 1)', async () => {
    const j = await runJson('params', '--model', 'roberta-base', '--method', 'trac', '--config', JSON.stringify(tracPaper));
    expect(j.trainable).toBe(26304);
    expect(j.modules).toBe(24);
    expect(j.stored).toBe(j.trainable + j.frozen);
  });
  it('TRAC all_trainable (TT-LoRA) → 411,648', async () => {
    const j = await runJson('params', '--model', 'roberta-base', '--method', 'trac', '--config', JSON.stringify({ ...tracPaper, variant: 'all_trainable' }));
    expect(j.trainable).toBe(411648);
  });
  it('LoRA r=8 → 294,912', async () => {
    const j = await runJson('params', '--model', 'roberta-base', '--method', 'lora', '--config', '{"r":8,"target_modules":["query","value"]}');
    expect(j.trainable).toBe(294912);
    expect(j.frozen).toBe(0);
  });
  it('VeRA r=1024 → 43,008 trainable', async () => {
    const j = await runJson('params', '--model', 'roberta-base', '--method', 'vera', '--config', '{"r":1024,"target_modules":["query","value"]}');
    expect(j.trainable).toBe(43008);
    expect(j.frozen).toBe(1024 * 768 * 2);
  });
  it('LoRTA llama2-7b q_proj,v_proj r=4 → 17,160', async () => {
    const j = await runJson('params', '--model', 'llama2-7b', '--method', 'lorta', '--config', '{"r":4,"target_modules":["q_proj","v_proj"]}');
    expect(j.trainable).toBe(17160);
    expect(j.modules).toBe(64);
  });
  it('reads a HF config.json as --model', async () => {
    const cfg = path.join(tmp, 'config.json');
    await writeFile(cfg, JSON.stringify({ model_type: 'gpt2', n_embd: 768, n_layer: 12, n_head: 12, n_inner: null }));
    const j = await runJson('params', '--model', cfg, '--method', 'lora', '--config', '{"r":8,"target_modules":["c_attn"]}');
    expect(j.trainable).toBe(12 * 8 * (768 + 2304));
  });
  it('bad input gives a typed error and exit code 1, without a stack trace', async () => {
    const r = await run('params', '--model', 'roberta-base', '--method', 'trac', '--config', JSON.stringify({ ...tracPaper, tensor_shape: [8, 8, 10] }));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/768/);
    expect(r.err).not.toMatch(/\n\s+at /);
    const u = await run('params', '--model', 'roberta-base', '--method', 'dora');
    expect(u.code).toBe(1);
    expect(u.err).toMatch(/ConfigError.*peft_type.*TRAC/);
    const m = await run('params', '--model', 'no-such-model', '--method', 'lora');
    expect(m.code).toBe(1);
    expect(m.err).toMatch(/bert-base/);
  });
});

describe('tensorpeft inspect on the real PEFT adapters', () => {
  it('DistilBERT LoRA: 12 modules, r=8, heads in modules_to_save', async () => {
    const j = await runJson('inspect', path.join(FIXTURES, 'distilbert-lora-emotion'));
    expect(j.peft_type).toBe('LORA');
    expect(j.modules).toBe(12);
    expect(j.rank).toBe(8);
    expect(j.trainable).toBe(12 * 8 * (768 + 768));
    const heads = Object.fromEntries(j.modules_to_save.map((m: { name: string; params: number }) => [m.name, m.params]));
    expect(heads).toEqual({ pre_classifier: 768 * 768 + 768, classifier: 6 * 768 + 6 });
    expect(j.base_model_name_or_path).toMatch(/distilbert/);
  });
  it('GPT-2 LoRA: 36 modules incl. fused c_attn', async () => {
    const j = await runJson('inspect', path.join(FIXTURES, 'gpt2-lora-tigrinya'));
    expect(j.modules).toBe(36);
    expect(j.trainable).toBe(12 * 8 * (768 + 2304) + 12 * 8 * (768 + 768) + 12 * 8 * (3072 + 768));
  });
  it('a truncated safetensors file exits non-zero with a typed message', async () => {
    const dir = path.join(tmp, 'broken');
    await run('init', '--model', 'distilbert-base', '--method', 'lora', '--out', dir);
    const st = path.join(dir, 'adapter_model.safetensors');
    const bytes = await readFile(st);
    await writeFile(st, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const r = await run('inspect', dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/AdapterFormatError/);
    expect(r.err).toMatch(/adapter_model\.safetensors/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });
});

describe('init → export → diff round trip, every method', () => {
  for (const method of ['lora', 'vera', 'trac', 'loretta', 'lorta', 'tenslora']) {
    it(`${method}: export to LoRA reproduces ΔW`, async () => {
      const dir = path.join(tmp, `${method}-init`);
      const out = path.join(tmp, `${method}-lora`);
      // VeRA at PEFT's default r=256 makes the dense diff slow in the JS backend; r=32 keeps CI quick.
      const extra = method === 'vera' ? ['--config', '{"r":32}'] : [];
      const init = await runJson('init', '--model', 'roberta-base', '--method', method, ...extra, '--nonzero', '--seed', '7', '--out', dir);
      expect(init.peft_type).toBe(method.toUpperCase());
      const insp = await runJson('inspect', dir);
      expect(insp.trainable).toBe(init.trainable);
      expect(insp.bytes).toBe((await readFile(path.join(dir, 'adapter_model.safetensors'))).byteLength);
      const exp = await runJson('export', dir, '--to', 'lora', '--out', out);
      expect(exp.peft_type).toBe('LORA');
      const d = await runJson('diff', dir, out);
      expect(d.modules).toBe(insp.modules);
      // fp32 storage of A′ and s·B′: the only error is float32 rounding of the factors.
      expect(d.rel_fro).toBeLessThan(1e-5);
      const cfg = JSON.parse(await readFile(path.join(out, 'adapter_config.json'), 'utf8'));
      expect(cfg.r).toBe(insp.rank);
      expect(cfg.lora_alpha).toBe(insp.rank);
    });
  }
  it('a nonzero adapter and a differently seeded one do differ', async () => {
    const a = path.join(tmp, 'seed-a');
    const b = path.join(tmp, 'seed-b');
    await run('init', '--model', 'roberta-base', '--method', 'trac', '--nonzero', '--seed', '1', '--out', a);
    await run('init', '--model', 'roberta-base', '--method', 'trac', '--nonzero', '--seed', '2', '--out', b);
    const d = await runJson('diff', a, b);
    expect(d.rel_fro).toBeGreaterThan(0.1);
  });
});

describe('tensorpeft bench plugin', () => {
  it('measures swap vs session re-creation on a tiny model and reports ratios', async () => {
    const r = await run('bench', 'plugin', '--size', 'tiny', '--quick', '--json', '--arch', 'distilbert');
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out); // progress goes to stderr
    const swap = rows.find((r: { bench: string }) => r.bench.startsWith('swap'));
    const fresh = rows.find((r: { bench: string }) => r.bench.startsWith('session re-creation'));
    expect(swap.ms).toBeGreaterThan(0);
    expect(fresh.ms).toBeGreaterThan(0);
    // The ratio is computed from the two rows of the same run.
    expect(swap.ratio).toBeCloseTo(fresh.ms / swap.ms, 3);
  });
});

describe('the built binary', () => {
  it('prints typed errors without a stack trace and exits 1', async () => {
    const exec = promisify(execFile);
    const err = await exec(process.execPath, [BIN, 'inspect', path.join(tmp, 'does-not-exist')]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/does-not-exist/);
    expect(err.stderr).not.toMatch(/\n\s+at /);
  });
});
