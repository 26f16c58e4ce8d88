/** A loss (and eval accuracy) curve as a self-contained SVG, for the CLI's output folder and the playground. */

export interface CurveData {
  losses: readonly number[];
  evals?: ReadonlyArray<{ step: number; loss: number; accuracy: number }>;
  title?: string;
}

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

export function lossCurveSvg(d: CurveData, width = 640, height = 320): string {
  const pad = { l: 56, r: 56, t: 28, b: 36 };
  const W = width - pad.l - pad.r;
  const H = height - pad.t - pad.b;
  const n = Math.max(1, d.losses.length);
  const evals = d.evals ?? [];
  const all = [...d.losses, ...evals.map((e) => e.loss)].filter(Number.isFinite);
  const hi = all.length ? Math.max(...all) : 1;
  const lo = all.length ? Math.min(0, Math.min(...all)) : 0;
  const x = (step: number): number => pad.l + (W * step) / n;
  const y = (v: number): number => pad.t + H - (H * (v - lo)) / (hi - lo || 1);
  const line = d.losses.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i + 1).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const evalLine = evals.map((e, i) => `${i === 0 ? 'M' : 'L'}${x(e.step).toFixed(1)},${y(e.loss).toFixed(1)}`).join(' ');
  const acc = evals.map((e, i) => `${i === 0 ? 'M' : 'L'}${x(e.step).toFixed(1)},${(pad.t + H - H * e.accuracy).toFixed(1)}`).join(' ');
  const ticks = [0, 0.5, 1].map((f) => lo + f * (hi - lo));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="#fff"/>
<text x="${pad.l}" y="16" font-size="13">${esc(d.title ?? 'training loss')}</text>
<line x1="${pad.l}" y1="${pad.t + H}" x2="${pad.l + W}" y2="${pad.t + H}" stroke="#888"/>
<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${pad.t + H}" stroke="#888"/>
${ticks.map((v) => `<text x="${pad.l - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(3)}</text>`).join('\n')}
<text x="${pad.l + W / 2}" y="${height - 8}" text-anchor="middle">optimizer step (${d.losses.length})</text>
<path d="${line}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>
${evals.length ? `<path d="${evalLine}" fill="none" stroke="#d62728" stroke-width="1.5" stroke-dasharray="4 3"/>
<path d="${acc}" fill="none" stroke="#2ca02c" stroke-width="1.5"/>
<text x="${pad.l + W + 6}" y="${pad.t + 4}">acc 1</text><text x="${pad.l + W + 6}" y="${pad.t + H}">acc 0</text>
<text x="${pad.l + W - 150}" y="${pad.t + 12}" fill="#d62728">eval loss</text><text x="${pad.l + W - 80}" y="${pad.t + 12}" fill="#2ca02c">eval accuracy</text>` : ''}
<text x="${pad.l + 8}" y="${pad.t + 12}" fill="#1f77b4">train loss</text>
</svg>
`;
}
