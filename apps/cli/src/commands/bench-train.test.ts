import { describe, expect, it } from 'vitest';
import { benchCommand } from './bench.js';

describe('tensorpeft bench train', () => {
  it('tiny DistilBERT: forward, step and ratio rows with spreads and load, and memory rows (structure only; no timed assertions)', async () => {
    let out = '';
    const code = await benchCommand(['train', '--size', 'tiny', '--seq', '16', '--batch', '2', '--repeats', '2', '--warmup', '1', '--method', 'lora', '--config', '{"r":2}', '--json'], { out: (t) => (out += `${t}\n`), err: () => {} });
    expect(code).toBe(0);
    const rows = JSON.parse(out) as Array<Record<string, unknown>>;
    expect(rows.map((r) => r['bench'])).toEqual([
      'train forward (loss, no backward)',
      'train step (forward + backward + AdamW)',
      'train step ÷ forward',
      'train forward working memory',
      'train step working memory',
      'train step ÷ forward working memory',
    ]);
    for (const r of rows) expect(r['shape']).toBe('distilbert-tiny, batch 2 × seq 16, lora {"r":2}');
    const [fwd, step, ratio, fmem, smem] = rows as Array<{ ms: number; min: number; max: number; ratio: number; bytes: number; repeats: number; load: number[] }>;
    for (const r of [fwd!, step!]) {
      expect(r.repeats).toBe(2);
      expect(r.min).toBeGreaterThan(0);
      expect(r.min).toBeLessThanOrEqual(r.ms);
      expect(r.ms).toBeLessThanOrEqual(r.max);
      expect(r.load).toHaveLength(2);
    }
    // The ratio row's median lies inside its own spread and is a positive finite number.
    expect(ratio!.ratio).toBeGreaterThan(0);
    expect(ratio!.min).toBeLessThanOrEqual(ratio!.ratio);
    expect(ratio!.ratio).toBeLessThanOrEqual(ratio!.max);
    // Working memory in bytes is an integer count (Linux /proc, 1 kB granularity) and may be 0 on tiny shapes.
    for (const m of [fmem!, smem!]) expect(Number.isInteger(m.bytes) && m.bytes % 1024 === 0).toBe(true);
  });

  it('rejects a size it does not know', async () => {
    await expect(benchCommand(['train', '--size', 'huge'], { out: () => {}, err: () => {} })).rejects.toThrow(/--size must be base or tiny/);
  });
});
