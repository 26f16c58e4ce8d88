/**
 * Tucker reconstruction (TensLoRA): per mode, contract with a vector, expand with a factor matrix,
 * or keep; and permute the surviving modes. Vector modes go first (they shrink the tensor before
 * anything expands), in mode order, then matrices in mode order — the JS reference's order. Each
 * step is one csrc/tucker.c mode product on the tensor viewed as [before, R_k, after] (run there
 * as tiled GEMMs on reshaped views, with a little scratch for packed panels: see
 * `modeProductScratch`). The permutation is applied where the tensor is smallest after the vector
 * contractions (`permuteAt`), usually before the factor expansions. Shapes, strides and the
 * permutation are worked out here.
 */
import type { MatExpr, TuckerMode } from '@tensorpeft/core';
import { OP, type Program, type Ptr } from '../program.js';
import { fail, prod } from './shape.js';

type TuckerExpr = Extract<MatExpr, { kind: 'tucker' }>;

export interface Step {
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

/**
 * Floats of scratch `tp_mode_product` needs (csrc/tucker.c): the 8-wide packed panels of U when
 * a matrix mode is the last one (one GEMM S·Uᵀ), else one ragged 8-column panel of the [rk, after]
 * slice when after is not a multiple of 8 (per-slice GEMMs U·S_b); vectors use none.
 */
export function modeProductScratch(rk: number, after: number, rows: number): number {
  if (rows === 1) return 0;
  if (after === 1) return Math.ceil(rows / 8) * 8 * rk;
  return after % 8 !== 0 ? 8 * rk : 0;
}

/**
 * After how many steps to apply the output permutation: where the tensor is smallest, once every
 * vector mode is contracted (from then on the modes are exactly the surviving ones that `order`
 * permutes; matrix steps only change their sizes). A mode product commutes with a permutation of
 * the other modes, and each output element is still the same float32 sums in the same order, so
 * the result is bit for bit that of permuting last; but permuting the small contracted core
 * (TensLoRA: 16·16·8 floats) instead of the expanded B′ (768·16 or 4096·16) makes the strided
 * permutation cheap, and the factor expansions then write B′ directly in its final layout.
 */
export function permuteAt(steps: readonly Step[], size: number): number {
  let at = steps.length;
  let best = size;
  for (let i = steps.length - 1; i >= 0 && steps[i]!.op.op !== 'vector'; i--) {
    const n = prod(steps[i]!.dims);
    if (n <= best) {
      best = n;
      at = i;
    }
  }
  return at;
}

export function emitTucker(p: Program, e: TuckerExpr, out: Ptr): void {
  const { steps, dims } = planTucker(e);
  const identity = e.order.every((v, i) => v === i);
  const size = prod(dims);
  if (size === 0) return;
  const at = identity ? steps.length : permuteAt(steps, size);
  let cur = p.input(e.core);
  /** Dims of `cur` in output order, once it is permuted. */
  let permuted: number[] | null = null;
  for (let i = 0; i <= steps.length; i++) {
    if (!identity && i === at) {
      // The surviving modes' current dims (before step i, or the final ones), permuted by order.
      const cdims = i < steps.length ? steps[i]!.dims : dims;
      const strides = cdims.map((_, t) => prod(cdims.slice(t + 1)));
      const outDims = e.order.map((o) => cdims[o]!);
      const srcStrides = e.order.map((o) => strides[o]!);
      const dst = i === steps.length ? out : p.temp(prod(cdims));
      p.op(OP.PERMUTE, dst, cur, outDims.length, ...outDims, ...srcStrides);
      cur = dst;
      permuted = outDims;
    }
    if (i === steps.length) break;
    const s = steps[i]!;
    // Once permuted, surviving mode s.k sits at output position order.indexOf(s.k).
    const k = permuted ? e.order.indexOf(s.k) : s.k;
    const sd = permuted ?? s.dims;
    const before = prod(sd.slice(0, k));
    const rk = sd[k]!;
    const after = prod(sd.slice(k + 1));
    const rows = s.op.op === 'vector' ? 1 : s.op.rows;
    const U = p.input(s.op.op === 'vector' ? s.op.v : s.op.U);
    const dst = i === steps.length - 1 && (identity || at < steps.length) ? out : p.temp(before * rows * after);
    const scratchLen = modeProductScratch(rk, after, rows);
    p.op(OP.MODEPROD, dst, cur, before, rk, after, U, rows, scratchLen > 0 ? p.temp(scratchLen) : null);
    if (permuted) {
      permuted = [...permuted];
      permuted[k] = rows;
    }
    cur = dst;
  }
  if (identity && steps.length === 0) p.op(OP.DENSE, out, cur, size, 1, size, 0, null, null);
}
