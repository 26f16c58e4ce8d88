/**
 * Tucker reconstruction (TensLoRA): per mode, contract with a vector, expand with a factor matrix,
 * or keep; then permute the surviving modes. Vector modes go first (they shrink the tensor before
 * anything expands), in mode order, then matrices in mode order — the JS reference's order. Each
 * step is one csrc/tucker.c mode product on the tensor viewed as [before, R_k, after]; shapes,
 * strides and the permutation are worked out here.
 */
import type { MatExpr, TuckerMode } from '@tensorpeft/core';
import { OP, type Program, type Ptr } from '../program.js';
import { fail, prod } from './shape.js';

type TuckerExpr = Extract<MatExpr, { kind: 'tucker' }>;

interface Step {
  mode: number;
  /** Position of the mode among the current (surviving) modes. */
  k: number;
  dims: number[];
  op: Exclude<TuckerMode, { op: 'keep' }>;
}

/** The mode-product sequence and the final dims, validated like the JS reference. */
export function planTucker(e: TuckerExpr): { steps: Step[]; dims: number[] } {
  const { modes, coreDims, core, order } = e;
  if (modes.length !== coreDims.length) fail('Tucker: one mode op per core mode', coreDims.length, modes.length);
  const total = prod(coreDims);
  if (core.length !== total) fail('Tucker core length', total, core.length);
  let dims = [...coreDims];
  let alive = modes.map((_, i) => i);
  const sequence = [...modes.keys()].sort((x, y) => Number(modes[y]!.op === 'vector') - Number(modes[x]!.op === 'vector'));
  const steps: Step[] = [];
  for (const mi of sequence) {
    const op = modes[mi]!;
    const k = alive.indexOf(mi);
    if (op.op === 'keep') continue;
    if (op.op === 'vector') {
      if (op.v.length !== dims[k]) fail(`Tucker mode ${mi} vector length`, dims[k], op.v.length);
      steps.push({ mode: mi, k, dims: [...dims], op });
      dims.splice(k, 1);
      alive = alive.filter((x) => x !== mi);
    } else {
      if (op.U.length !== op.rows * dims[k]!) fail(`Tucker mode ${mi} factor size`, op.rows * dims[k]!, op.U.length);
      steps.push({ mode: mi, k, dims: [...dims], op });
      dims = [...dims];
      dims[k] = op.rows;
    }
  }
  if (order.length !== dims.length || [...order].sort((a, b) => a - b).some((v, i) => v !== i)) {
    fail('Tucker output order must be a permutation of the surviving modes', dims.length, order);
  }
  const size = prod(dims);
  if (size !== e.rows * e.cols) fail('Tucker result size vs requested view', e.rows * e.cols, size);
  return { steps, dims };
}

export function emitTucker(p: Program, e: TuckerExpr, out: Ptr): void {
  const { steps, dims } = planTucker(e);
  const identity = e.order.every((v, i) => v === i);
  const size = prod(dims);
  if (size === 0) return;
  let cur = p.input(e.core);
  steps.forEach((s, i) => {
    const before = prod(s.dims.slice(0, s.k));
    const rk = s.dims[s.k]!;
    const after = prod(s.dims.slice(s.k + 1));
    const rows = s.op.op === 'vector' ? 1 : s.op.rows;
    const U = p.input(s.op.op === 'vector' ? s.op.v : s.op.U);
    const dst = i === steps.length - 1 && identity ? out : p.temp(before * rows * after);
    p.op(OP.MODEPROD, dst, cur, before, rk, after, U, rows);
    cur = dst;
  });
  if (!identity) {
    const strides = dims.map((_, i) => prod(dims.slice(i + 1)));
    const outDims = e.order.map((o) => dims[o]!);
    const srcStrides = e.order.map((o) => strides[o]!);
    p.op(OP.PERMUTE, out, cur, outDims.length, ...outDims, ...srcStrides);
  } else if (steps.length === 0) {
    p.op(OP.DENSE, out, cur, size, 1, size, 0, null, null);
  }
}
