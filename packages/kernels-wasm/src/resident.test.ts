/**
 * Resident buffers (src/resident.ts): merge on a W that lives in wasm memory equals the JS
 * reference, views survive memory growth through the `view` getter, the allocator reuses freed
 * blocks, and misuse (after free, after release, a stray wasm-memory view) fails clearly.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { JsBackend, type ModuleUpdate, type WeightLayout } from '@tensorpeft/core';
import { WasmBackend } from './backend.js';
import { WasmKernelError } from './errors.js';
import { expectWithin, mulberry32, randF32 } from './test-utils/compare.js';

const js = new JsBackend();
let wasm: WasmBackend;
beforeAll(async () => {
  wasm = await WasmBackend.create();
});

const absUpdate = (u: ModuleUpdate): ModuleUpdate => ({ ...u, s: Math.abs(u.s), A: u.A.map(Math.abs), B: u.B.map(Math.abs) });
const size = (max: number) => fc.oneof(fc.constant(1), fc.integer({ min: 1, max }));

async function checkResidentMerge(m: number, n: number, rho: number, layout: WeightLayout, seed: number): Promise<void> {
  const rng = mulberry32(seed);
  const u: ModuleUpdate = { path: 'w', n, m, rho, s: rng() * 4 - 2, A: randF32(n * rho, rng), B: randF32(m * rho, rng) };
  const W0 = randF32(m * n, rng);
  const res = wasm.allocResident(m * n);
  try {
    res.view.set(W0);
    const [y, yAbs] = [W0.slice(), W0.map(Math.abs)];
    await wasm.merge(res.view, layout, u);
    await js.merge(y, layout, u);
    await js.merge(yAbs, layout, absUpdate(u));
    expectWithin(res.view, y, yAbs, rho + 2, `resident merge ${layout} ${m}x${n}x${rho}`);
  } finally {
    res.free();
  }
}

describe('resident buffers', () => {
  it('allocResident gives a zero-filled view of wasm memory', () => {
    const a = wasm.allocResident(37);
    a.view.fill(5);
    a.free();
    const b = wasm.allocResident(37); // reuses the freed block: must be zeroed again
    expect(b.view.length).toBe(37);
    expect(b.view.buffer).toBe((wasm as unknown as { heap: { k: { memory: WebAssembly.Memory } } }).heap.k.memory.buffer);
    expect(Array.from(b.view).every((v) => v === 0)).toBe(true);
    b.free();
  });

  it('merge on a resident W matches JS in both layouts (random shapes)', async () => {
    await fc.assert(
      fc.asyncProperty(size(41), size(41), size(19), fc.constantFrom<WeightLayout>('out_in', 'in_out'), fc.integer({ min: 0, max: 1e9 }), (m, n, rho, layout, seed) =>
        checkResidentMerge(m, n, rho, layout, seed),
      ),
      { numRuns: 40 },
    );
  });

  it('merge on a tall resident W (several row chunks) matches JS and leaves neighbours alone', async () => {
    const before = wasm.allocResident(101);
    before.view.fill(1);
    for (const layout of ['out_in', 'in_out'] as const) await checkResidentMerge(203, 4099, 5, layout, 11);
    const after = wasm.allocResident(101);
    after.view.fill(2);
    await checkResidentMerge(300, 1029, 16, 'out_in', 12);
    expect(Array.from(before.view).every((v) => v === 1)).toBe(true);
    expect(Array.from(after.view).every((v) => v === 2)).toBe(true);
    before.free();
    after.free();
  });

  it('a JS-owned W and a resident W give identical results', async () => {
    const rng = mulberry32(5);
    const [m, n, rho] = [96, 200, 16];
    const u: ModuleUpdate = { path: 'w', n, m, rho, s: 1.5, A: randF32(n * rho, rng), B: randF32(m * rho, rng) };
    const W0 = randF32(m * n, rng);
    const x = W0.slice();
    await wasm.merge(x, 'out_in', u);
    const res = wasm.allocResident(m * n);
    res.view.set(W0);
    await wasm.merge(res.view, 'out_in', u);
    expect(Array.from(res.view)).toEqual(Array.from(x));
    res.free();
  });

  it('the view getter survives memory growth (old views detach, data stays)', async () => {
    const b = await WasmBackend.create();
    const res = b.allocResident(1000);
    const old = res.view;
    old.fill(3);
    const big = b.allocResident(16 * 1024 * 1024); // 64 MiB: memory must grow
    expect(old.length).toBe(0); // detached by growth (non-shared memory)
    expect(res.view.length).toBe(1000);
    expect(Array.from(res.view).every((v) => v === 3)).toBe(true);
    // A merge that grows memory: pass the view, read the result through the getter afterwards.
    big.free();
    const rng = mulberry32(9);
    const u: ModuleUpdate = { path: 'w', n: 40, m: 25, rho: 3, s: 1, A: randF32(120, rng), B: randF32(75, rng) };
    const R = b.allocResident(1000);
    const y = randF32(1000, rng);
    R.view.set(y);
    await js.merge(y, 'out_in', u);
    await b.merge(R.view, 'out_in', u);
    const yAbs = new Float32Array(1000).fill(1e3);
    expectWithin(R.view, y, yAbs, 5);
    // A stale (detached) view is rejected with the usual shape error, not silently ignored.
    await expect(b.merge(old, 'out_in', { ...u, n: 40, m: 25 })).rejects.toThrow(/weight/);
    res.free();
    R.free();
    b.release();
  });

  it('rejects use after free, after release, and stray views of wasm memory', async () => {
    const b = await WasmBackend.create();
    const res = b.allocResident(64);
    const stale = res.view;
    res.free();
    res.free(); // idempotent
    expect(() => res.view).toThrow(WasmKernelError);
    const u: ModuleUpdate = { path: 'w', n: 8, m: 8, rho: 1, s: 1, A: new Float32Array(8), B: new Float32Array(8) };
    await expect(b.merge(stale, 'out_in', u)).rejects.toThrow(/outside any live resident buffer/);
    const kept = b.allocResident(64);
    b.release();
    expect(() => kept.view).toThrow(/released/);
    expect(() => b.allocResident(4)).toThrow(WasmKernelError);
    // After release the backend re-instantiates on its next async call and works again.
    const W = new Float32Array(64);
    await b.merge(W, 'out_in', { ...u, A: new Float32Array(8).fill(1), B: new Float32Array(8).fill(1) });
    expect(W[0]).toBe(1);
    expect(b.allocResident(4).view.length).toBe(4);
  });

  it('freed blocks are reused and the top of the region shrinks', () => {
    const heap = (wasm as unknown as { heap: { base: number; residentBytes: number } }).heap;
    const base0 = heap.base;
    const a = wasm.allocResident(100);
    const b = wasm.allocResident(100);
    const c = wasm.allocResident(100);
    expect(heap.base).toBeGreaterThan(base0);
    b.free();
    const d = wasm.allocResident(50);
    expect(d.byteOffset).toBe(b.byteOffset);
    a.free();
    c.free();
    d.free();
    expect(heap.base).toBe(base0);
    expect(heap.residentBytes).toBe(0);
  });

  it('reserve() pre-grows memory so later resident allocations keep views attached', async () => {
    const b = await WasmBackend.create();
    b.reserve(8 * 1024 * 1024);
    const a = b.allocResident(1024);
    const v = a.view;
    b.allocResident(1024 * 1024);
    expect(v.length).toBe(1024);
    expect(v).toBe(a.view);
    b.release();
  });
});
