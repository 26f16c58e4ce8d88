/**
 * Tensor trains for the fits, float64. A TT over sizes `[f1, …, fK]` with ranks
 * `[1, r1, …, r_{K−1}, c]` (cores `[r_{k−1}, f_k, r_k]`) contracts to a `[f1·…·fK, c]` row-major
 * matrix with mode 1 slowest, the layout of the backends' `tt` expressions (c = 1 for LoRETTA's
 * flattened factors, c = r for TRAC's).
 *
 * - `ttForward` / `ttBackward`: contraction and its reverse-mode gradient (left partial products
 *   are kept from the forward pass).
 * - `ttSvd`: the classical left-to-right TT-SVD. With orthonormal left factors at every step, its
 *   squared error is exactly the sum of the squared singular values it discards at each step (the
 *   TRAC paper, Appendix B.1; the k-th step's matrix is the k-th unfolding *after* projection on
 *   the kept left factors). With the original unfoldings' tails τ_k it satisfies
 *   max_k τ_k ≤ err² ≤ Σ_k τ_k.
 * - `jointTtSvd`: right-to-left TT-SVD of several tensors at once whose cores 2…K are shared
 *   (TRAC's per-type cores): each step stacks the modules' unfoldings and keeps the leading right
 *   singular subspace, so its error is again exactly the sum of the discarded squared singular
 *   values of the stacked matrices.
 */
import { ShapeMismatchError } from '../errors.js';
import { matmul, matmulNT, solveRightSym, svd } from './linalg.js';

function prod(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

/** Check core lengths against sizes/ranks. */
function checkCores(cores: readonly ArrayLike<number>[], sizes: readonly number[], ranks: readonly number[]): void {
  if (ranks.length !== sizes.length + 1 || ranks[0] !== 1) {
    throw new ShapeMismatchError('TT ranks must be [1, r1, …, c] with one more entry than sizes', { expected: sizes.length + 1, found: ranks });
  }
  cores.forEach((c, k) => {
    const want = ranks[k]! * sizes[k]! * ranks[k + 1]!;
    if (c.length !== want) throw new ShapeMismatchError(`TT core ${k} has the wrong length`, { expected: want, found: c.length });
  });
}

/** Contract the cores; `lefts[k]` is the `[f1…f_k, r_k]` partial product (lefts[0] = [1]). */
export function ttForward(cores: readonly ArrayLike<number>[], sizes: readonly number[], ranks: readonly number[]): { out: Float64Array; lefts: Float64Array[] } {
  checkCores(cores, sizes, ranks);
  let acc: Float64Array = new Float64Array([1]);
  let P = 1;
  const lefts: Float64Array[] = [acc];
  for (let k = 0; k < sizes.length; k++) {
    const rl = ranks[k]!;
    const f = sizes[k]!;
    const rr = ranks[k + 1]!;
    // [P, rl] · [rl, f·rr] → [P, f·rr] = [P·f, rr]
    acc = matmul(acc, cores[k]!, P, rl, f * rr);
    P *= f;
    lefts.push(acc);
  }
  return { out: acc, lefts };
}

/** Gradients of the cores given dOut = ∂L/∂out (`[∏f, c]`). */
export function ttBackward(
  cores: readonly ArrayLike<number>[],
  sizes: readonly number[],
  ranks: readonly number[],
  lefts: readonly Float64Array[],
  dOut: ArrayLike<number>,
): Float64Array[] {
  const K = sizes.length;
  const grads: Float64Array[] = new Array(K);
  let dL: ArrayLike<number> = dOut;
  let P = prod(sizes);
  for (let k = K - 1; k >= 0; k--) {
    const rl = ranks[k]!;
    const f = sizes[k]!;
    const rr = ranks[k + 1]!;
    P /= f;
    // dL is [P·f, rr] = [P, f·rr]; lefts[k] is [P, rl].
    const L = lefts[k]!;
    const g = new Float64Array(rl * f * rr);
    const fr = f * rr;
    for (let p = 0; p < P; p++) {
      for (let a = 0; a < rl; a++) {
        const l = L[p * rl + a]!;
        if (l === 0) continue;
        const ga = a * fr;
        const dp = p * fr;
        for (let j = 0; j < fr; j++) g[ga + j]! += l * dL[dp + j]!;
      }
    }
    grads[k] = g;
    if (k > 0) {
      // dL_{k−1}[p, a] = Σ_{(i,b)} dL[p, (i,b)] · core[a, (i,b)]
      dL = matmulNT(dL, cores[k]!, P, fr, rl);
    }
  }
  return grads;
}

/** Σ_{j ≥ k} S_j². */
export function tailSq(S: ArrayLike<number>, k: number): number {
  let t = 0;
  for (let j = k; j < S.length; j++) t += S[j]! * S[j]!;
  return t;
}

/**
 * Left-to-right TT-SVD of `X` (`[∏ sizes, cols]`) with inner ranks `[r1, …, r_{K−1}]`. Ranks above
 * what a step can hold are padded with zero columns (the representation stays exact). Returns the
 * cores and the squared singular values discarded at each step.
 */
export function ttSvd(
  X: ArrayLike<number>,
  sizes: readonly number[],
  cols: number,
  inner: readonly number[],
): { cores: Float64Array[]; ranks: number[]; tails: number[]; err2: number } {
  const K = sizes.length;
  if (inner.length !== K - 1) throw new ShapeMismatchError('TT-SVD needs K − 1 inner ranks', { expected: K - 1, found: inner.length });
  const ranks = [1, ...inner, cols];
  const cores: Float64Array[] = [];
  const tails: number[] = [];
  let C = Float64Array.from(X as ArrayLike<number>);
  let rest = prod(sizes) * cols;
  for (let k = 0; k < K - 1; k++) {
    const rl = ranks[k]!;
    const f = sizes[k]!;
    const rr = ranks[k + 1]!;
    const rows = rl * f;
    rest /= f;
    const d = svd(C, rows, rest);
    const keep = Math.min(rr, d.p);
    tails.push(tailSq(d.S, keep));
    const core = new Float64Array(rows * rr);
    for (let i = 0; i < rows; i++) for (let c = 0; c < keep; c++) core[i * rr + c] = d.U[i * d.p + c]!;
    cores.push(core);
    const next = new Float64Array(rr * rest);
    for (let c = 0; c < keep; c++) for (let j = 0; j < rest; j++) next[c * rest + j] = d.S[c]! * d.V[j * d.p + c]!;
    C = next;
  }
  cores.push(C);
  return { cores, ranks, tails, err2: tails.reduce((a, b) => a + b, 0) };
}

/**
 * Right-to-left TT-SVD of several tensors `Xs[i]` (`[∏ sizes, cols]` each) whose cores 2…K are
 * shared: step k stacks the modules' current `[·, f_k·r_k]` unfoldings vertically and keeps the
 * top r_{k−1} right singular vectors as the shared core; the first core is per tensor. With one
 * tensor this is an ordinary (right-to-left) TT-SVD.
 */
export function jointTtSvd(
  Xs: readonly ArrayLike<number>[],
  sizes: readonly number[],
  cols: number,
  inner: readonly number[],
): { first: Float64Array[]; shared: Float64Array[]; ranks: number[]; tails: number[]; err2: number } {
  const K = sizes.length;
  const ranks = [1, ...inner, cols];
  const shared: Float64Array[] = new Array(K - 1);
  const tails: number[] = [];
  let Ms: Float64Array[] = Xs.map((x) => Float64Array.from(x as ArrayLike<number>));
  let P = prod(sizes);
  for (let k = K - 1; k >= 1; k--) {
    const f = sizes[k]!;
    const rr = ranks[k + 1]!;
    const rl = ranks[k]!;
    P /= f;
    const width = f * rr;
    // Stack [P, width] blocks.
    const Y = new Float64Array(Ms.length * P * width);
    Ms.forEach((M, i) => Y.set(M, i * P * width));
    const d = svd(Y, Ms.length * P, width, { u: false });
    const keep = Math.min(rl, d.p);
    tails.push(tailSq(d.S, keep));
    // core_k = Wᵀ reshaped [rl, f, rr]; W = V[:, :keep] ([width, rl]).
    const W = new Float64Array(width * rl);
    for (let j = 0; j < width; j++) for (let c = 0; c < keep; c++) W[j * rl + c] = d.V[j * d.p + c]!;
    const core = new Float64Array(rl * width);
    for (let c = 0; c < rl; c++) for (let j = 0; j < width; j++) core[c * width + j] = W[j * rl + c]!;
    shared[k - 1] = core;
    Ms = Ms.map((M) => matmul(M, W, P, width, rl)); // [P, rl]
  }
  return { first: Ms, shared, ranks, tails: tails.reverse(), err2: tails.reduce((a, b) => a + b, 0) };
}

/**
 * Least-squares first core of one tensor given the other cores: X ≈ G1 · R with
 * R = contraction of cores 2…K viewed `[r1, ∏_{k≥2} f_k·c]`; G1 = X⁽¹⁾ Rᵀ (R Rᵀ)⁺.
 */
export function fitFirstCore(X: ArrayLike<number>, rest: readonly ArrayLike<number>[], sizes: readonly number[], ranks: readonly number[]): Float64Array {
  const r1 = ranks[1]!;
  const f1 = sizes[0]!;
  // Contract cores 2..K into R: [r1, W].
  let R: Float64Array = Float64Array.from(rest[0]!);
  let width = sizes[1]! * ranks[2]!;
  for (let k = 2; k < sizes.length; k++) {
    // R [r1·∏, r_k] · core [r_k, f·r_{k+1}]
    const rows = (r1 * width) / ranks[k]!;
    R = matmul(R, rest[k - 1]!, rows, ranks[k]!, sizes[k]! * ranks[k + 1]!);
    width = (width / ranks[k]!) * sizes[k]! * ranks[k + 1]!;
  }
  const XRt = matmulNT(X, R, f1, width, r1); // [f1, r1]
  const RRt = matmulNT(R, R, r1, width, r1);
  return solveRightSym(XRt, RRt, f1, r1);
}
