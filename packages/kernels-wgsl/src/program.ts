/**
 * A program: one heap layout plus the list of kernel dispatches that evaluate some expressions
 * (one module, or every module of an adapter), compiled on the CPU, then encoded into ONE command
 * buffer and submitted once (backend.ts). Shapes are validated here, before anything reaches the
 * GPU, with the same ShapeMismatchError messages as the JS reference backend.
 *
 * Heap layout: a bump allocator over float32 elements. Input arrays are uploaded once per
 * program even when several expressions share them (by identity: shared tensors of a method are
 * stored and uploaded once).
 */
import { ShapeMismatchError, type MatExpr, type ModuleUpdate, type TuckerMode, type WeightLayout } from '@tensorpeft/core';
import { WebGpuKernelError } from './errors.js';
import { EW, MAX_PERMUTE_DIMS, SLOT_WORDS, TILE, type KernelName } from './shaders.js';

export interface Dispatch {
  kernel: KernelName;
  params: Uint32Array;
  groups: [number, number, number];
}

const MAX_GROUPS = 65535;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bits = (x: number): number => {
  f32[0] = x;
  return u32[0]!;
};

function fail(what: string, expected: unknown, found: unknown): never {
  throw new ShapeMismatchError(what, { expected, found });
}

interface Gemm {
  M: number;
  N: number;
  K: number;
  batch?: number;
  a: [number, number, number, number?];
  b: [number, number, number, number?];
  c: [number, number, number, number?];
  accumulate?: boolean;
  alpha?: number;
}

export class Program {
  /** Heap size in float32 elements. */
  size = 0;
  readonly uploads: Array<{ off: number; data: Float32Array }> = [];
  /** GPU buffers copied into the heap before the kernels run. */
  readonly gpuInputs: Array<{ off: number; buffer: GPUBuffer; len: number }> = [];
  readonly dispatches: Dispatch[] = [];
  private readonly inputs = new Map<Float32Array, number>();
  private oneOff = -1;

  alloc(len: number): number {
    const off = this.size;
    this.size += len;
    return off;
  }

  input(data: Float32Array): number {
    const known = this.inputs.get(data);
    if (known !== undefined) return known;
    const off = this.alloc(data.length);
    if (data.length) this.uploads.push({ off, data });
    this.inputs.set(data, off);
    return off;
  }

  inputGpu(buffer: GPUBuffer, len: number): number {
    const off = this.alloc(len);
    if (len) this.gpuInputs.push({ off, buffer, len });
    return off;
  }

  private one(): number {
    if (this.oneOff < 0) this.oneOff = this.input(new Float32Array([1]));
    return this.oneOff;
  }

  private push(kernel: KernelName, words: number[], groups: [number, number, number]): void {
    if (groups.some((g) => g === 0)) return;
    if (groups.some((g) => g > MAX_GROUPS)) {
      throw new WebGpuKernelError('problem too large for one dispatch', { expected: `≤ ${MAX_GROUPS} workgroups per dimension`, found: groups });
    }
    const params = new Uint32Array(SLOT_WORDS);
    params.set(words);
    this.dispatches.push({ kernel, params, groups });
  }

  private elementwise(kernel: KernelName, total: number, words: number[]): void {
    const groups = Math.ceil(total / EW);
    const gx = Math.min(groups, MAX_GROUPS);
    this.push(kernel, words, [gx, gx === 0 ? 0 : Math.ceil(groups / gx), 1]);
  }

  /** Batched strided GEMM (see the shader). */
  gemm(g: Gemm): void {
    const batch = g.batch ?? 1;
    const [cOff, cRs, cCs, cBs = 0] = g.c;
    const order = cCs === 1 ? 0 : cRs === 1 ? 1 : 0;
    this.push(
      'gemm',
      [g.M, g.N, g.K, g.a[0], g.a[1], g.a[2], g.a[3] ?? 0, g.b[0], g.b[1], g.b[2], g.b[3] ?? 0, cOff, cRs, cCs, cBs, g.accumulate ? 1 : 0, bits(g.alpha ?? 1), order],
      [Math.ceil(g.N / TILE), Math.ceil(g.M / TILE), batch],
    );
  }

  /** out[dst + i·C + j] = src[i·sRow + j·sCol] (· rowScale[i]) (· colScale[j]) (· α). */
  gather(R: number, C: number, src: number, sRow: number, sCol: number, dst: number, rs?: number, cs?: number, alpha?: number): void {
    const flags = (rs !== undefined ? 1 : 0) | (cs !== undefined ? 2 : 0) | (alpha !== undefined ? 4 : 0);
    this.elementwise('gather', R * C, [R, C, src, sRow, sCol, dst, rs ?? 0, cs ?? 0, flags, bits(alpha ?? 1)]);
  }

  copy(src: number, dst: number, len: number): void {
    this.gather(1, len, src, 0, 1, dst);
  }

  // -------------------------------------------------------------------------------------------
  // Expressions

  /** Emit the dispatches that evaluate `e` into `dst` (its `[rows, cols]` result, row-major). */
  expr(e: MatExpr, dst: number): void {
    switch (e.kind) {
      case 'tt':
        return this.tt(e, dst);
      case 'dense':
        return this.dense(e, dst);
      case 'cp':
        return this.cp(e, dst);
      case 'tucker':
        return this.tucker(e, dst);
    }
  }

  static exprLength(e: MatExpr): number {
    switch (e.kind) {
      case 'tt':
      case 'tucker':
        return e.rows * e.cols;
      case 'dense':
        return e.takeRows * e.takeCols;
      case 'cp':
        return e.q * e.p * e.r;
    }
  }

  private tt(e: Extract<MatExpr, { kind: 'tt' }>, dst: number): void {
    const { cores, gate } = e;
    if (cores.length === 0) fail('TT chain needs at least one core', '≥ 1 core', 0);
    if (cores[0]!.rLeft !== 1) fail('first TT core must have left rank 1', 1, cores[0]!.rLeft);
    let P = 1;
    let r = 1;
    cores.forEach((core, idx) => {
      if (core.rLeft !== r) fail(`TT core ${idx} left rank does not match previous right rank`, r, core.rLeft);
      if (core.data.length !== core.rLeft * core.size * core.rRight) fail(`TT core ${idx} data length`, core.rLeft * core.size * core.rRight, core.data.length);
      if (idx === cores.length - 1 && gate && (gate.rank.length !== core.rLeft || gate.mode.length !== core.size)) {
        fail('TT gate lengths', [core.rLeft, core.size], [gate.rank.length, gate.mode.length]);
      }
      P *= core.size;
      r = core.rRight;
    });
    if (P * r !== e.rows * e.cols) fail('TT result size vs requested view', e.rows * e.cols, P * r);
    let acc = this.one();
    P = 1;
    r = 1;
    cores.forEach((core, idx) => {
      const last = idx === cores.length - 1;
      const { size, rRight } = core;
      let coreOff = this.input(core.data);
      if (last && gate) {
        const g = this.alloc(core.data.length);
        this.elementwise('gate', core.data.length, [core.rLeft, size, rRight, coreOff, this.input(gate.rank), this.input(gate.mode), g]);
        coreOff = g;
      }
      const out = last && !e.transpose ? dst : this.alloc(P * size * rRight);
      // next[(p·size + i)·rR + j] = Σ_a acc[p·r + a] · core[(a·size + i)·rR + j], batched over i.
      this.gemm({ M: P, N: rRight, K: r, batch: size, a: [acc, r, 1, 0], b: [coreOff, size * rRight, 1, rRight], c: [out, size * rRight, 1, rRight] });
      acc = out;
      P *= size;
      r = rRight;
    });
    // [rows, cols] viewed, then transposed: out[i, j] = full[j·cols + i].
    if (e.transpose) this.gather(e.cols, e.rows, acc, 1, e.cols, dst);
  }

  private dense(e: Extract<MatExpr, { kind: 'dense' }>, dst: number): void {
    if (e.src.length !== e.rows * e.cols) fail('dense source size', e.rows * e.cols, e.src.length);
    if (e.takeRows > e.rows || e.takeCols > e.cols) fail('dense block larger than source', [e.rows, e.cols], [e.takeRows, e.takeCols]);
    const oR = e.transpose ? e.takeCols : e.takeRows;
    const oC = e.transpose ? e.takeRows : e.takeCols;
    if (e.rowScale && e.rowScale.length !== oR) fail('dense rowScale length', oR, e.rowScale.length);
    if (e.colScale && e.colScale.length !== oC) fail('dense colScale length', oC, e.colScale.length);
    const src = this.input(e.src);
    const rs = e.rowScale ? this.input(e.rowScale) : undefined;
    const cs = e.colScale ? this.input(e.colScale) : undefined;
    if (e.transpose) this.gather(oR, oC, src, 1, e.cols, dst, rs, cs);
    else this.gather(oR, oC, src, e.cols, 1, dst, rs, cs);
  }

  private cp(e: Extract<MatExpr, { kind: 'cp' }>, dst: number): void {
    const { p, q, r } = e;
    if (e.inner.length !== p * r) fail('cp inner size', p * r, e.inner.length);
    if (e.outer.length !== q * r) fail('cp outer size', q * r, e.outer.length);
    if (e.scale && e.scale.length !== r) fail('cp scale length', r, e.scale.length);
    const sc = e.scale ? this.input(e.scale) : 0;
    this.elementwise('cp', q * p * r, [p, q, r, this.input(e.inner), this.input(e.outer), sc, e.scale ? 1 : 0, dst]);
  }

  private tucker(e: Extract<MatExpr, { kind: 'tucker' }>, dst: number): void {
    const { core, coreDims, modes, order } = e;
    if (modes.length !== coreDims.length) fail('Tucker: one mode op per core mode', coreDims.length, modes.length);
    const total = coreDims.reduce((a, b) => a * b, 1);
    if (core.length !== total) fail('Tucker core length', total, core.length);
    let t = this.input(core);
    const dims = [...coreDims];
    let alive = modes.map((_, i) => i);
    // Same sequence as the reference: vectors first (they shrink the tensor), then matrices.
    const sequence = [...modes.keys()].sort((x, y) => Number(modes[y]!.op === 'vector') - Number(modes[x]!.op === 'vector'));
    for (const mi of sequence) {
      const op: TuckerMode = modes[mi]!;
      const k = alive.indexOf(mi);
      if (op.op === 'keep') continue;
      const before = dims.slice(0, k).reduce((a, b) => a * b, 1);
      const Rk = dims[k]!;
      const after = dims.slice(k + 1).reduce((a, b) => a * b, 1);
      let U: number;
      let rows: number;
      if (op.op === 'vector') {
        if (op.v.length !== Rk) fail(`Tucker mode ${mi} vector length`, Rk, op.v.length);
        U = this.input(op.v);
        rows = 1;
      } else {
        if (op.U.length !== op.rows * Rk) fail(`Tucker mode ${mi} factor size`, op.rows * Rk, op.U.length);
        U = this.input(op.U);
        rows = op.rows;
      }
      const out = this.alloc(before * rows * after);
      // out[(b·rows + i)·after + c] = Σ_a U[i·Rk + a] · t[(b·Rk + a)·after + c], batched over b.
      this.gemm({ M: rows, N: after, K: Rk, batch: before, a: [U, Rk, 1, 0], b: [t, after, 1, Rk * after], c: [out, after, 1, rows * after] });
      t = out;
      if (op.op === 'vector') {
        dims.splice(k, 1);
        alive = alive.filter((x) => x !== mi);
      } else {
        dims[k] = rows;
      }
    }
    if (order.length !== dims.length || [...order].sort((a, b) => a - b).some((v, i) => v !== i)) {
      fail('Tucker output order must be a permutation of the surviving modes', dims.length, order);
    }
    const len = dims.reduce((a, b) => a * b, 1);
    if (len !== e.rows * e.cols) fail('Tucker result size vs requested view', e.rows * e.cols, len);
    if (order.every((v, i) => v === i)) {
      this.copy(t, dst, len);
      return;
    }
    if (dims.length > MAX_PERMUTE_DIMS) throw new WebGpuKernelError('Tucker output permutation has too many modes', { expected: `≤ ${MAX_PERMUTE_DIMS}`, found: dims.length });
    const strides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
    const words = [dims.length, len, t, dst];
    for (let d = 0; d < MAX_PERMUTE_DIMS; d++) words.push(d < dims.length ? dims[order[d]!]! : 1);
    for (let d = 0; d < MAX_PERMUTE_DIMS; d++) words.push(d < dims.length ? strides[order[d]!]! : 0);
    this.elementwise('permute', len, words);
  }

  // -------------------------------------------------------------------------------------------
  // Merge and apply

  /** `W += s·B′A′ᵀ` on heap offsets (W `[m, n]` for out_in, `[n, m]` for in_out). */
  merge(W: number, layout: WeightLayout, u: ModuleUpdate, A: number, B: number): void {
    const { n, m, rho } = u;
    const c: [number, number, number] = layout === 'out_in' ? [W, n, 1] : [W, 1, m];
    this.gemm({ M: m, N: n, K: rho, a: [B, rho, 1], b: [A, 1, rho], c, accumulate: true, alpha: u.s });
  }

  /** `Y[rows, m] += s·(X[rows, n]·A′)·B′ᵀ` on heap offsets. */
  apply(X: number, Y: number, rows: number, u: ModuleUpdate, A: number, B: number): void {
    const { n, m, rho } = u;
    const T = this.alloc(rows * rho);
    this.gemm({ M: rows, N: rho, K: n, a: [X, n, 1], b: [A, rho, 1], c: [T, rho, 1] });
    this.gemm({ M: rows, N: m, K: rho, a: [T, rho, 1], b: [B, 1, rho], c: [Y, m, 1], accumulate: true, alpha: u.s });
  }
}
