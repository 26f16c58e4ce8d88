/**
 * TT chain contraction with the optional controller gate (TRAC, LoRETTA). The running result is a
 * [P, r] matrix (P = product of the mode sizes so far); the next core viewed as [r, size·rRight]
 * turns it into [P·size, rRight] with one GEMM whose output, read row-major, is exactly the next
 * [P, r] (csrc/gemm.c, NN). The gate scales a copy of the last core first (csrc/tt.c). The last
 * step writes straight into the output unless a transpose follows (csrc/dense.c).
 */
import type { MatExpr } from '@tensorpeft/core';
import { OP, type Program, type Ptr } from '../program.js';
import { emitGemm } from './gemm.js';
import { fail } from './shape.js';

type TTExpr = Extract<MatExpr, { kind: 'tt' }>;

/** Validate like the JS reference; returns the length of the contracted chain. */
export function checkTT(e: TTExpr): number {
  const { cores, gate } = e;
  if (cores.length === 0) fail('TT chain needs at least one core', '≥ 1 core', 0);
  if (cores[0]!.rLeft !== 1) fail('first TT core must have left rank 1', 1, cores[0]!.rLeft);
  let r = 1;
  let P = 1;
  cores.forEach((c, idx) => {
    if (c.rLeft !== r) fail(`TT core ${idx} left rank does not match previous right rank`, r, c.rLeft);
    if (c.data.length !== c.rLeft * c.size * c.rRight) fail(`TT core ${idx} data length`, c.rLeft * c.size * c.rRight, c.data.length);
    if (idx === cores.length - 1 && gate && (gate.rank.length !== c.rLeft || gate.mode.length !== c.size)) {
      fail('TT gate lengths', [c.rLeft, c.size], [gate.rank.length, gate.mode.length]);
    }
    P *= c.size;
    r = c.rRight;
  });
  const total = P * r;
  if (total !== e.rows * e.cols) fail('TT result size vs requested view', e.rows * e.cols, total);
  return total;
}

/** Emit the chain; `e` must have passed `checkTT` (materialize.ts validates every expression first). */
export function emitTT(p: Program, e: TTExpr, out: Ptr): void {
  const total = e.rows * e.cols;
  const last = e.cores.length - 1;
  const coreData = (idx: number): Ptr => {
    const c = e.cores[idx]!;
    if (idx !== last || !e.gate) return p.input(c.data);
    const g = p.temp(c.data.length);
    p.op(OP.GATE, g, p.input(c.data), p.input(e.gate.rank), p.input(e.gate.mode), c.rLeft, c.size, c.rRight);
    return g;
  };
  // The first core [1, size, rRight] already is the [P, r] matrix.
  let cur = coreData(0);
  let P = e.cores[0]!.size;
  let r = e.cores[0]!.rRight;
  for (let idx = 1; idx <= last; idx++) {
    const c = e.cores[idx]!;
    const N = c.size * c.rRight;
    const R = coreData(idx);
    const dst = idx === last && !e.transpose ? out : p.temp(P * N);
    emitGemm(p, { M: P, N, K: r, alpha: 1, L: cur, lda: r, R, rsj: 1, rsk: N, C: dst, ldc: N, accumulate: false });
    cur = dst;
    P *= c.size;
    r = c.rRight;
  }
  if (e.transpose) {
    // [rows, cols] → [cols, rows]
    p.op(OP.DENSE, out, cur, e.cols, e.cols, e.rows, 1, null, null);
  } else if (last === 0) {
    p.op(OP.DENSE, out, cur, total, 1, total, 0, null, null);
  }
}
