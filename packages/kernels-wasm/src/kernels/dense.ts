/**
 * Dense sub-block / transpose / row-column scaling (VeRA, LoRA, LoRTA's A′, TensLoRA's U_in):
 * one call of csrc/dense.c.
 */
import type { MatExpr } from '@tensorpeft/core';
import { OP, type Program, type Ptr } from '../program.js';
import { fail } from './shape.js';

type DenseExpr = Extract<MatExpr, { kind: 'dense' }>;

export function checkDense(e: DenseExpr): number {
  if (e.src.length !== e.rows * e.cols) fail('dense source size', e.rows * e.cols, e.src.length);
  if (e.takeRows > e.rows || e.takeCols > e.cols) fail('dense block larger than source', [e.rows, e.cols], [e.takeRows, e.takeCols]);
  const oR = e.transpose ? e.takeCols : e.takeRows;
  const oC = e.transpose ? e.takeRows : e.takeCols;
  if (e.rowScale && e.rowScale.length !== oR) fail('dense rowScale length', oR, e.rowScale.length);
  if (e.colScale && e.colScale.length !== oC) fail('dense colScale length', oC, e.colScale.length);
  return oR * oC;
}

export function emitDense(p: Program, e: DenseExpr, out: Ptr): void {
  checkDense(e);
  const oR = e.transpose ? e.takeCols : e.takeRows;
  const oC = e.transpose ? e.takeRows : e.takeCols;
  if (oR * oC === 0) return;
  p.op(
    OP.DENSE,
    out,
    p.input(e.src),
    e.cols,
    oR,
    oC,
    e.transpose ? 1 : 0,
    e.rowScale ? p.input(e.rowScale) : null,
    e.colScale ? p.input(e.colScale) : null,
  );
}
