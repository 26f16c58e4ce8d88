/**
 * Page side of the browser tests (bundled into each browser entry by esbuild; no Node imports):
 * the kernel cases every backend runs, prepared in Node and sent through `wire`.
 */
import type { Backend, MatExpr, MaterializeJob, ModuleUpdate, WeightLayout } from '@tensorpeft/core';

export { revive } from './wire.js';

/** A kernel call whose outputs the test compares in Node with the JS reference. */
export type KernelCase =
  | { op: 'evaluate'; expr: MatExpr }
  | { op: 'materialize'; jobs: MaterializeJob[] }
  | { op: 'merge'; W: Float32Array; layout: WeightLayout; u: ModuleUpdate }
  | { op: 'apply'; X: Float32Array; Y: Float32Array; rows: number; u: ModuleUpdate };

/** Run one case on `backend`; its output arrays as plain numbers. */
export async function runKernelCase(backend: Backend, c: KernelCase): Promise<number[][]> {
  switch (c.op) {
    case 'evaluate':
      return [Array.from(await backend.evaluate(c.expr))];
    case 'materialize':
      return (await backend.materialize(c.jobs)).flatMap((u) => [Array.from(u.A), Array.from(u.B)]);
    case 'merge':
      await backend.merge(c.W, c.layout, c.u);
      return [Array.from(c.W)];
    case 'apply':
      await backend.apply(c.X, c.Y, c.rows, c.u);
      return [Array.from(c.Y)];
  }
}
