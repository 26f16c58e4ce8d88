/**
 * The adapter's structure from core's plan alone (never from the method's name): tensors grouped
 * into per-module roles (the key with its module path taken out) and shared tensors (by sharing
 * key), each group trainable or frozen, with tensor and parameter counts. `structureSvg` draws it.
 */
import type { ParamSpec } from '@tensorpeft/core';

/** `heads`: modules_to_save tensors (whole base layers the adapter replaces, e.g. a classifier). */
export type StructureSection = 'per-module' | 'shared' | 'heads';

export interface StructureGroup {
  section: StructureSection;
  /** The key with its module path (per-module) or sharing key (shared) replaced by `<module>` / `<shared>`. */
  label: string;
  /** Shared groups: the sharing keys (matrix types, or `adapter`) of its tensors. */
  sharedBy: string[];
  kind: 'trainable' | 'frozen';
  /** Tensors in the group (per-module: one per module it appears in). */
  tensors: number;
  /** Parameters in the group (sum over its tensors). */
  params: number;
  /** The distinct shapes, `4×8` style. */
  shapes: string[];
}

export interface Structure {
  groups: StructureGroup[];
  trainable: number;
  frozen: number;
  /** Parameters in modules_to_save tensors (not counted in trainable/frozen, like core's counts). */
  heads: number;
  modules: number;
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The per-module role of a key: its module path replaced by `<module>`. */
export function roleOf(spec: Pick<ParamSpec, 'key' | 'module' | 'shared'>): string {
  const strip = (k: string): string => k.replace(/^base_model\.model\./, '').replace(/^base_model\./, '');
  if (spec.module && spec.key.includes(spec.module)) return strip(spec.key.replace(spec.module, '<module>'));
  if (spec.shared && spec.key.includes(spec.shared)) return strip(spec.key.replace(spec.shared, '<shared>'));
  return strip(spec.key);
}

/**
 * Group the plan's tensors, and the modules_to_save tensors (`extras`, key → tensor with a shape)
 * one group each; order: per-module, shared, heads, each by first appearance.
 */
export function adapterStructure(
  params: readonly Pick<ParamSpec, 'key' | 'shape' | 'kind' | 'module' | 'shared'>[],
  extras: Iterable<readonly [string, { readonly shape: readonly number[] }]> = [],
): Structure {
  const groups = new Map<string, StructureGroup>();
  const modules = new Set<string>();
  let trainable = 0;
  let frozen = 0;
  for (const p of params) {
    const n = numel(p.shape);
    if (p.kind === 'frozen') frozen += n;
    else trainable += n;
    const section: StructureSection = p.module !== undefined && p.shared === undefined ? 'per-module' : 'shared';
    if (p.module !== undefined) modules.add(p.module);
    const label = section === 'per-module' ? roleOf(p) : roleOf({ key: p.key, shared: p.shared });
    const id = `${section}\u0000${label}\u0000${p.kind}`;
    let g = groups.get(id);
    if (!g) groups.set(id, (g = { section, label, sharedBy: [], kind: p.kind, tensors: 0, params: 0, shapes: [] }));
    if (section === 'shared' && !g.sharedBy.includes(p.shared ?? 'adapter')) g.sharedBy.push(p.shared ?? 'adapter');
    g.tensors++;
    g.params += n;
    const s = p.shape.join('×') || 'scalar';
    if (!g.shapes.includes(s)) g.shapes.push(s);
  }
  let heads = 0;
  const headGroups: StructureGroup[] = [];
  for (const [key, t] of extras) {
    const n = numel(t.shape);
    heads += n;
    headGroups.push({ section: 'heads', label: roleOf({ key }), sharedBy: [], kind: 'trainable', tensors: 1, params: n, shapes: [t.shape.join('×') || 'scalar'] });
  }
  const all = [...groups.values()];
  return { groups: [...all.filter((g) => g.section === 'per-module'), ...all.filter((g) => g.section === 'shared'), ...headGroups], trainable, frozen, heads, modules: modules.size };
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export const KIND_COLORS = { trainable: '#2b6cb0', frozen: '#a0aec0' } as const;
export const HEAD_COLOR = '#dd6b20';

/**
 * An SVG (markup string): one column per section, one bar per group; bar width ∝ log10(1 + params)
 * (relative to the largest), color by kind, label `role · tensors × shape · params`.
 */
export function structureSvg(s: Structure, width = 1000): string {
  const rowH = 22;
  const headH = 22;
  const pad = 6;
  // The heads section only when there are heads (most adapters have none).
  const sections: StructureSection[] = s.heads > 0 ? ['per-module', 'shared', 'heads'] : ['per-module', 'shared'];
  const maxLog = Math.max(1, ...s.groups.map((g) => Math.log10(1 + g.params)));
  const parts: string[] = [];
  let y = 0;
  for (const sec of sections) {
    const gs = s.groups.filter((g) => g.section === sec);
    const title =
      sec === 'per-module' ? `per-module (${s.modules} module${s.modules === 1 ? '' : 's'})` : sec === 'shared' ? 'shared' : 'modules_to_save (whole base layers replaced, trained)';
    parts.push(`<g data-section="${sec}"><text x="0" y="${y + 15}" font-weight="bold" font-size="12">${esc(title)}${gs.length ? '' : ' — none'}</text>`);
    y += headH;
    for (const g of gs) {
      const w = Math.max(4, (width * 0.3 * Math.log10(1 + g.params)) / maxLog);
      const by = g.section === 'shared' ? ` · shared by ${g.sharedBy.join(', ')}` : '';
      const kind = g.section === 'heads' ? 'head' : g.kind;
      const label = `${g.label} · ${g.tensors} × ${g.shapes.join('/')}${by} · ${g.params.toLocaleString('en-US')} ${kind}`;
      parts.push(
        `<g class="group" data-kind="${g.kind}" data-params="${g.params}"><title>${esc(label)}</title>` +
          `<rect x="0" y="${y}" width="${w.toFixed(1)}" height="${rowH - 4}" rx="2" fill="${g.section === 'heads' ? HEAD_COLOR : KIND_COLORS[g.kind]}"></rect>` +
          `<text x="${(w + pad).toFixed(1)}" y="${y + 13}" font-size="11">${esc(label)}</text></g>`,
      );
      y += rowH;
    }
    parts.push('</g>');
    y += pad;
  }
  const legendY = y + 4;
  parts.push(
    `<g class="legend"><rect x="0" y="${legendY}" width="10" height="10" fill="${KIND_COLORS.trainable}"></rect><text x="14" y="${legendY + 9}" font-size="11">trainable ${s.trainable.toLocaleString('en-US')}</text>` +
      `<rect x="160" y="${legendY}" width="10" height="10" fill="${KIND_COLORS.frozen}"></rect><text x="174" y="${legendY + 9}" font-size="11">frozen ${s.frozen.toLocaleString('en-US')}</text>` +
      (s.heads > 0 ? `<rect x="320" y="${legendY}" width="10" height="10" fill="${HEAD_COLOR}"></rect><text x="334" y="${legendY + 9}" font-size="11">modules_to_save ${s.heads.toLocaleString('en-US')}</text>` : '') +
      '</g>',
  );
  const h = legendY + 16;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" viewBox="0 0 ${width} ${h}" font-family="system-ui, sans-serif" style="max-width: 100%; height: auto" role="img" aria-label="adapter structure">${parts.join('')}</svg>`;
}
