/** FLOPs of an expression as the kernels evaluate it (2 per multiply-add), for load balancing and the bench. */
import type { MatExpr, MaterializeJob } from '@tensorpeft/core';

export function exprFlops(e: MatExpr): number {
  switch (e.kind) {
    case 'tt': {
      let P = e.cores[0]!.size;
      let f = 0;
      for (const c of e.cores.slice(1)) {
        f += 2 * P * c.rLeft * c.size * c.rRight;
        P *= c.size;
      }
      return f + (e.gate ? e.cores[e.cores.length - 1]!.data.length : 0);
    }
    case 'dense':
      return ((e.rowScale ? 1 : 0) + (e.colScale ? 1 : 0)) * e.takeRows * e.takeCols;
    case 'cp':
      return (e.scale ? 2 : 1) * e.p * e.q * e.r;
    case 'tucker': {
      let dims = [...e.coreDims];
      let alive = e.modes.map((_, i) => i);
      let f = 0;
      const order = [...e.modes.keys()].sort((x, y) => Number(e.modes[y]!.op === 'vector') - Number(e.modes[x]!.op === 'vector'));
      for (const mi of order) {
        const op = e.modes[mi]!;
        const k = alive.indexOf(mi);
        const total = dims.reduce((a, b) => a * b, 1);
        if (op.op === 'vector') {
          f += 2 * total;
          dims.splice(k, 1);
          alive = alive.filter((x) => x !== mi);
        } else if (op.op === 'matrix') {
          f += 2 * total * op.rows;
          dims = [...dims];
          dims[k] = op.rows;
        }
      }
      return f;
    }
  }
}

export function jobsFlops(jobs: readonly MaterializeJob[]): number {
  return jobs.reduce((a, j) => a + exprFlops(j.a) + exprFlops(j.b), 0);
}

/** Relative cost of a job: FLOPs plus a weight for the floats it writes (memory-bound kernels). */
export function jobCost(j: MaterializeJob): number {
  return exprFlops(j.a) + exprFlops(j.b) + 8 * (j.n + j.m) * j.rho;
}
