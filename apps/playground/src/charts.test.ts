import { describe, expect, it } from 'vitest';
import { buildShape, createAdapter, deltaW, materializeAdapter } from '@tensorpeft/core';
import { formatBytesTick, formatCountTick, heatmapSize, matrixMaxAbs, methodPanels, methodPoints } from './charts.js';

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
  it('methodPanels: bytes and parameters on separate axes, every point in exactly one panel', () => {
    const rows = [
      { name: 'lora', method: 'LORA', trainable: 2048, stored: 2048, fileBytes: 9336 },
      { name: 'x', method: 'TRAC', trainable: 0, stored: 10, fileBytes: 100 },
    ];
    const [bytes, params] = methodPanels(rows);
    expect(bytes!.axis).toMatch(/bytes/);
    expect(bytes!.axis).not.toMatch(/param/);
    expect(params!.axis).toMatch(/parameters/);
    expect(params!.axis).not.toMatch(/bytes/);
    expect(bytes!.points.map((p) => [p.name, p.value])).toEqual([['lora (LORA)', 9336], ['x (TRAC)', 100]]);
    expect(params!.points.map((p) => [p.name, p.metric, p.value])).toEqual([
      ['lora (LORA)', 'stored params', 2048],
      ['lora (LORA)', 'trainable params', 2048],
      ['x (TRAC)', 'stored params', 10],
    ]);
  });
  it('tick labels: bytes in B/kB/MB, counts in k/M', () => {
    expect([0, 512, 1000, 9336, 1_250_000, 3e9].map(formatBytesTick)).toEqual(['0 B', '512 B', '1 kB', '9.3 kB', '1.3 MB', '3 GB']);
    expect([10, 999, 1000, 26_304, 17_160_000, 7e9].map(formatCountTick)).toEqual(['10', '999', '1k', '26k', '17M', '7B']);
  });
  it('matrixMaxAbs: the largest |v|, and a size check', () => {
    expect(matrixMaxAbs([1, -3, 2, 0, 0.5, 1], 2, 3)).toBe(3);
    expect(matrixMaxAbs([0, 0], 1, 2)).toBe(0);
    expect(() => matrixMaxAbs([1, 2], 2, 3)).toThrow(RangeError);
  });
  it('heatmapSize: small matrices get big pixels, large ones fit in 480 px', () => {
    expect(heatmapSize(4, 8)).toEqual({ width: 112, height: 56 });
    expect(heatmapSize(768, 768)).toEqual({ width: 480, height: 480 });
    expect(heatmapSize(3072, 768)).toEqual({ width: 120, height: 480 });
  });
  it('ΔW of a materialized module has m·n entries and is nonzero', async () => {
    const shape = buildShape('bert', { hiddenSize: 16, numLayers: 1, numHeads: 2, numKvHeads: 2, intermediateSize: 32 }, 'tiny');
    const a = createAdapter({ method: 'LORA', shape, nonzero: true, seed: 5 });
    const [u] = await materializeAdapter(a);
    expect(matrixMaxAbs(deltaW(u!), u!.m, u!.n)).toBeGreaterThan(0);
  });
});
