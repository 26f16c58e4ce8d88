/**
 * The LRU byte budget with GPU-fed adapters, in Node: a registry over a fake ORT session (it records
 * the feeds of each run and finishes when the test says so) and fake WebGPU backends (they hand out
 * buffer objects with a `size` and count releases). Checks the accounting (`gpu_bytes` per adapter
 * and in `adapter_memory()`, a pool separate from the CPU-held bytes), that eviction releases the
 * buffers, that re-materialization goes to the adapter's own backend after making room, and that
 * no buffer is released while a run reads it (session runs, unload, stale views). The end-to-end
 * run on ORT-web's WebGPU EP is webgpu.test.ts.
 */
import { buildShape, createAdapter } from '@tensorpeft/core';
import { describe, expect, test } from 'vitest';
import { AdapterRegistry, type GpuMaterializer, type GpuModuleUpdateLike } from './plugin.js';

const shape = buildShape('bert', { hiddenSize: 8, numLayers: 2, numHeads: 2, numKvHeads: 2, intermediateSize: 16 });
const adapter = (seed: number) => createAdapter({ method: 'LORA', shape, nonzero: true, seed, config: { r: 2 } });

interface FakeBuffer {
  size: number;
  owner: string;
}

/** A stand-in for kernels-wgsl's WebGpuBackend: buffers sized like its pool's (here: rounded up to 256 bytes). */
function fakeGpu(owner: string, device = new Set<FakeBuffer>()) {
  const g = {
    live: new Set<FakeBuffer>(),
    /** Buffers alive on the device, across the backends sharing it. */
    device,
    released: 0,
    calls: 0,
    /** Device buffers alive when each materializeToGpu call began (0: the evicted ones were released first). */
    liveAtCall: [] as number[],
    async materializeToGpu(jobs: never): Promise<GpuModuleUpdateLike[]> {
      g.calls++;
      g.liveAtCall.push(g.device.size);
      await Promise.resolve();
      return (jobs as Array<{ path: string; n: number; m: number; rho: number }>).map((j) => {
        const A: FakeBuffer = { size: Math.ceil((j.n * j.rho * 4) / 256) * 256, owner };
        const B: FakeBuffer = { size: Math.ceil((j.rho * j.m * 4) / 256) * 256, owner };
        g.live.add(A).add(B);
        g.device.add(A).add(B);
        let done = false;
        return {
          path: j.path,
          n: j.n,
          m: j.m,
          rho: j.rho,
          A,
          B,
          release: () => {
            // Twice would put a buffer in the pool twice (two adapters sharing it): count it as an error.
            if (done) throw new Error('released twice');
            done = true;
            g.live.delete(A);
            g.live.delete(B);
            g.device.delete(A);
            g.device.delete(B);
            g.released += 2;
          },
        };
      });
    },
  };
  return g satisfies GpuMaterializer;
}

/** Sizes of the fake buffers of one adapter (what `gpu_bytes` must report). */
function gpuBytesOf(a: ReturnType<typeof adapter>): number {
  const jobs = a.method.jobs(a.config, a.plan, a.params) as Array<{ n: number; m: number; rho: number }>;
  return jobs.reduce((t, j) => t + Math.ceil((j.n * j.rho * 4) / 256) * 256 + Math.ceil((j.rho * j.m * 4) / 256) * 256, 0);
}

type Deferred = { feeds: Record<string, unknown>; finish: () => void };

/** A session with branch-mode adapter inputs for every module of `shape`; runs wait for `finish()`. */
function fakeSession() {
  const inputNames = ['input_ids'];
  const inputMetadata: Array<{ name: string; shape: Array<number | string> }> = [{ name: 'input_ids', shape: ['batch', 'seq'] }];
  shape.modules.forEach((mod, i) => {
    inputNames.push(`tensorpeft.${mod.path}.A`, `tensorpeft.${mod.path}.B`);
    inputMetadata.push({ name: `tensorpeft.${mod.path}.A`, shape: [mod.in, `rho_${i}`] }, { name: `tensorpeft.${mod.path}.B`, shape: [`rho_${i}`, mod.out] });
  });
  const runs: Deferred[] = [];
  const session = {
    inputNames,
    inputMetadata,
    run(feeds: Record<string, unknown>): Promise<Record<string, unknown>> {
      return new Promise((resolve) => runs.push({ feeds, finish: () => resolve({ logits: null }) }));
    },
  };
  return { session, runs };
}

/** The fake buffers a run was fed (GPU tensors of the adapter inputs). */
function fedBuffers(feeds: Record<string, unknown>): FakeBuffer[] {
  return Object.entries(feeds)
    .filter(([k, t]) => k.startsWith('tensorpeft.') && (t as { location?: string }).location === 'gpu-buffer')
    .map(([, t]) => (t as { gpuBuffer: FakeBuffer }).gpuBuffer);
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('LRU budget with GPU-fed adapters', () => {
  test('gpu_bytes are counted per adapter and in adapter_memory; the CPU and GPU pools are budgeted separately', async () => {
    const { session } = fakeSession();
    const gx = fakeGpu('x');
    const reg = new AdapterRegistry([session], { webgpu: gx });
    const ax = adapter(1);
    const per = gpuBytesOf(ax);
    const info = await reg.load_adapter('x', ax); // `webgpu` backend: GPU-fed by default
    // The buffers' own sizes (rounded up like a pool's), not n·ρ·4 + ρ·m·4.
    expect(info).toMatchObject({ bytes: 0, gpu_bytes: per, materialized: true });
    expect(per).toBeGreaterThan(shape.modules.filter((m) => /query|value/.test(m.path)).reduce((t, m) => t + (m.in * 2 + 2 * m.out) * 4, 0));
    const cpu = await reg.load_adapter('c', adapter(2), { gpu: null });
    expect(cpu.gpu_bytes).toBe(0);
    expect(cpu.bytes).toBeGreaterThan(0);
    expect(cpu.bytes).toBeLessThanOrEqual(per);
    expect(reg.adapter_memory()).toEqual({ materialized_bytes: cpu.bytes, gpu_bytes: per, max_adapter_bytes: Number.POSITIVE_INFINITY, evictions: 0, rematerializations: 0 });
    // Each pool fits `per`: nothing goes, though their sum does not fit.
    reg.set_max_adapter_bytes(per);
    expect(reg.adapter_memory()).toMatchObject({ materialized_bytes: cpu.bytes, gpu_bytes: per, evictions: 0 });
    // A second GPU-fed adapter puts the GPU pool over: the LRU GPU-fed one (x) goes, the CPU-fed one stays.
    const gy = fakeGpu('y');
    await reg.load_adapter('y', adapter(3), { gpu: gy });
    expect(reg.list_adapters().map((a) => [a.name, a.materialized])).toEqual([
      ['x', false],
      ['c', true],
      ['y', true],
    ]);
    expect(gx.live.size).toBe(0);
    expect(gx.released).toBe(2 * info.modules);
    expect(reg.adapter_memory()).toMatchObject({ materialized_bytes: cpu.bytes, gpu_bytes: per, evictions: 1 });
  });

  test('alternating two GPU-fed adapters under a budget of one: evict releases, re-materialization uses the same backend after making room', async () => {
    const { session, runs } = fakeSession();
    // Two backends on one device: each adapter must come back on its own backend.
    const gx = fakeGpu('x');
    const gy = fakeGpu('y', gx.device);
    const ax = adapter(1);
    const per = gpuBytesOf(ax);
    const reg = new AdapterRegistry([session], { webgpu: true, max_adapter_bytes: per });
    await reg.load_adapter('x', ax, { gpu: gx });
    await reg.load_adapter('y', adapter(4), { gpu: gy });
    expect(reg.adapter_memory()).toMatchObject({ gpu_bytes: per, evictions: 1, rematerializations: 0 });
    expect(gx.live.size).toBe(0);
    for (let round = 1; round <= 3; round++) {
      for (const [name, own, other] of [
        ['x', gx, gy],
        ['y', gy, gx],
      ] as const) {
        const calls = own.calls;
        reg.set_adapter(name);
        const out = session.run({ input_ids: null });
        await tick();
        const run = runs[runs.length - 1]!;
        // Fed from this adapter's own backend, re-materialized once, and only after the other
        // adapter's buffers were given back (so a pool hands them to this materialization).
        expect(own.calls).toBe(calls + 1);
        expect(own.liveAtCall[own.liveAtCall.length - 1]).toBe(0);
        expect(other.live.size).toBe(0);
        const fed = fedBuffers(run.feeds);
        expect(fed.length).toBe(2 * ax.plan.modules.length);
        expect(fed.every((b) => b.owner === name && own.live.has(b))).toBe(true);
        run.finish();
        await out;
        expect(reg.adapter_memory().gpu_bytes).toBe(per);
      }
    }
    // The first swap to x evicted y (once); the other five swaps each evicted the other one.
    expect(reg.adapter_memory()).toMatchObject({ gpu_bytes: per, evictions: 7, rematerializations: 6 });
    expect(gx.released + gy.released).toBe(7 * 2 * ax.plan.modules.length);
  });

  test('no buffer is released while a run reads it: session runs, unload, and a stale with_adapter view', async () => {
    const { session, runs } = fakeSession();
    const gx = fakeGpu('x');
    const gy = fakeGpu('y');
    const ax = adapter(1);
    const per = gpuBytesOf(ax);
    const reg = new AdapterRegistry([session], { webgpu: true });
    await reg.load_adapter('y', adapter(5), { gpu: gy });
    await reg.load_adapter('x', ax, { gpu: gx });
    reg.set_adapter('y');
    // A direct session.run (no model call around it) on y, still in progress …
    const yRun = session.run({ input_ids: null });
    await tick();
    const yFed = fedBuffers(runs[0]!.feeds);
    expect(yFed.length).toBe(2 * ax.plan.modules.length);
    // … while x becomes active and the budget drops to one adapter: y is the only candidate but a
    // run reads it, so it stays (over the budget) with its buffers.
    reg.set_adapter('x');
    reg.set_max_adapter_bytes(per);
    expect(reg.adapter_memory()).toMatchObject({ gpu_bytes: 2 * per, evictions: 0 });
    expect(yFed.every((b) => gy.live.has(b))).toBe(true);
    runs[0]!.finish();
    await yRun;
    // The run is over: the budget is re-applied and y's buffers go.
    expect(reg.adapter_memory()).toMatchObject({ gpu_bytes: per, evictions: 1 });
    expect(gy.live.size).toBe(0);

    // Unloading x during a run on it waits for the run's end.
    const xRun = session.run({ input_ids: null });
    await tick();
    const xFed = fedBuffers(runs[1]!.feeds);
    expect(xFed.length).toBeGreaterThan(0);
    const xView = reg.pinnedSessions({ s: session as never }, reg.entryFor('x')).s!;
    reg.unload_adapter('x');
    expect(reg.adapter_memory().gpu_bytes).toBe(0);
    expect(xFed.every((b) => gx.live.has(b))).toBe(true);
    runs[1]!.finish();
    await xRun;
    expect(gx.live.size).toBe(0);

    // A view taken before the unload still runs x: re-materialized on x's backend for the run,
    // released after it (its feeds do not point at the buffers given back above).
    const calls = gx.calls;
    const stale = xView.run({ input_ids: null });
    await tick();
    const staleFed = fedBuffers(runs[2]!.feeds);
    expect(gx.calls).toBe(calls + 1);
    expect(staleFed.length).toBe(xFed.length);
    expect(staleFed.every((b) => gx.live.has(b) && !xFed.includes(b))).toBe(true);
    runs[2]!.finish();
    await stale;
    expect(gx.live.size).toBe(0);
    expect(reg.adapter_memory().gpu_bytes).toBe(0);
  });
});
