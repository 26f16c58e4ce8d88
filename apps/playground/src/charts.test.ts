import { describe, expect, it } from 'vitest';
import { buildShape, createAdapter, deltaW, materializeAdapter } from '@tensorpeft/core';
import { matrixCells, methodPoints } from './charts.js';

describe('chart data', () => {
  it('methodPoints: three metrics per adapter, zeros left out of the log scale', () => {
    const pts = methodPoints([
      { name: 'lora', method: 'LORA', trainable: 2048, stored: 2048, fileBytes: 9336 },
      { name: 'x', method: 'TRAC', trainable: 0, stored: 10, fileBytes: 100 },
    ]);
    expect(pts).toEqual([
      { name: 'lora (LORA)', metric: 'file bytes', value: 9336 },
      { name: 'lora (LORA)', metric: 'stored params', value: 2048 },
      { name: 'lora (LORA)', metric: 'trainable params', value: 2048 },
      { name: 'x (TRAC)', metric: 'file bytes', value: 100 },
      { name: 'x (TRAC)', metric: 'stored params', value: 10 },
    ]);
  });
  it('matrixCells: row-major cells and the largest |v|', () => {
    const { cells, maxAbs } = matrixCells([1, -3, 2, 0, 0.5, 1], 2, 3);
    expect(cells[1]).toEqual({ row: 0, col: 1, v: -3 });
    expect(cells[5]).toEqual({ row: 1, col: 2, v: 1 });
    expect(maxAbs).toBe(3);
    expect(() => matrixCells([1, 2], 2, 3)).toThrow(RangeError);
  });
  it('ΔW of a materialized module fills its [m, n] heatmap', async () => {
    const shape = buildShape('bert', { hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 2, intermediateSize: 32 }, 'tiny');
    const a = createAdapter({ method: 'LORA', shape, nonzero: true, seed: 5 });
    const [u] = await materializeAdapter(a);
    const { cells, maxAbs } = matrixCells(deltaW(u!), u!.m, u!.n);
    expect(cells.length).toBe(u!.m * u!.n);
    expect(maxAbs).toBeGreaterThan(0);
  });
});
