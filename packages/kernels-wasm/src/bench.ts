/**
 * Kernel benchmark (`tensorpeft bench kernels`): merge, branch apply, Tucker reconstruction and
 * whole-adapter materialization, timed on each given backend in one run so that the ratios are comparable.
 * Times are medians of repeated calls after a warm-up (see timeMs); FLOPs are counted from the
 * shapes (2 per multiply-add; element-wise products count their multiplies).
 */
import {
  createAdapter,
  getMethod,
  listMethods,
  materializeAdapter,
  presetShape,
  Prng,
  type Backend,
  type MatExpr,
  type ModuleUpdate,
} from '@tensorpeft/core';
import { exprFlops, jobsFlops } from './kernels/cost.js';
import { runThreadBench } from './bench-threads.js';

export { jobsFlops };

/** A backend with resident buffers (the wasm backend's `allocResident`). */
interface ResidentCapable {
  allocResident(length: number): { readonly view: Float32Array; free(): void };
}

export interface BenchRow {
  kernel: string;
  shape: string;
  backend: string;
  ms: number;
  gflops: number;
  /** Thread rows (bench-threads.ts): speed-up of 2 threads over 1. */
  ratio?: number;
  note?: string;
}

export interface BenchOptions {
  /** Fewer repetitions (shapes stay the same). */
  quick?: boolean;
  /** Progress lines (e.g. to stderr). */
  log?: (line: string) => void;
  /** Which kernel groups to run (default all). */
  only?: Array<'merge' | 'apply' | 'tucker' | 'materialize' | 'threads'>;
  /**
   * Every row group at small shapes (`TINY_SHAPES`): checks the bench's wiring in seconds (CI);
   * its numbers are not the bench's and not comparable with it.
   */
  tiny?: boolean;
}

/** m × n × ρ of the merge rows (W is [m, n], torch layout). */
export const MERGE_SHAPES: Array<[number, number, number]> = [
  [768, 768, 16],
  [768, 3072, 16],
  [4096, 4096, 16],
];

/** rows, n, m, ρ of the apply rows. */
export const APPLY_SHAPES: Array<[number, number, number, number]> = [
  [128, 768, 768, 16],
  [128, 4096, 4096, 16],
];

/** Whole-adapter configs per method (RoBERTa/BERT GLUE settings of the papers; q,v targets). */
export const BENCH_CONFIGS: Record<string, Record<string, unknown>> = {
  LORA: { r: 8, lora_alpha: 16 },
  VERA: { r: 256 },
  TRAC: { r: 16, lora_alpha: 32, tensor_rank_a: [1, 8, 12], tensor_rank_b: [1, 24, 36] },
  LORETTA: { r: 8, lora_alpha: 16, tensor_rank: 5 },
  LORTA: { r: 8, lora_alpha: 8 },
  TENSLORA: { construction: 'att_qkv_depth', ranks: [16, 16, 8, 2, 8] },
};

export const BENCH_MODELS = ['bert-base', 'llama2-7b'];

/**
 * The `tiny` bench: merge and apply on 64 × 64 (ρ 4), Tucker and materialization on BERT-base only
 * (the method configs above are set for the presets' dims), thread rows on the small merge only.
 */
export const TINY_SHAPES = {
  merge: [[64, 64, 4]] as Array<[number, number, number]>,
  apply: [[8, 64, 64, 4]] as Array<[number, number, number, number]>,
  models: ['bert-base'],
};

type TuckerExpr = Extract<MatExpr, { kind: 'tucker' }>;

/**
 * The Tucker rows: B′ of one module of the bench's TensLoRA adapter (`BENCH_CONFIGS.TENSLORA`,
 * att_qkv_depth, core 16×16×8×2×8) on `model`, i.e. two vector contractions (qkv, depth), two
 * factor expansions (out_head, heads) and the permutation to [m, R_in]; plus the same expression
 * with the identity permutation ("no permute"), which times the mode products alone.
 */
export function tuckerBenchExprs(model: string): Array<{ shape: string; expr: TuckerExpr }> {
  const adapter = createAdapter({ method: getMethod('TENSLORA'), config: BENCH_CONFIGS.TENSLORA!, shape: presetShape(model), seed: 0, nonzero: true });
  const job = adapter.method.jobs(adapter.config, adapter.plan, adapter.params)[0]!;
  const b = job.b;
  if (b.kind !== 'tucker') throw new Error(`bench: TensLoRA B′ is a ${b.kind} expression, expected tucker`);
  const core = b.coreDims.join('x');
  const surviving = b.modes.map((m, i) => (m.op === 'matrix' ? m.rows : b.coreDims[i]!)).filter((_, i) => b.modes[i]!.op !== 'vector');
  const noPermute: TuckerExpr = { ...b, order: surviving.map((_, i) => i), rows: surviving.slice(0, -1).reduce((a, x) => a * x, 1), cols: surviving[surviving.length - 1]! };
  return [
    { shape: `${model} B′ ${b.rows}x${b.cols} core ${core}`, expr: b },
    { shape: `${model} B′ ${b.rows}x${b.cols} core ${core} no permute`, expr: noPermute },
  ];
}

/**
 * Median of repeated calls. Warm-up first, for at least `warmMs` (and one call): JS functions get
 * optimized and wasm functions tier up from V8's baseline compiler only after many calls, and the
 * first calls grow memory; steady state is what a server or a page swapping adapters sees.
 */
async function timeMs(fn: () => Promise<unknown>, quick: boolean): Promise<number> {
  const warmMs = quick ? 60 : 300;
  const budget = quick ? 150 : 1000;
  const maxReps = quick ? 10 : 100;
  const minReps = quick ? 1 : 3;
  const w0 = performance.now();
  for (let i = 0; i < 1000 && (i === 0 || performance.now() - w0 < warmMs); i++) await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxReps && (times.length < minReps || performance.now() - start < budget)) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function randomData(len: number, g: Prng): Float32Array {
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = 2 * g.uniform() - 1;
  return out;
}

const row = (kernel: string, shape: string, backend: string, ms: number, flops: number): BenchRow => ({
  kernel,
  shape,
  backend,
  ms: Number(ms.toPrecision(4)),
  gflops: Number((flops / ms / 1e6).toPrecision(4)),
});

export async function runKernelBench(backends: readonly Backend[], opts: BenchOptions = {}): Promise<BenchRow[]> {
  const quick = opts.quick ?? false;
  const log = opts.log ?? (() => {});
  const only = new Set(opts.only ?? ['merge', 'apply', 'tucker', 'materialize', 'threads']);
  const mergeShapes = opts.tiny ? TINY_SHAPES.merge : MERGE_SHAPES;
  const applyShapes = opts.tiny ? TINY_SHAPES.apply : APPLY_SHAPES;
  const models = opts.tiny ? TINY_SHAPES.models : BENCH_MODELS;
  const g = new Prng(7, 'bench');
  const rows: BenchRow[] = [];

  if (only.has('merge')) {
    for (const [m, n, rho] of mergeShapes) {
      const u: ModuleUpdate = { path: 'w', n, m, rho, s: 2, A: randomData(n * rho, g), B: randomData(m * rho, g) };
      const W = randomData(m * n, g);
      for (const b of backends) {
        const ms = await timeMs(() => b.merge(W, 'out_in', u), quick);
        rows.push(row('merge', `${m}x${n}x${rho}`, b.name, ms, 2 * m * n * rho));
        log(`merge ${m}x${n}x${rho} ${b.name}: ${ms.toFixed(3)} ms`);
        // A backend that can keep W in its own memory (wasm: allocResident) also gets a row for
        // that mode, named "<backend>-resident": W lives there, merge updates it in place.
        const res = (b as Partial<ResidentCapable>).allocResident?.(m * n);
        if (res) {
          res.view.set(W);
          const msR = await timeMs(() => b.merge(res.view, 'out_in', u), quick);
          res.free();
          rows.push(row('merge', `${m}x${n}x${rho}`, `${b.name}-resident`, msR, 2 * m * n * rho));
          log(`merge ${m}x${n}x${rho} ${b.name}-resident: ${msR.toFixed(3)} ms`);
        }
      }
    }
  }

  if (only.has('apply')) {
    for (const [r, n, m, rho] of applyShapes) {
      const u: ModuleUpdate = { path: 'w', n, m, rho, s: 2, A: randomData(n * rho, g), B: randomData(m * rho, g) };
      const X = randomData(r * n, g);
      const Y = randomData(r * m, g);
      for (const b of backends) {
        const ms = await timeMs(() => b.apply(X, Y, r, u), quick);
        rows.push(row('apply', `${r}x${n}x${m}x${rho}`, b.name, ms, 2 * r * rho * (n + m)));
        log(`apply ${r} rows ${n}->${m} ρ${rho} ${b.name}: ${ms.toFixed(3)} ms`);
      }
    }
  }

  if (only.has('tucker')) {
    for (const model of models) {
      for (const { shape, expr } of tuckerBenchExprs(model)) {
        const flops = exprFlops(expr);
        for (const b of backends) {
          const ms = await timeMs(() => b.evaluate(expr), quick);
          rows.push(row('tucker', shape, b.name, ms, flops));
          log(`tucker ${shape} ${b.name}: ${ms.toFixed(3)} ms`);
        }
      }
    }
  }

  if (only.has('materialize')) {
    for (const model of models) {
      const shape = presetShape(model);
      for (const method of listMethods()) {
        const config = BENCH_CONFIGS[method.peftType];
        if (!config) continue;
        const adapter = createAdapter({ method: getMethod(method.peftType), config, shape, seed: 0, nonzero: true });
        const targets = [...new Set(adapter.plan.modules.map((mod) => mod.type.split('.').pop()!.replace(/_proj$/, '').replace(/^(query|value|key)$/, (s) => s[0]!)))];
        const label = `${model} ${targets.join(',')}`;
        const flops = jobsFlops(adapter.method.jobs(adapter.config, adapter.plan, adapter.params));
        for (const b of backends) {
          const ms = await timeMs(() => materializeAdapter(adapter, b), quick);
          rows.push(row(`materialize:${method.cliName}`, label, b.name, ms, flops));
          log(`materialize ${method.cliName} ${label} ${b.name}: ${ms.toFixed(3)} ms`);
        }
      }
    }
  }
  // 1 vs 2 wasm threads on the merge and materialize rows (BERT-base adapters; issue 16).
  if (only.has('threads')) rows.push(...(await runThreadBench({ quick, log, configs: BENCH_CONFIGS, models: ['bert-base'], mergeShapes: opts.tiny ? TINY_SHAPES.merge : MERGE_SHAPES.slice(0, 2) })));
  return rows;
}
