/**
 * Data for the charts (pure, unit-tested) and their rendering with Observable Plot (SVG).
 */
import * as Plot from '@observablehq/plot';

export interface MethodRow {
  name: string;
  method: string;
  trainable: number;
  stored: number;
  fileBytes: number;
}

export interface MethodPoint {
  name: string;
  metric: 'file bytes' | 'stored params' | 'trainable params';
  value: number;
}

/** One point per adapter and metric; zero values (log scale) are left out. */
export function methodPoints(rows: readonly MethodRow[]): MethodPoint[] {
  const out: MethodPoint[] = [];
  for (const r of rows) {
    for (const [metric, value] of [
      ['file bytes', r.fileBytes],
      ['stored params', r.stored],
      ['trainable params', r.trainable],
    ] as const) {
      if (value > 0 && Number.isFinite(value)) out.push({ name: `${r.name} (${r.method})`, metric, value });
    }
  }
  return out;
}

/** Checks that a row-major [rows × cols] matrix has that many values; returns its largest |v| (symmetric color scale). */
export function matrixMaxAbs(data: ArrayLike<number>, rows: number, cols: number): number {
  if (data.length !== rows * cols) throw new RangeError(`matrix of ${data.length} values is not ${rows}×${cols}`);
  let maxAbs = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]!);
    if (a > maxAbs) maxAbs = a;
  }
  return maxAbs;
}

/** Displayed size of a heatmap: at most 14 px per entry, the longer side at most 480 px (large ΔW are scaled down by the browser). */
export function heatmapSize(rows: number, cols: number): { width: number; height: number } {
  const px = Math.min(14, 480 / Math.max(rows, cols));
  return { width: Math.round(cols * px), height: Math.round(rows * px) };
}

export function methodsChart(rows: readonly MethodRow[]): SVGSVGElement | HTMLElement {
  const pts = methodPoints(rows);
  // Room for the longest "name (METHOD)" label (≈ 6.5 px per character at the default font).
  const longest = Math.max(0, ...pts.map((p) => p.name.length));
  return Plot.plot({
    marginLeft: Math.min(320, Math.max(100, Math.ceil(longest * 6.5) + 12)),
    width: 700,
    height: 40 + 24 * rows.length,
    grid: true,
    x: { type: 'log', label: 'bytes / parameters (log scale)' },
    y: { label: null, domain: [...new Set(pts.map((p) => p.name))] },
    color: { legend: true, domain: ['file bytes', 'stored params', 'trainable params'] },
    marks: [Plot.dot(pts, { x: 'value', y: 'name', fill: 'metric', r: 5, tip: true })],
  });
}

/**
 * ΔW as a raster image (one pixel per entry, drawn on a canvas by Plot.raster): a 768×768 module
 * is 590k entries, far too many for one SVG element each.
 */
export function heatmap(data: ArrayLike<number>, rows: number, cols: number, title: string): SVGSVGElement | HTMLElement {
  const maxAbs = matrixMaxAbs(data, rows, cols);
  const { width, height } = heatmapSize(rows, cols);
  return Plot.plot({
    width: width + 60,
    height: height + 80,
    marginLeft: 40,
    marginRight: 20,
    x: { domain: [0, cols], label: 'in (n)', axis: 'top', ticks: [] },
    y: { domain: [0, rows], label: 'out (m)', ticks: [], reverse: true },
    color: { type: 'linear', scheme: 'RdBu', domain: [-maxAbs || -1, maxAbs || 1], reverse: true, legend: true, label: title },
    marks: [Plot.raster(Array.from(data), { width: cols, height: rows, x1: 0, y1: 0, x2: cols, y2: rows, imageRendering: 'pixelated' })],
  });
}
