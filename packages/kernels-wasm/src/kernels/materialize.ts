/**
 * Batched materialization: every module of an adapter in one call into wasm. All jobs' A′ and B′
 * expressions are compiled into one program (src/program.ts) — inputs shared between modules
 * (TT cores, factors, VeRA's projections) are copied in once — then `tp_run` executes it and the
 * outputs are read back. With worker threads (src/threads.ts) the jobs are spread over lanes by
 * estimated cost and the lanes run at the same time on the shared memory.
 *
 * Only an adapter whose buffers would pass `maxCallBytes` (default 64 MiB: every BERT-base adapter
 * and TRAC/LoRETTA/LoRTA/TensLoRA on LLaMA-2-7B q,v fit; VeRA r=256 on LLaMA-2-7B, 0.5 GB of
 * A′/B′, takes 9 calls) is split into several calls, so wasm memory stays bounded and hot:
 * reusing 64 MiB beats growing to 0.5 GB and faulting it in.
 */
import type { MatExpr, MaterializeJob, ModuleUpdate } from '@tensorpeft/core';
import type { Heap } from '../heap.js';
import { checkStatus, Program, runLane, type Ptr } from '../program.js';
import type { ThreadPool } from '../threads.js';
import { jobCost } from './cost.js';
import { checkCp, emitCp } from './cp.js';
import { checkDense, emitDense } from './dense.js';
import { fail, prod } from './shape.js';
import { checkTT, emitTT } from './tt.js';
import { emitTucker, planTucker } from './tucker.js';

/** Number of floats an expression evaluates to (validating it like the JS reference). */
export function exprLength(e: MatExpr): number {
  switch (e.kind) {
    case 'tt':
      return checkTT(e);
    case 'dense':
      return checkDense(e);
    case 'cp':
      return checkCp(e);
    case 'tucker':
      return prod(planTucker(e).dims);
  }
}

/** Emit `e` into `out`; `e` must have been validated by `exprLength` (every caller does). */
export function emitExpr(p: Program, e: MatExpr, out: Ptr): void {
  p.resetTemps();
  switch (e.kind) {
    case 'tt':
      return emitTT(p, e, out);
    case 'dense':
      return emitDense(p, e, out);
    case 'cp':
      return emitCp(p, e, out);
    case 'tucker':
      return emitTucker(p, e, out);
  }
}

export function evaluateWasm(heap: Heap, e: MatExpr): Float32Array {
  const p = new Program();
  emitExpr(p, e, p.output(exprLength(e)));
  return p.run(heap)[0]!;
}

function emitJob(p: Program, j: MaterializeJob): void {
  const a = exprLength(j.a);
  const b = exprLength(j.b);
  if (a !== j.n * j.rho) fail(`A′ of ${j.path} must be [n, ρ]`, [j.n, j.rho], a);
  if (b !== j.m * j.rho) fail(`B′ of ${j.path} must be [m, ρ]`, [j.m, j.rho], b);
  emitExpr(p, j.a, p.output(a));
  emitExpr(p, j.b, p.output(b));
}

export const DEFAULT_MAX_CALL_BYTES = 64 * 1024 * 1024;
/** Below this estimated cost (≈ FLOPs) a call stays on one thread: messages would cost more. */
export const THREAD_MIN_COST = 1e6;

/** Jobs grouped into programs of at most `maxCallBytes`, each spread over `lanes` lanes. */
export function compileJobs(jobs: readonly MaterializeJob[], lanes: number, maxCallBytes = DEFAULT_MAX_CALL_BYTES): Array<{ program: Program; jobs: MaterializeJob[] }> {
  // One lane (the default, single-threaded): no cost estimates, no load balancing.
  const laneCount = lanes > 1 && jobs.reduce((a, j) => a + jobCost(j), 0) >= THREAD_MIN_COST ? Math.max(1, Math.min(lanes, jobs.length)) : 1;
  const groups: Array<{ program: Program; jobs: MaterializeJob[] }> = [];
  let p = new Program(laneCount);
  let batch: MaterializeJob[] = [];
  let load = new Array<number>(laneCount).fill(0);
  const emit = (j: MaterializeJob) => {
    if (laneCount === 1) return emitJob(p, j);
    // Greedy balance: the next job goes to the least loaded lane.
    const lane = load.indexOf(Math.min(...load));
    load[lane]! += jobCost(j);
    p.useLane(lane);
    emitJob(p, j);
  };
  for (const j of jobs) {
    const mark = p.mark();
    const before = laneCount === 1 ? load : [...load];
    emit(j);
    if (p.bytes > maxCallBytes && batch.length > 0) {
      p.rollback(mark);
      load = before;
      groups.push({ program: p, jobs: batch });
      p = new Program(laneCount);
      batch = [];
      load = new Array<number>(laneCount).fill(0);
      emit(j);
    }
    batch.push(j);
  }
  if (batch.length > 0) groups.push({ program: p, jobs: batch });
  return groups;
}

function updates(jobs: readonly MaterializeJob[], outs: Float32Array[]): ModuleUpdate[] {
  return jobs.map((j, i) => ({ path: j.path, n: j.n, m: j.m, rho: j.rho, s: j.s, A: outs[2 * i]!, B: outs[2 * i + 1]! }));
}

/** Single-threaded: every lane (there is one) on this thread. */
export function materializeWasm(heap: Heap, jobs: readonly MaterializeJob[], maxCallBytes = DEFAULT_MAX_CALL_BYTES): ModuleUpdate[] {
  return compileJobs(jobs, 1, maxCallBytes).flatMap(({ program, jobs: js }) => updates(js, program.run(heap)));
}

/**
 * With worker threads: lane 0 here, lanes 1… on the pool's workers, concurrently. Lanes a failed
 * worker did not finish are run here afterwards (they only write their own outputs and temps).
 */
export async function materializeThreaded(heap: Heap, pool: ThreadPool, jobs: readonly MaterializeJob[], maxCallBytes = DEFAULT_MAX_CALL_BYTES): Promise<ModuleUpdate[]> {
  const out: ModuleUpdate[] = [];
  for (const { program, jobs: js } of compileJobs(jobs, pool.size + 1, maxCallBytes)) {
    const prepared = program.prepare(heap);
    if (prepared.lanes.length === 1) {
      checkStatus(runLane(heap, prepared.lanes[0]![0], prepared.lanes[0]![1]));
      out.push(...updates(js, prepared.read()));
      continue;
    }
    const [own, ...rest] = prepared.lanes;
    const remote = pool.run(rest, prepared.outputs.slice(1));
    checkStatus(runLane(heap, own![0], own![1]));
    const perLane = [prepared.readLane(0)];
    const results = await remote;
    results.forEach((r, i) => {
      const lane = i + 1;
      if (typeof r.status === 'string' && r.status.startsWith('worker failed')) {
        checkStatus(runLane(heap, rest[i]![0], rest[i]![1]));
        perLane[lane] = prepared.readLane(lane);
      } else {
        checkStatus(r.status);
        perLane[lane] = r.outs;
      }
    });
    out.push(...updates(js, prepared.assemble(perLane)));
  }
  return out;
}
