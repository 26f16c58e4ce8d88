/**
 * Thread scaling rows of `bench kernels` (issue 16): the wasm backend with 1 and with 2 threads
 * (`WasmBackend.create({ threads })`, the threaded build on a shared memory, threads.ts) on the merge
 * rows and on whole-adapter materialization, in one process. The two backends alternate within
 * each round (which one goes first alternates too); a row's ratio is the median over rounds of the
 * 1-thread time ÷ the 2-thread time of that round (> 1: the second thread helps), with its spread
 * and the load average, since the machine these run on is shared.
 */
import { createAdapter, getMethod, listMethods, materializeAdapter, presetShape, Prng, type ModuleUpdate } from '@tensorpeft/core';
import { WasmBackend } from './backend.js';
import { jobsFlops } from './kernels/cost.js';

export interface ThreadRow {
  kernel: string;
  shape: string;
  backend: string;
  ms: number;
  gflops: number;
  /** 2-thread rows: speed-up over 1 thread (median of per-round ratios). */
  ratio?: number;
  note?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

async function loadavg1(): Promise<number | undefined> {
  if (typeof process === 'undefined' || !process.versions?.node) return undefined;
  const name = 'node:os';
  const os = (await import(/* @vite-ignore */ name)) as typeof import('node:os');
  return os.loadavg()[0];
}

/**
 * Rows for `materialize` of each method's bench adapter on `models` and for `merge` at `mergeShapes`
 * (m × n × ρ), 1 vs 2 threads. `merge` has no threaded path (one call on the calling thread): its
 * rows show that, rather than assume it.
 */
export async function runThreadBench(opts: {
  quick?: boolean;
  log?: (l: string) => void;
  configs: Record<string, Record<string, unknown>>;
  models: readonly string[];
  mergeShapes: ReadonlyArray<readonly [number, number, number]>;
}): Promise<ThreadRow[]> {
  const rounds = opts.quick ? 3 : 7;
  const reps = opts.quick ? 2 : 3;
  const log = opts.log ?? (() => undefined);
  const one = await WasmBackend.create({ threads: 1 });
  const two = await WasmBackend.create({ threads: 2 });
  const rows: ThreadRow[] = [];
  try {
    const got = await two.threadsReady();
    const load0 = await loadavg1();
    const pair = async (kernel: string, shape: string, flops: number, run: (b: WasmBackend) => Promise<unknown>): Promise<void> => {
      await run(one);
      await run(two);
      const t: Record<1 | 2, number[]> = { 1: [], 2: [] };
      for (let r = 0; r < rounds; r++) {
        for (const k of (r % 2 ? [2, 1] : [1, 2]) as Array<1 | 2>) {
          const b = k === 1 ? one : two;
          const xs: number[] = [];
          for (let i = 0; i < reps; i++) {
            const t0 = performance.now();
            await run(b);
            xs.push(performance.now() - t0);
          }
          t[k].push(median(xs));
        }
      }
      const ratios = t[1].map((x, i) => x / t[2][i]!);
      const load1 = await loadavg1();
      const loadNote = load0 === undefined ? '' : `; load average ${load0.toFixed(2)} → ${load1!.toFixed(2)}`;
      const ms1 = median(t[1]);
      const ms2 = median(t[2]);
      rows.push({ kernel: `threads:${kernel}`, shape, backend: 'wasm 1 thread', ms: ms1, gflops: flops / ms1 / 1e6 });
      rows.push({
        kernel: `threads:${kernel}`,
        shape,
        backend: `wasm ${got} threads`,
        ms: ms2,
        gflops: flops / ms2 / 1e6,
        ratio: median(ratios),
        note: `speed-up over 1 thread (spread ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}, ${rounds} rounds)${loadNote}${got < 2 ? `; threads unavailable: ${two.threadsUnavailable ?? '?'}` : ''}`,
      });
      log(`threads ${kernel} ${shape}: 1 thread ${ms1.toFixed(2)} ms, ${got} threads ${ms2.toFixed(2)} ms (×${median(ratios).toFixed(2)})`);
    };
    for (const [m, n, rho] of opts.mergeShapes) {
      const g = new Prng(7, 'threads');
      const rand = (k: number) => Float32Array.from({ length: k }, () => g.uniform() - 0.5);
      const W = rand(m * n);
      const u: ModuleUpdate = { path: 'w', n, m, rho, s: 2, A: rand(n * rho), B: rand(m * rho) };
      await pair('merge', `${m}x${n}x${rho}`, 2 * m * n * rho, (b) => b.merge(W, 'out_in', u));
    }
    for (const model of opts.models) {
      const shape = presetShape(model);
      for (const method of listMethods()) {
        const config = opts.configs[method.peftType];
        if (!config) continue;
        const adapter = createAdapter({ method: getMethod(method.peftType), config, shape, seed: 0, nonzero: true });
        const flops = jobsFlops(adapter.method.jobs(adapter.config, adapter.plan, adapter.params));
        await pair(`materialize:${method.cliName}`, model, flops, (b) => materializeAdapter(adapter, b));
      }
    }
  } finally {
    one.release();
    two.release();
  }
  return rows;
}
