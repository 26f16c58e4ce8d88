/**
 * Small dense float64 linear algebra for the conversion fits: products, Householder QR, one-sided
 * Jacobi SVD, Jacobi symmetric eigendecomposition, and symmetric solves. Matrices are row-major
 * `Float64Array`s with explicit dimensions. Everything here is meant for the *small* matrices of
 * factored computations (r × r Grams, QR of n × r factors, unfoldings with one small side); no
 * routine here is ever handed an `m × n` weight-sized matrix.
 */

/** C = A·B with A `[m, k]`, B `[k, n]`. */
export function matmul(A: ArrayLike<number>, B: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const C = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const a = A[i * k + p]!;
      if (a === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) C[ci + j]! += a * B[bp + j]!;
    }
  }
  return C;
}

/** C = Aᵀ·B with A `[k, m]`, B `[k, n]` → `[m, n]`. */
export function matmulTN(A: ArrayLike<number>, B: ArrayLike<number>, k: number, m: number, n: number): Float64Array {
  const C = new Float64Array(m * n);
  for (let p = 0; p < k; p++) {
    const ap = p * m;
    const bp = p * n;
    for (let i = 0; i < m; i++) {
      const a = A[ap + i]!;
      if (a === 0) continue;
      const ci = i * n;
      for (let j = 0; j < n; j++) C[ci + j]! += a * B[bp + j]!;
    }
  }
  return C;
}

/** C = A·Bᵀ with A `[m, k]`, B `[n, k]` → `[m, n]`. */
export function matmulNT(A: ArrayLike<number>, B: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const C = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += A[ai + p]! * B[bj + p]!;
      C[i * n + j] = s;
    }
  }
  return C;
}

export function transpose(A: ArrayLike<number>, m: number, n: number): Float64Array {
  const T = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) T[j * m + i] = A[i * n + j]!;
  return T;
}

/** Gram matrix AᵀA (`[k, k]`) of a row-major `[rows, k]` matrix. */
export function gramT(A: ArrayLike<number>, rows: number, k: number): Float64Array {
  const G = new Float64Array(k * k);
  for (let r = 0; r < rows; r++) {
    const o = r * k;
    for (let a = 0; a < k; a++) {
      const x = A[o + a]!;
      if (x === 0) continue;
      for (let b = a; b < k; b++) G[a * k + b]! += x * A[o + b]!;
    }
  }
  for (let a = 0; a < k; a++) for (let b = 0; b < a; b++) G[a * k + b] = G[b * k + a]!;
  return G;
}

export function frob2(A: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < A.length; i++) s += A[i]! * A[i]!;
  return s;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Thin Householder QR of `A [m, k]` (any m, k): Q `[m, t]` with orthonormal columns and R
 * `[t, k]` upper trapezoidal, t = min(m, k), A = Q·R.
 */
export function qr(A: ArrayLike<number>, m: number, k: number, wantQ = true): { Q: Float64Array; R: Float64Array; t: number } {
  const t = Math.min(m, k);
  // Work column-major for contiguous column access.
  const a = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) a[j * m + i] = A[i * k + j]!;
  const vs: Float64Array[] = [];
  const betas: number[] = [];
  for (let j = 0; j < t; j++) {
    const cj = j * m;
    let norm = 0;
    for (let i = j; i < m; i++) norm += a[cj + i]! * a[cj + i]!;
    norm = Math.sqrt(norm);
    const v = new Float64Array(m);
    if (norm === 0) {
      vs.push(v);
      betas.push(0);
      continue;
    }
    const alpha = a[cj + j]! > 0 ? -norm : norm;
    for (let i = j; i < m; i++) v[i] = a[cj + i]!;
    v[j]! -= alpha;
    let vv = 0;
    for (let i = j; i < m; i++) vv += v[i]! * v[i]!;
    const beta = vv === 0 ? 0 : 2 / vv;
    vs.push(v);
    betas.push(beta);
    if (beta === 0) continue;
    for (let c = j; c < k; c++) {
      const cc = c * m;
      let s = 0;
      for (let i = j; i < m; i++) s += v[i]! * a[cc + i]!;
      const f = beta * s;
      for (let i = j; i < m; i++) a[cc + i]! -= f * v[i]!;
    }
  }
  const R = new Float64Array(t * k);
  for (let i = 0; i < t; i++) for (let c = i; c < k; c++) R[i * k + c] = a[c * m + i]!;
  if (!wantQ) return { Q: new Float64Array(0), R, t };
  // Q = H_0 … H_{t−1} applied to the first t columns of the identity (column-major work array).
  const q = new Float64Array(m * t);
  for (let c = 0; c < t; c++) q[c * m + c] = 1;
  for (let j = t - 1; j >= 0; j--) {
    const v = vs[j]!;
    const beta = betas[j]!;
    if (beta === 0) continue;
    for (let c = 0; c < t; c++) {
      const cc = c * m;
      let s = 0;
      for (let i = j; i < m; i++) s += v[i]! * q[cc + i]!;
      const f = beta * s;
      for (let i = j; i < m; i++) q[cc + i]! -= f * v[i]!;
    }
  }
  const Q = new Float64Array(m * t);
  for (let i = 0; i < m; i++) for (let c = 0; c < t; c++) Q[i * t + c] = q[c * m + i]!;
  return { Q, R, t };
}

export interface Svd {
  /** `[rows, p]`, orthonormal columns. */
  U: Float64Array;
  /** Descending, length p = min(rows, cols). */
  S: Float64Array;
  /** `[cols, p]`, orthonormal columns. */
  V: Float64Array;
  p: number;
}

/**
 * One-sided Jacobi (Hestenes) on a square-or-tall `[m, n]` matrix (m ≥ n) given column-major:
 * rotates column pairs until they are orthogonal; the column norms are the singular values.
 */
function hestenes(cols: Float64Array, m: number, n: number): { W: Float64Array; V: Float64Array } {
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  // Columns below this squared norm are numerically zero (rank-deficient inputs are common here):
  // rotating them only costs time.
  let total = 0;
  for (let i = 0; i < cols.length; i++) total += cols[i]! * cols[i]!;
  const tiny = total * 1e-30;
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        const cp = p * m;
        const cq = q * m;
        for (let i = 0; i < m; i++) {
          const x = cols[cp + i]!;
          const y = cols[cq + i]!;
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || alpha <= tiny || beta <= tiny) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const tt = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + tt * tt);
        const s = c * tt;
        for (let i = 0; i < m; i++) {
          const x = cols[cp + i]!;
          const y = cols[cq + i]!;
          cols[cp + i] = c * x - s * y;
          cols[cq + i] = s * x + c * y;
        }
        for (let i = 0; i < n; i++) {
          const x = V[i * n + p]!;
          const y = V[i * n + q]!;
          V[i * n + p] = c * x - s * y;
          V[i * n + q] = s * x + c * y;
        }
      }
    }
    if (!rotated) break;
  }
  return { W: cols, V };
}

/** Complete the zero columns of a `[m, p]` matrix with unit vectors orthogonal to the others. */
function completeColumns(U: Float64Array, m: number, p: number, zero: boolean[]): void {
  let e = 0;
  for (let c = 0; c < p; c++) {
    if (!zero[c]) continue;
    for (; e < m; e++) {
      const v = new Float64Array(m);
      v[e] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (let d = 0; d < p; d++) {
          if (d === c || (zero[d] && d > c)) continue;
          let s = 0;
          for (let i = 0; i < m; i++) s += v[i]! * U[i * p + d]!;
          for (let i = 0; i < m; i++) v[i]! -= s * U[i * p + d]!;
        }
      }
      const nrm = Math.sqrt(frob2(v));
      if (nrm > 1e-8) {
        for (let i = 0; i < m; i++) U[i * p + c] = v[i]! / nrm;
        e++;
        break;
      }
    }
  }
}

/**
 * Thin SVD of `A [m, n]`: A = U·diag(S)·Vᵀ with p = min(m, n). Tall matrices are first reduced by
 * QR (so the Jacobi rotations act on a p × p triangle); wide ones are transposed. `{u: false}`
 * skips forming U of a tall matrix (U is then empty).
 */
export function svd(A: ArrayLike<number>, m: number, n: number, want: { u?: boolean } = {}): Svd {
  if (Math.min(m, n) > JACOBI_MAX) return svdGram(A, m, n, want.u ?? true);
  if (m < n) {
    const t = svd(transpose(A, m, n), n, m, { u: true });
    return { U: t.V, S: t.S, V: t.U, p: t.p };
  }
  const wantU = want.u ?? true;
  const p = n;
  let Q: Float64Array | undefined;
  let rows = m;
  let work: Float64Array;
  if (m > n) {
    const f = qr(A, m, n, wantU);
    Q = f.Q;
    rows = n;
    work = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) work[j * n + i] = f.R[i * n + j]!;
  } else {
    work = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) work[j * m + i] = A[i * n + j]!;
  }
  const { W, V } = hestenes(work, rows, p);
  const norms = new Float64Array(p);
  for (let c = 0; c < p; c++) {
    let s = 0;
    for (let i = 0; i < rows; i++) s += W[c * rows + i]! ** 2;
    norms[c] = Math.sqrt(s);
  }
  const order = Array.from({ length: p }, (_, i) => i).sort((a, b) => norms[b]! - norms[a]! || a - b);
  const S = new Float64Array(p);
  const Us = new Float64Array(rows * p);
  const Vs = new Float64Array(n * p);
  const maxS = norms[order[0]!] ?? 0;
  const zero: boolean[] = [];
  order.forEach((src, c) => {
    const sv = norms[src]!;
    S[c] = sv;
    const isZero = !(sv > maxS * 1e-300) || sv === 0;
    zero.push(isZero);
    for (let i = 0; i < rows; i++) Us[i * p + c] = isZero ? 0 : W[src * rows + i]! / sv;
    for (let i = 0; i < n; i++) Vs[i * p + c] = V[i * p + src]!;
  });
  if (zero.some(Boolean)) completeColumns(Us, rows, p, zero);
  const U = !wantU ? new Float64Array(0) : Q ? matmul(Q, Us, m, n, p) : Us;
  return { U, S, V: Vs, p };
}

/**
 * Matrices whose smaller side is at most this use the Jacobi methods (accurate to full relative
 * precision, and what the small-shape tests see); larger ones the Gram + QL path (singular values
 * accurate to ~1e-8·σ_max, which is all the fits need, and several times faster in JS).
 */
export const JACOBI_MAX = 24;

/**
 * SVD through the Gram matrix of the smaller side and the QL eigensolver. Singular vectors of the
 * other side are formed as A·v/σ for σ > 1e-7·σ_max; the rest are completed orthonormally.
 */
function svdGram(A: ArrayLike<number>, m: number, n: number, wantU: boolean): Svd {
  const p = Math.min(m, n);
  const tall = m >= n;
  const G = tall ? gramT(A, m, n) : matmulNT(A, A, m, n, m);
  const { values, vectors } = symEigQL(G, p);
  const S = new Float64Array(p);
  for (let i = 0; i < p; i++) S[i] = Math.sqrt(Math.max(values[i]!, 0));
  const tol = (S[0] ?? 0) * 1e-7;
  const other = (rows: number, X: Float64Array): Float64Array => {
    // X = A·v (tall: rows = m) or Aᵀ·u (wide: rows = n), [rows, p]; normalize columns.
    const zero: boolean[] = [];
    for (let c = 0; c < p; c++) {
      const z = !(S[c]! > tol);
      zero.push(z);
      for (let i = 0; i < rows; i++) X[i * p + c] = z ? 0 : X[i * p + c]! / S[c]!;
    }
    if (zero.some(Boolean)) completeColumns(X, rows, p, zero);
    return X;
  };
  if (tall) {
    return { U: wantU ? other(m, matmul(A, vectors, m, n, p)) : new Float64Array(0), S, V: vectors, p };
  }
  return { U: vectors, S, V: other(n, matmulTN(A, vectors, m, n, p)), p };
}

/** Symmetric eigendecomposition: values descending, vectors as columns `[n, n]` (Jacobi when small, else QL). */
export function symEig(S: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array } {
  return n <= JACOBI_MAX ? symEigJacobi(S, n) : symEigQL(S, n);
}

/** Symmetric eigendecomposition by cyclic Jacobi: values descending, vectors as columns `[n, n]`. */
export function symEigJacobi(S: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(S as ArrayLike<number>);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += a[i * n + i]! ** 2;
      for (let j = i + 1; j < n; j++) off += a[i * n + j]! ** 2;
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        const app = a[p * n + p]!;
        const aqq = a[q * n + q]!;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(1 + theta * theta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p]!;
          const vkq = V[k * n + q]!;
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => a[y * n + y]! - a[x * n + x]! || x - y);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, c) => {
    values[c] = a[src * n + src]!;
    for (let k = 0; k < n; k++) vectors[k * n + c] = V[k * n + src]!;
  });
  return { values, vectors };
}

/**
 * X = R·G⁺ for a symmetric positive semidefinite `G [k, k]` and `R [rows, k]` (the normal
 * equations X·G = R of a least-squares block). Pseudo-inverse through the eigendecomposition with
 * a relative cutoff, so rank-deficient Grams (a CP column that vanished, a zero module) stay finite.
 */
export function solveRightSym(R: ArrayLike<number>, G: ArrayLike<number>, rows: number, k: number, rcond = 1e-12): Float64Array {
  const { values, vectors } = symEig(G, k);
  const cut = Math.max(values[0]!, 0) * rcond;
  // X = R V diag(1/λ) Vᵀ
  const RV = matmul(R, vectors, rows, k, k);
  for (let i = 0; i < rows; i++) {
    for (let c = 0; c < k; c++) {
      const l = values[c]!;
      RV[i * k + c] = l > cut && l > 0 ? RV[i * k + c]! / l : 0;
    }
  }
  return matmulNT(RV, vectors, rows, k, k);
}

/** Top-`k` left singular vectors (`[rows, k]`) and all singular values of `Y [rows, cols]` via the smaller Gram side. */
export function leadingLeft(Y: ArrayLike<number>, rows: number, cols: number, k: number): { U: Float64Array; S: Float64Array } {
  const f = svd(Y, rows, cols);
  const U = new Float64Array(rows * k);
  for (let i = 0; i < rows; i++) for (let c = 0; c < Math.min(k, f.p); c++) U[i * k + c] = f.U[i * f.p + c]!;
  if (k > f.p) {
    // More columns than the rank allows: complete with orthonormal directions.
    const zero = Array.from({ length: k }, (_, c) => c >= f.p);
    completeColumns(U, rows, k, zero);
  }
  return { U, S: f.S };
}

/** Singular values only (descending), p = min(m, n): QR of the tall orientation without forming Q. */
export function singularValues(A: ArrayLike<number>, m: number, n: number): Float64Array {
  if (Math.min(m, n) > JACOBI_MAX) {
    const G = m >= n ? gramT(A, m, n) : matmulNT(A, A, m, n, m);
    const { values } = symEigQL(G, Math.min(m, n), false);
    return values.map((x) => Math.sqrt(Math.max(x, 0)));
  }
  if (m < n) return svd(transpose(A, m, n), n, m, { u: false }).S;
  return svd(A, m, n, { u: false }).S;
}

/**
 * Symmetric eigendecomposition by Householder tridiagonalization and the implicit QL algorithm
 * with Wilkinson-style shifts (the EISPACK tred2/tql2 scheme): O(n³) with a small constant, for
 * the larger Grams. Values descending, vectors as columns `[n, n]`.
 */
export function symEigQL(S: ArrayLike<number>, n: number, wantVectors = true): { values: Float64Array; vectors: Float64Array } {
  const V: Float64Array[] = Array.from({ length: n }, (_, i) => {
    const row = new Float64Array(n);
    for (let j = 0; j < n; j++) row[j] = S[i * n + j]!;
    return row;
  });
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  // Tridiagonalize.
  for (let j = 0; j < n; j++) d[j] = V[n - 1]![j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[i - 1]![j]!;
        V[i]![j] = 0;
        V[j]![i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[j]![i] = f;
        g = e[j]! + V[j]![j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k]![j]! * d[k]!;
          e[k]! += V[k]![j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[k]![j]! -= f * e[k]! + g * d[k]!;
        d[j] = V[i - 1]![j]!;
        V[i]![j] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[n - 1]![i] = V[i]![i]!;
    V[i]![i] = 1;
    const h = d[i + 1]!;
    if (h !== 0 && wantVectors) {
      for (let k = 0; k <= i; k++) d[k] = V[k]![i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k]![i + 1]! * V[k]![j]!;
        for (let k = 0; k <= i; k++) V[k]![j]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[k]![i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[n - 1]![j]!;
    V[n - 1]![j] = 0;
  }
  if (n > 0) V[n - 1]![n - 1] = 1;
  e[0] = 0;
  // Implicit QL on the tridiagonal (d, e).
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  if (n > 0) e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      for (let iter = 0; iter < 100; iter++) {
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          if (wantVectors) for (let k = 0; k < n; k++) {
            const vk = V[k]!;
            h = vk[i + 1]!;
            vk[i + 1] = s * vk[i]! + c * h;
            vk[i] = c * vk[i]! - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
        if (!(Math.abs(e[l]!) > eps * tst1)) break;
      }
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y]! - d[x]! || x - y);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, c) => {
    values[c] = d[src]!;
    for (let k = 0; k < n; k++) vectors[k * n + c] = V[k]![src]!;
  });
  return { values, vectors };
}
