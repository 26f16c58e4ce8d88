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

export interface Cell {
  row: number;
  col: number;
  v: number;
}

/** A row-major [rows × cols] matrix as cells, and its largest |v| (for a symmetric color scale). */
export function matrixCells(data: ArrayLike<number>, rows: number, cols: number): { cells: Cell[]; maxAbs: number } {
  if (data.length !== rows * cols) throw new RangeError(`matrix of ${data.length} values is not ${rows}×${cols}`);
  const cells: Cell[] = new Array(rows * cols);
  let maxAbs = 0;
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const v = data[i * cols + j]!;
      cells[i * cols + j] = { row: i, col: j, v };
      if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
    }
  }
  return { cells, maxAbs };
}

export function methodsChart(rows: readonly MethodRow[]): SVGSVGElement | HTMLElement {
  const pts = methodPoints(rows);
  return Plot.plot({
    marginLeft: 140,
    width: 640,
    height: 40 + 24 * rows.length,
    grid: true,
    x: { type: 'log', label: 'bytes / parameters (log scale)' },
    y: { label: null, domain: [...new Set(pts.map((p) => p.name))] },
    color: { legend: true, domain: ['file bytes', 'stored params', 'trainable params'] },
    marks: [Plot.dot(pts, { x: 'value', y: 'name', fill: 'metric', r: 5, tip: true })],
  });
}

export function heatmap(data: ArrayLike<number>, rows: number, cols: number, title: string): SVGSVGElement | HTMLElement {
  const { cells, maxAbs } = matrixCells(data, rows, cols);
  const px = Math.max(4, Math.min(14, Math.floor(420 / Math.max(rows, cols))));
  return Plot.plot({
    width: 60 + cols * px,
    height: 60 + rows * px,
    marginLeft: 40,
    padding: 0,
    x: { label: 'in (n)', axis: 'top', ticks: [] },
    y: { label: 'out (m)', ticks: [] },
    color: { type: 'linear', scheme: 'RdBu', domain: [-maxAbs || -1, maxAbs || 1], reverse: true, legend: true, label: title },
    marks: [Plot.cell(cells, { x: 'col', y: 'row', fill: 'v', inset: 0 })],
  });
}
