/**
 * The CI-sized fuzz campaign (issue 15): a few thousand seeded cases per target, every outcome a
 * typed error or an accepted input with finite, round-trip-exact output. `pnpm fuzz` runs the same
 * generators at full size (100,000 adapter cases, 5,000 models) with a hang watchdog and memory
 * accounting, and also the cases this run leaves out (see the model test).
 */
import { describe, expect, it } from 'vitest';
import { adapterCampaign, modelCampaign } from './campaign.js';
import { BEHAVIOURS, httpCampaign } from './http.js';
import { soak } from './soak.js';
import { caseRng } from './rng.js';
import { adapterSeeds, modelSeeds } from './seeds.js';
import { adapterCase, GRAPH_MUTATIONS } from './targets.js';

const aSeeds = adapterSeeds();

function summary(t: { counts: Map<string, number>; findings: unknown[] }): string {
  return JSON.stringify({ counts: Object.fromEntries(t.counts), findings: t.findings.slice(0, 3) }, null, 1);
}

describe('fuzz campaign (CI size)', () => {
  it('cases are reproducible from (seed, index)', () => {
    const a = adapterCase(caseRng(7, 123), aSeeds);
    const b = adapterCase(caseRng(7, 123), aSeeds);
    expect(b.safetensors).toEqual(a.safetensors);
    expect(b.config).toEqual(a.config);
    expect(adapterCase(caseRng(7, 124), aSeeds).safetensors).not.toEqual(a.safetensors);
  });

  it('2,000 mutated adapter files and configs of every method (real and generated): typed error or finite, round-trip-exact output', async () => {
    const t = await adapterCampaign({ seed: 1, cases: 2000, seeds: aSeeds });
    expect(t.findingCount, summary(t)).toBe(0);
    expect(t.count('accepted')).toBeGreaterThan(50);
    expect(t.count('typed')).toBeGreaterThan(1000);
    // Each family of refusal is exercised.
    for (const name of ['ConfigError', 'AdapterFormatError', 'ShapeMismatchError', 'NonFiniteError']) expect(t.counts.get(`typed:${name}`) ?? 0, name).toBeGreaterThan(0);
  });

  it('1,000 mutated configs alone', async () => {
    const t = await adapterCampaign({ seed: 2, cases: 1000, seeds: aSeeds, what: 'config' });
    expect(t.findingCount, summary(t)).toBe(0);
    expect(t.count('accepted')).toBeGreaterThan(0);
  });

  it('500 structurally mutated models through rewriteModel: typed error or a decodable rewrite on the targets only', () => {
    const t = modelCampaign({ seed: 3, cases: 500, seeds: modelSeeds(), how: 'graph', kinds: GRAPH_MUTATIONS });
    expect(t.findingCount, summary(t)).toBe(0);
    expect(t.count('accepted')).toBeGreaterThan(50);
    expect(t.count('typed')).toBeGreaterThan(10);
  });

  it('300 byte-level mutated models through rewriteModel: a typed ModelFormatError (or an accepted rewrite), never a protobuf error', () => {
    const t = modelCampaign({ seed: 4, cases: 300, seeds: modelSeeds(), how: 'bytes' });
    expect(t.findingCount, summary(t)).toBe(0);
    expect(t.count('typed')).toBeGreaterThan(50);
  });

  it('hostile HTTP servers: every behaviour (the slow drip included) ends in a typed error (or a correct load) within 5 s', async () => {
    const behaviours = [...BEHAVIOURS];
    const s = aSeeds.find((x) => x.name === 'lora-bert')!;
    const results = await httpCampaign({ config: s.config, safetensors: s.safetensors }, behaviours);
    expect(results.filter((r) => !r.ok).map((r) => [r.behaviour, r.outcome])).toEqual([]);
    expect(results.map((r) => r.behaviour)).toEqual(behaviours);
    // The slow drip stops at the total deadline; the bomb at the cap on its decoded bytes.
    expect(results.find((r) => r.behaviour === 'slow-drip')!.outcome).toEqual({ kind: 'typed', name: 'FetchTimeoutError' });
    expect(results.find((r) => r.behaviour === 'gzip-bomb')!.outcome).toEqual({ kind: 'typed', name: 'SizeLimitError' });
  });
});

describe('hot-swap soak (CI size)', () => {
  it('300 seeded load/run/set_adapter/disable/unload/replace operations: every run equals its adapter\'s solo output bit for bit', async () => {
    const r = await soak({ seed: 15, ops: 300 });
    expect(r.distinctRefs).toBe(r.specs + 1);
    expect(r.first).toBeUndefined();
    expect(r.errors).toBe(0);
    expect(r.wrong).toBe(0);
    expect(r.correct).toBe(r.runs);
    expect(r.runs).toBeGreaterThan(100);
  }, 120_000);
});
