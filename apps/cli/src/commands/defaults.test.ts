import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { listMethods } from '@tensorpeft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../main.js';

// Issue 13 acceptance: `init` + `verify` with default configs (no --config) for every method on a
// tiny model of every architecture — the tiny LLaMA has grouped-query attention (4 heads, 2 kv) —
// i.e. the defaults fit dimensions no official table lists (32, 64, GQA k/v 32).
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { code, out, err };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-defaults-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const ARCHS = ['bert', 'roberta', 'distilbert', 'gpt2', 'llama', 'vit'];

describe('init + verify with default configs on tiny models of every architecture', () => {
  for (const arch of ARCHS) {
    it(`${arch}: every method`, async () => {
      const model = path.join(tmp, arch);
      const mk = await run('make-model', '--arch', arch, '--size', 'tiny', '--out', model);
      expect(mk.err).toBe('');
      expect(mk.code).toBe(0);
      for (const m of listMethods()) {
        const out = path.join(tmp, `${arch}-${m.cliName}`);
        const init = await run('init', '--model', model, '--method', m.cliName, '--nonzero', '--seed', '5', '--out', out);
        expect(init.err, `${arch} ${m.cliName} init`).toBe('');
        const v = await run('verify', '--model', model, '--adapter', out);
        expect(v.err, `${arch} ${m.cliName} verify`).toBe('');
        const r = JSON.parse(v.out);
        // Plugin vs offline merge (fp32; tolerance of the existing verify tests), disabled = base exactly.
        expect(r.max_abs_diff, `${arch} ${m.cliName}`).toBeLessThanOrEqual(1e-4);
        expect(r.base_max_abs_diff).toBe(0);
        expect(r.adapter_effect, `${arch} ${m.cliName} acts`).toBeGreaterThan(0);
      }
    }, 300_000);
  }
});
