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

/** One chart of the methods panel: one unit per x axis (bytes and parameter counts never share one). */
export interface MethodPanel {
  title: string;
  axis: string;
  metrics: MethodPoint['metric'][];
  points: MethodPoint[];
  tick: (v: number) => string;
}

/** `512 B`, `9.3 kB`, `1.2 MB` (powers of 1000, as file sizes are shown by browsers). */
export function formatBytesTick(v: number): string {
  if (v < 1000) return `${Math.round(v)} B`;
  for (const [unit, f] of [['kB', 1e3], ['MB', 1e6], ['GB', 1e9]] as const) {
    if (v < f * 1000 || unit === 'GB') return `${+(v / f).toPrecision(2)} ${unit}`;
  }
  return `${v} B`;
}

/** `850`, `26k`, `1.2M` parameters. */
export function formatCountTick(v: number): string {
  if (v < 1000) return `${Math.round(v)}`;
  if (v < 1e6) return `${+(v / 1e3).toPrecision(2)}k`;
  if (v < 1e9) return `${+(v / 1e6).toPrecision(2)}M`;
  return `${+(v / 1e9).toPrecision(2)}B`;
}

/** The methods chart's two panels: file size in bytes, and parameters (stored, trainable). */
export function methodPanels(rows: readonly MethodRow[]): MethodPanel[] {
  const pts = methodPoints(rows);
  return [
    { title: 'File size', axis: 'adapter file (bytes, log scale)', metrics: ['file bytes'], points: pts.filter((p) => p.metric === 'file bytes'), tick: formatBytesTick },
    {
      title: 'Parameters',
      axis: 'parameters (count, log scale)',
      metrics: ['stored params', 'trainable params'],
      points: pts.filter((p) => p.metric !== 'file bytes'),
      tick: formatCountTick,
    },
  ];
}

export function methodsChart(rows: readonly MethodRow[]): HTMLElement {
  const names = [...new Set(methodPoints(rows).map((p) => p.name))];
  // Room for the longest "name (METHOD)" label (≈ 6.5 px per character at the default font).
  const longest = Math.max(0, ...names.map((n) => n.length));
  const box = document.createElement('div');
  box.className = 'method-panels';
  for (const panel of methodPanels(rows)) {
    const fig = document.createElement('figure');
    fig.dataset.panel = panel.title;
    const cap = document.createElement('figcaption');
    cap.textContent = panel.title;
    fig.append(
      cap,
      Plot.plot({
        marginLeft: Math.min(320, Math.max(100, Math.ceil(longest * 6.5) + 12)),
        marginBottom: 40,
        width: 700,
        height: 60 + 24 * rows.length,
        grid: true,
        x: { type: 'log', label: panel.axis, labelAnchor: 'center', labelArrow: 'none', tickFormat: panel.tick, ticks: 4 },
        y: { label: null, domain: names },
        color: { legend: panel.metrics.length > 1, domain: panel.metrics },
        marks: [Plot.dot(panel.points, { x: 'value', y: 'name', fill: 'metric', r: 5, tip: { format: { x: panel.tick } } })],
      }),
    );
    box.append(fig);
  }
  return box;
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

/**
 * The Train panel's live loss curve: training loss per optimizer step (line and dots), x from 1 to
 * the run's total steps so that the axis does not rescale while the run goes on.
 */
export function lossChart(points: readonly { step: number; loss: number }[], totalSteps: number): SVGSVGElement | HTMLElement {
  return Plot.plot({
    width: 520,
    height: 220,
    marginLeft: 50,
    grid: true,
    x: { domain: [1, Math.max(2, totalSteps)], label: 'optimizer step', labelAnchor: 'center', labelArrow: 'none' },
    // Not from zero: the change over a short run (a few % of the loss) must be visible.
    y: { label: 'training loss (cross-entropy)', labelArrow: 'none', nice: true },
    marks: [Plot.line(points, { x: 'step', y: 'loss', stroke: '#2b6cb0' }), Plot.dot(points, { x: 'step', y: 'loss', fill: '#2b6cb0', r: 2.5 })],
  });
}
