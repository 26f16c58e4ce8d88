/** CP / Khatri–Rao expansion (LoRTA's B′): one call of csrc/cp.c. */
import type { MatExpr } from '@tensorpeft/core';
import { OP, type Program, type Ptr } from '../program.js';
import { fail } from './shape.js';

type CpExpr = Extract<MatExpr, { kind: 'cp' }>;

export function checkCp(e: CpExpr): number {
  const { p, q, r } = e;
  if (e.inner.length !== p * r) fail('cp inner size', p * r, e.inner.length);
  if (e.outer.length !== q * r) fail('cp outer size', q * r, e.outer.length);
  if (e.scale && e.scale.length !== r) fail('cp scale length', r, e.scale.length);
  return q * p * r;
}

export function emitCp(p: Program, e: CpExpr, out: Ptr): void {
  if (checkCp(e) === 0) return;
  p.op(OP.CP, out, p.input(e.inner), e.p, p.input(e.outer), e.q, e.r, e.scale ? p.input(e.scale) : null);
}
