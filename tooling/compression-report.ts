/**
 * Measures the error-vs-budget curves of LoRA → tensor-method conversion on the two real PEFT
 * adapters in fixtures/peft-real and draws them as docs/compression.svg (a hand-written
 * SVG, no plotting dependency). Not part of CI: it takes minutes.
 *
 *   npx tsx tooling/compression-report.ts [--iters 300] [--als 60] [--ratios 3,10,30,100] [--out docs]
 *   npx tsx tooling/compression-report.ts --plot-only     (redraw from <out>/compression-data.json)
 *
 * Writes <out>/compression-data.json (every measured point) and <out>/compression.svg, and prints a
 * markdown table. Every error is ‖ΔW_lora − ΔW_fit‖_F / ‖ΔW_lora‖_F over all modules, recomputed
 * from the serialized adapter (fp32) with the factored diff.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  adapterFromBytes,
  adapterToFiles,
  convertLora,
  diffAdapters,
  loadAdapter,
  loraTarget,
  svdTruncation,
  targetSpectra,
  type ConvertOptions,
} from '../packages/core/src/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = path.resolve(ROOT, 'fixtures/peft-real');

const { values } = parseArgs({
  options: {
    iters: { type: 'string', default: '300' },
    als: { type: 'string', default: '60' },
    ratios: { type: 'string', default: '3,10,30,100' },
    out: { type: 'string', default: path.join(ROOT, 'docs') },
    only: { type: 'string' },
    'plot-only': { type: 'boolean', default: false },
  },
});
const iters = Number(values.iters);
const als = Number(values.als);
const ratios = values.ratios!.split(',').map(Number);

interface Point {
  adapter: string;
  method: string;
  variant?: string;
  ratio: number;
  budget: number;
  params_before: number;
  params_after: number;
  params_fitted: number;
  params_after_stored: number;
  rel_error: number;
  init_rel_error: number;
  svd_rel_error: number;
  chosen: unknown;
  construction?: unknown;
  seconds: number;
}

const ADAPTERS: { name: string; label: string; methods: string[] }[] = [
  { name: 'distilbert-lora-emotion', label: 'DistilBERT LoRA (q_lin, v_lin; r = 8; 12 modules)', methods: ['trac', 'loretta', 'lorta', 'tenslora'] },
  { name: 'gpt2-lora-tigrinya', label: 'GPT-2 LoRA (c_attn, c_proj; r = 8; 36 modules)', methods: ['trac', 'loretta', 'tenslora'] },
];

let points: Point[] = [];
let svdCurves: Record<string, { params: number; rel_error: number }[]> = {};
let notes: string[] = [];
if (values['plot-only']) {
  const data = JSON.parse(await readFile(path.join(values.out!, 'compression-data.json'), 'utf8'));
  points = data.points;
  svdCurves = data.svd;
  notes = data.notes;
}

for (const a of values['plot-only'] ? [] : ADAPTERS) {
  if (values.only && !a.name.includes(values.only)) continue;
  const src = await loadAdapter(path.join(FIXTURES, a.name));
  const target = await loraTarget(src);
  const spectra = targetSpectra(target);
  // Dense SVD curve: every budget from 1/1000 to the full LoRA (log-spaced).
  const curve: { params: number; rel_error: number }[] = [];
  for (let k = 0; k <= 120; k++) {
    const b = Math.round(target.params * Math.pow(10, -3 + (3 * k) / 120));
    curve.push({ params: b, rel_error: svdTruncation(target, b, spectra).rel_error });
  }
  svdCurves[a.name] = curve;
  const run = async (method: string, ratio: number, extra: Partial<ConvertOptions> = {}, variant?: string) => {
    const t0 = performance.now();
    try {
      const res = await convertLora(src, { to: method, ratio, iters, alsSweeps: als, seed: 0, ...extra });
      const f = adapterToFiles(res.adapter);
      const back = adapterFromBytes({ config: f.configJson, safetensors: f.safetensors });
      const d = await diffAdapters(src, back, undefined, { dense: false });
      const p: Point = {
        adapter: a.name,
        method,
        ratio,
        budget: res.budget!,
        params_before: res.params_before,
        params_after: res.params_after,
        params_fitted: res.params_fitted,
        params_after_stored: res.params_after_stored,
        rel_error: d.rel_fro,
        init_rel_error: res.init_rel_error,
        svd_rel_error: res.svd_rel_error,
        chosen: res.chosen,
        seconds: (performance.now() - t0) / 1000,
      };
      if (variant) p.variant = variant;
      if (res.adapter.config.construction !== undefined) p.construction = res.adapter.config.construction;
      points.push(p);
      console.error(`${a.name} ${method}${variant ? ` (${variant})` : ''} ×${ratio}: rel ${p.rel_error.toFixed(4)} (init ${p.init_rel_error.toFixed(4)}) svd ${p.svd_rel_error.toFixed(4)} params ${p.params_fitted}/${p.budget} ${p.seconds.toFixed(1)} s`);
    } catch (e) {
      const msg = `${a.name} ${method} ×${ratio}: ${(e as Error).name}: ${(e as Error).message}`;
      notes.push(msg);
      console.error(msg);
    }
  };
  for (const method of a.methods) for (const ratio of ratios) await run(method, ratio);
  // Variants at 10×: TRAC with its frozen cores left random; TRAC with per-type averaged TT-SVD init.
  await run('trac', 10, { fitFrozen: false }, 'frozen cores random');
  await run('trac', 10, { tracInit: 'average', iters: 0 }, 'averaged TT-SVD init, no fit');
  await run('trac', 10, { config: { variant: 'all_trainable' } }, 'all_trainable (TT-LoRA)');
  if (!a.methods.includes('lorta')) await run('lorta', 10);
}

await mkdir(values.out!, { recursive: true });
if (!values['plot-only']) {
  await writeFile(path.join(values.out!, 'compression-data.json'), `${JSON.stringify({ iters, als, ratios, points, svd: svdCurves, notes }, null, 1)}\n`);
}
await writeFile(path.join(values.out!, 'compression.svg'), plot());

// Markdown table.
console.log('| adapter | method | ratio | budget | fitted params (trainable / stored) | rel_error | init | SVD-LoRA same budget | time (s) | ranks |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const p of points) {
  console.log(
    `| ${p.adapter} | ${p.method}${p.variant ? ` (${p.variant})` : ''} | ${p.ratio}× | ${p.budget} | ${p.params_fitted} (${p.params_after} / ${p.params_after_stored}) | ${p.rel_error.toFixed(4)} | ${p.init_rel_error.toFixed(4)} | ${p.svd_rel_error.toFixed(4)} | ${p.seconds.toFixed(1)} | \`${JSON.stringify(p.construction ? { construction: p.construction, ...(p.chosen as object) } : p.chosen)}\` |`,
  );
}
for (const n of notes) console.log(`\n- ${n}`);

function plot(): string {
  const COLORS: Record<string, string> = { svd: '#222222', trac: '#d62728', loretta: '#1f77b4', lorta: '#2ca02c', tenslora: '#9467bd' };
  const LABELS: Record<string, string> = { svd: 'truncated-SVD LoRA (per-module ranks, greedy)', trac: 'TRAC', loretta: 'LoRETTA', lorta: 'LoRTA', tenslora: 'TensLoRA' };
  const W = 1080;
  const H = 480;
  const panelW = 420;
  const panelH = 330;
  const top = 60;
  const lefts = [80, 610];
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">LoRA → tensor-method conversion: relative error vs parameters (lower is better)</text>`);
  ADAPTERS.forEach((a, ai) => {
    const x0 = lefts[ai]!;
    const curve = svdCurves[a.name];
    if (!curve) return;
    const full = curve[curve.length - 1]!.params;
    const xmin = full / 1000;
    const xmax = full;
    const X = (p: number) => x0 + (Math.log10(Math.max(p, xmin) / xmin) / Math.log10(xmax / xmin)) * panelW;
    const Y = (e: number) => top + (1 - Math.min(Math.max(e, 0), 1.05) / 1.05) * panelH;
    out.push(`<text x="${x0 + panelW / 2}" y="${top - 12}" text-anchor="middle" font-size="13">${a.label}</text>`);
    out.push(`<rect x="${x0}" y="${top}" width="${panelW}" height="${panelH}" fill="none" stroke="#888"/>`);
    for (const e of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
      out.push(`<line x1="${x0}" x2="${x0 + panelW}" y1="${Y(e)}" y2="${Y(e)}" stroke="#eee"/>`);
      out.push(`<text x="${x0 - 6}" y="${Y(e) + 4}" text-anchor="end">${e.toFixed(1)}</text>`);
    }
    for (let d = 0; d <= 3; d++) {
      const p = xmin * Math.pow(10, d);
      out.push(`<line x1="${X(p)}" x2="${X(p)}" y1="${top}" y2="${top + panelH}" stroke="#eee"/>`);
      const ratio = full / p;
      out.push(`<text x="${X(p)}" y="${top + panelH + 16}" text-anchor="middle">${Math.round(p).toLocaleString('en-US')}</text>`);
      out.push(`<text x="${X(p)}" y="${top + panelH + 30}" text-anchor="middle" fill="#666">(${ratio >= 1.5 ? `${Math.round(ratio)}×` : 'LoRA'})</text>`);
    }
    out.push(`<text x="${x0 + panelW / 2}" y="${top + panelH + 48}" text-anchor="middle">parameters the adapter pays for (log scale; LoRA / ratio below)</text>`);
    if (ai === 0) out.push(`<text transform="translate(${x0 - 40},${top + panelH / 2}) rotate(-90)" text-anchor="middle">‖ΔW_lora − ΔW_fit‖_F / ‖ΔW_lora‖_F</text>`);
    // 10× marker.
    out.push(`<line x1="${X(full / 10)}" x2="${X(full / 10)}" y1="${top}" y2="${top + panelH}" stroke="#999" stroke-dasharray="4,3"/>`);
    out.push(`<text x="${X(full / 10) + 3}" y="${top + 12}" fill="#666">10×</text>`);
    // SVD curve.
    out.push(`<polyline fill="none" stroke="${COLORS.svd}" stroke-width="1.8" points="${curve.map((c) => `${X(c.params).toFixed(1)},${Y(c.rel_error).toFixed(1)}`).join(' ')}"/>`);
    for (const m of ['trac', 'loretta', 'lorta', 'tenslora']) {
      const ps = points.filter((p) => p.adapter === a.name && p.method === m && !p.variant).sort((p, q) => p.params_fitted - q.params_fitted);
      if (ps.length === 0) continue;
      out.push(`<polyline fill="none" stroke="${COLORS[m]}" stroke-width="1.5" points="${ps.map((p) => `${X(p.params_fitted).toFixed(1)},${Y(p.rel_error).toFixed(1)}`).join(' ')}"/>`);
      for (const p of ps) out.push(`<circle cx="${X(p.params_fitted).toFixed(1)}" cy="${Y(p.rel_error).toFixed(1)}" r="4" fill="${COLORS[m]}"><title>${m} ×${p.ratio}: ${p.rel_error.toFixed(4)}</title></circle>`);
    }
    if (!a.methods.includes('lorta')) {
      out.push(`<text x="${x0 + 8}" y="${top + panelH - 22}" fill="${COLORS.lorta}">LoRTA: not applicable (targets must be square d × d;</text>`);
      out.push(`<text x="${x0 + 8}" y="${top + panelH - 8}" fill="${COLORS.lorta}">c_attn is 768 → 2304, mlp.c_proj 3072 → 768)</text>`);
    }
    if (a.name.startsWith('gpt2')) out.push(`<text x="${x0 + 8}" y="${top + panelH - 36}" fill="${COLORS.tenslora}">TensLoRA at 100×: budget 8,110 &lt; smallest adapter (8,487)</text>`);
  });
  // Legend.
  const ly = H - 22;
  let lx = 80;
  for (const m of ['svd', 'trac', 'loretta', 'lorta', 'tenslora']) {
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${COLORS[m]}" stroke-width="2"/>`);
    if (m !== 'svd') out.push(`<circle cx="${lx + 12}" cy="${ly}" r="4" fill="${COLORS[m]}"/>`);
    out.push(`<text x="${lx + 30}" y="${ly + 4}">${LABELS[m]}</text>`);
    lx += m === 'svd' ? 330 : 120;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
