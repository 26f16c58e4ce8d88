/**
 * CI-sized fuzz run over official method checkpoints (torch.save `.bin` + config): mutated zip
 * bytes, pickle programs, storages and configs must end in a typed error (UnsafePickleError,
 * AdapterFormatError, ConfigError, …) or import to finite ΔW — never an untyped error or NaN.
 */
import { describe, expect, it } from 'vitest';
import { Tally } from './classify.js';
import { caseRng } from './rng.js';
import { runTorchCase, torchCase, torchSeeds } from './torch-target.js';

describe('fuzz: official torch checkpoints (CI size)', () => {
  it('1,500 mutated official TRAC / LoRTA checkpoints: typed error or a finite import', async () => {
    const seeds = torchSeeds();
    // Both methods with an official exporter must seed the campaign.
    expect(new Set(seeds.map((s) => s.name.split('-')[0]))).toEqual(new Set(['trac', 'lorta']));
    const t = new Tally();
    const hows = new Map<string, number>();
    for (let i = 0; i < 1500; i++) {
      const c = torchCase(caseRng(13, i), seeds);
      hows.set(c.how, (hows.get(c.how) ?? 0) + 1);
      t.add('torch', i, await runTorchCase(c, seeds), `${c.seed}/${c.how}`);
    }
    const summary = JSON.stringify({ counts: Object.fromEntries(t.counts), findings: t.findings.slice(0, 3) }, null, 1);
    expect(t.findingCount, summary).toBe(0);
    // The campaign reaches both sides: some mutations are harmless, many are refused.
    expect(t.count('accepted'), summary).toBeGreaterThan(20);
    expect(t.count('typed'), summary).toBeGreaterThan(300);
    expect(hows.size).toBe(4);
  });
});
