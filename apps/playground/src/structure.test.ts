import { describe, expect, it } from 'vitest';
import { createAdapter, getMethod, listMethods, presetShape } from '@tensorpeft/core';
import { adapterStructure, roleOf, structureSvg } from './structure.js';

const specs = [
  { key: 'base_model.model.l0.q.lora_A.weight', shape: [4, 8], kind: 'trainable' as const, module: 'l0.q' },
  { key: 'base_model.model.l1.q.lora_A.weight', shape: [4, 8], kind: 'trainable' as const, module: 'l1.q' },
  { key: 'base_model.vera_A', shape: [4, 8], kind: 'frozen' as const, shared: 'adapter' },
  { key: 'base_model.model.l0.q.core', shape: [2], kind: 'frozen' as const, module: 'l0.q' },
];

describe('adapterStructure', () => {
  it('groups per-module tensors by role and shared tensors by sharing key, by kind', () => {
    const s = adapterStructure(specs);
    expect(s.trainable).toBe(64);
    expect(s.frozen).toBe(34);
    expect(s.modules).toBe(2);
    expect(s.groups).toEqual([
      { section: 'per-module', label: '<module>.lora_A.weight', sharedBy: [], kind: 'trainable', tensors: 2, params: 64, shapes: ['4×8'] },
      { section: 'per-module', label: '<module>.core', sharedBy: [], kind: 'frozen', tensors: 1, params: 2, shapes: ['2'] },
      { section: 'shared', label: 'vera_A', sharedBy: ['adapter'], kind: 'frozen', tensors: 1, params: 32, shapes: ['4×8'] },
    ]);
    expect(roleOf({ key: 'base_model.model.a.b.x', module: 'a.b' })).toBe('<module>.x');
    expect(roleOf({ key: 'base_model.G.attention.q', shared: 'attention.q' })).toBe('G.<shared>');
    const two = adapterStructure([
      { key: 'base_model.G.q', shape: [3], kind: 'frozen', shared: 'q' },
      { key: 'base_model.G.v', shape: [3], kind: 'frozen', shared: 'v' },
    ]);
    expect(two.groups).toEqual([{ section: 'shared', label: 'G.<shared>', sharedBy: ['q', 'v'], kind: 'frozen', tensors: 2, params: 6, shapes: ['3'] }]);
  });

  it('matches core counts for every registered method (generic over the plan)', async () => {
    const { adapterStats } = await import('@tensorpeft/core');
    let checked = 0;
    for (const m of listMethods()) {
      const method = getMethod(m.peftType);
      let adapter;
      try {
        adapter = createAdapter({ method: method.cliName, shape: presetShape('distilbert-base') } as never);
      } catch {
        continue;
      }
      const st = adapterStats(adapter);
      const s = adapterStructure(adapter.plan.params);
      expect(s.trainable, m.peftType).toBe(st.trainable);
      expect(s.frozen, m.peftType).toBe(st.frozen);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(3);
  });

  it('draws an SVG with both sections, bars colored by kind', () => {
    const svg = structureSvg(adapterStructure(specs));
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('data-section="per-module"');
    expect(svg).toContain('data-section="shared"');
    expect(svg.match(/class="group"/g)?.length).toBe(3);
    expect(svg).toContain('data-kind="frozen"');
    expect(svg).toContain('&lt;module&gt;.lora_A.weight');
    expect(structureSvg(adapterStructure([]))).toContain('none');
  });
});
