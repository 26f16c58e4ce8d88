import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { adapterStats, createAdapter, getMethod, listMethods, loadAdapter, presetShape } from '@tensorpeft/core';
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

  it('shows the modules_to_save tensors of the real PEFT adapter as heads, counted apart (as core counts them)', async () => {
    const real = await loadAdapter(path.resolve(import.meta.dirname, '../../../fixtures/peft-real/distilbert-lora-emotion'));
    const st = adapterStats(real);
    const s = adapterStructure(real.plan.params, real.extras);
    expect(s.trainable).toBe(st.trainable);
    expect(s.heads).toBe(st.modules_to_save.reduce((a, h) => a + h.params, 0));
    // pre_classifier 768×768 + 768, classifier 6×768 + 6 (dair-ai/emotion's six labels).
    expect(s.heads).toBe(768 * 768 + 768 + 6 * 768 + 6);
    const heads = s.groups.filter((g) => g.section === 'heads');
    expect(heads.map((g) => g.shapes[0]).sort()).toEqual(['6', '6×768', '768', '768×768']);
    expect(heads.every((g) => !g.label.startsWith('base_model'))).toBe(true);
    const svg = structureSvg(s);
    expect(svg).toContain('data-section="heads"');
    expect(svg).toContain(`modules_to_save ${s.heads.toLocaleString('en-US')}`);
    // Adapters without heads get no heads section.
    expect(structureSvg(adapterStructure(specs))).not.toContain('data-section="heads"');
  });
});
