import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { listMethods } from '@tensorpeft/core';
import '@tensorpeft/kernels-wasm/register';
import { demoCommand } from './demo.js';

const FIXTURE = fileURLToPath(new URL('../../../../fixtures/peft-real/distilbert-lora-emotion', import.meta.url));

async function demoJson(...argv: string[]): Promise<any> {
  let out = '';
  let err = '';
  const code = await demoCommand(['--json', ...argv], { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  expect(code).toBe(0);
  // Progress goes to stderr in --json mode; stdout is one JSON document.
  expect(err).toMatch(/\[demo\] /);
  return JSON.parse(out);
}

describe('tensorpeft demo --json', () => {
  it('--tiny-only: one adapter per method in one model, each changes the output, disabled = base exactly', async () => {
    const j = await demoJson('--tiny-only');
    const methods = listMethods().map((m) => m.peftType);
    expect(j.methods.map((r: { method: string }) => r.method.toUpperCase()).sort()).toEqual([...methods].sort());
    for (const r of j.methods) expect(r.export_rel_fro).toBeLessThan(1e-5);
    const t = j.hot_swap;
    expect(t.adapters.map((a: { peft_type: string }) => a.peft_type).sort()).toEqual([...methods].sort());
    expect(t.base.logits.length).toBe(t.texts.length);
    for (const a of t.adapters) {
      expect(a.differs_from_base, a.name).toBe(true);
      expect(a.max_abs_diff_vs_base, a.name).toBeGreaterThan(1e-5);
      expect(a.reswap_identical, a.name).toBe(true);
      expect(a.file_bytes).toBeGreaterThan(0);
      expect(a.held_bytes).toBeGreaterThan(0);
      expect(a.logits).not.toEqual(t.base.logits);
    }
    expect(t.disabled_equals_base).toBe(true);
    expect(t.disabled_max_abs_diff).toBe(0);
    expect(t.disabled.logits).toEqual(t.base.logits);
    expect(t.swap_us).toBeGreaterThan(0);
    expect(t.fresh_session_load_ms).toBeGreaterThan(t.swap_us / 1000);
    expect(j.real_adapter).toEqual({ skipped: '--tiny-only' });
  }, 120_000);

  it(
    'the real distilbert-lora-emotion adapter on a base-size DistilBERT changes the logits; disabled = base exactly',
    async () => {
      // The fixtures are part of the repo (fixtures/); without them this must fail.
      expect(existsSync(FIXTURE), `missing fixture ${FIXTURE}`).toBe(true);
      const t0 = performance.now();
      const j = await demoJson();
      const r = j.real_adapter;
      expect(r.skipped).toBeUndefined();
      expect(r.peft_type).toBe('LORA');
      expect(r.modules).toBe(12);
      expect([...r.modules_to_save].sort()).toEqual(['classifier.bias', 'classifier.weight', 'pre_classifier.bias', 'pre_classifier.weight']);
      expect(r.max_abs_diff_vs_base).toBeGreaterThan(1e-3);
      expect(r.adapter_on.logits).not.toEqual(r.base.logits);
      expect(r.disabled_equals_base).toBe(true);
      expect(r.disabled_max_abs_diff).toBe(0);
      expect(r.disabled.labels).toEqual(r.base.labels);
      for (const l of [...r.base.labels, ...r.adapter_on.labels]) expect(r.label_names).toContain(l);
      console.log(`demo --json (full, incl. base-size DistilBERT): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    },
    180_000,
  );
});
