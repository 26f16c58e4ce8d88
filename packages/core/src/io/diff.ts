/**
 * Compare two adapters by their updates ΔW = s·B′A′ᵀ, module by module.
 *
 * `rel_fro` = ‖ΔW_a − ΔW_b‖_F / ‖ΔW_a‖_F over all modules together (denominator ‖ΔW_b‖_F when
 * ΔW_a = 0; 0 when both are 0). `max_abs` = max |ΔW_a − ΔW_b| over every entry.
 *
 * Two ways to get them:
 * - dense (default): each module's ΔW is built by the backend's `merge` into a zero matrix (so a
 *   wasm/webgpu backend does the O(m·n·ρ) work), then one float64 pass gives max_abs and all
 *   three norms. Identical adapters give exactly 0.
 * - factored (`{ dense: false }`): never forms an `m × n` matrix. ΔW_a − ΔW_b = X Yᵀ with
 *   X = [s_a B′_a, −s_b B′_b] (`m × k`), Y = [A′_a, A′_b] (`n × k`), k = ρ_a + ρ_b. With float64
 *   Householder QR, X = Q_X R_X and Y = Q_Y R_Y, so ‖X Yᵀ‖_F = ‖R_X R_Yᵀ‖_F, a k×k product:
 *   O((m + n)·k²) and, unlike ‖a‖² + ‖b‖² − 2⟨a, b⟩ from Gram matrices, no catastrophic
 *   cancellation when a ≈ b. (When k is so large that this costs more than m·n·k, the entries are
 *   formed row by row in float64 instead, still without an `m × n` allocation.) ‖ΔW‖² of one
 *   adapter uses ρ×ρ Gram products (s²·Σ (A′ᵀA′ ⊙ B′ᵀB′)). `max_abs` is NaN in this mode.
 */
import type { Backend, ModuleUpdate } from '../backend/types.js';
import { getBackend } from '../backend/registry.js';
import { ShapeMismatchError } from '../errors.js';
import { materializeAdapter, type Adapter } from './adapter.js';

export interface DiffResult {
  max_abs: number;
  rel_fro: number;
  modules: number;
}

export interface DiffOptions {
  /** Dense comparison with max_abs (default true); false: factored rel_fro only, max_abs = NaN. */
  dense?: boolean;
}

/**
 * R factor of a `rows × k` matrix given column-major (`cols[c * rows + i]`), by Householder QR in
 * float64. Returned row-major, `t × k` with t = min(rows, k), upper triangular.
 */
export function householderR(colMajor: Float64Array, rows: number, k: number): Float64Array {
  const a = Float64Array.from(colMajor);
  const t = Math.min(rows, k);
  const v = new Float64Array(rows);
  for (let j = 0; j < t; j++) {
    const cj = j * rows;
    let norm = 0;
    for (let i = j; i < rows; i++) norm += a[cj + i]! * a[cj + i]!;
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    const alpha = a[cj + j]! > 0 ? -norm : norm;
    for (let i = j; i < rows; i++) v[i] = a[cj + i]!;
    v[j]! -= alpha;
    let vv = 0;
    for (let i = j; i < rows; i++) vv += v[i]! * v[i]!;
    if (vv === 0) continue;
    for (let c = j; c < k; c++) {
      const cc = c * rows;
      let dot = 0;
      for (let i = j; i < rows; i++) dot += v[i]! * a[cc + i]!;
      const f = (2 * dot) / vv;
      for (let i = j; i < rows; i++) a[cc + i]! -= f * v[i]!;
    }
  }
  const R = new Float64Array(t * k);
  for (let i = 0; i < t; i++) for (let c = i; c < k; c++) R[i * k + c] = a[c * rows + i]!;
  return R;
}

/** Stack `[rows, ρ]` row-major blocks side by side (each scaled) into a column-major `rows × k`. */
function stackColMajor(parts: { M: Float32Array; rho: number; scale: number }[], rows: number): { X: Float64Array; k: number } {
  const k = parts.reduce((acc, p) => acc + p.rho, 0);
  const X = new Float64Array(rows * k);
  let off = 0;
  for (const p of parts) {
    for (let c = 0; c < p.rho; c++) {
      const col = (off + c) * rows;
      for (let i = 0; i < rows; i++) X[col + i] = p.scale * p.M[i * p.rho + c]!;
    }
    off += p.rho;
  }
  return { X, k };
}

/** Gram matrix MᵀM (`ρ × ρ`, float64) of a row-major `[rows, ρ]` matrix, row by row (contiguous). */
function gram(M: Float32Array, rows: number, rho: number): Float64Array {
  const G = new Float64Array(rho * rho);
  for (let r = 0; r < rows; r++) {
    const o = r * rho;
    for (let k = 0; k < rho; k++) {
      const x = M[o + k]!;
      if (x === 0) continue;
      const gk = k * rho;
      for (let l = k; l < rho; l++) G[gk + l]! += x * M[o + l]!;
    }
  }
  for (let k = 0; k < rho; k++) for (let l = 0; l < k; l++) G[k * rho + l] = G[l * rho + k]!;
  return G;
}

/** ‖s·B′A′ᵀ‖²_F = s²·Σ_{k,l} (A′ᵀA′)[k,l]·(B′ᵀB′)[k,l]. */
function normSq(u: ModuleUpdate): number {
  const GA = gram(u.A, u.n, u.rho);
  const GB = gram(u.B, u.m, u.rho);
  let s = 0;
  for (let i = 0; i < GA.length; i++) s += GA[i]! * GB[i]!;
  return u.s * u.s * s;
}

/**
 * ‖ΔW_a − ΔW_b‖²_F entry by entry in float64, one row at a time (no `m × n` allocation); each
 * entry is formed as (row of ΔW_a) − (row of ΔW_b), so there is no cancellation across entries.
 */
function rowwiseDiffSq(ua: ModuleUpdate, ub: ModuleUpdate): number {
  const { m, n } = ua;
  const ra = ua.rho;
  const rb = ub.rho;
  const xa = new Float64Array(ra);
  const xb = new Float64Array(rb);
  let s = 0;
  for (let i = 0; i < m; i++) {
    for (let c = 0; c < ra; c++) xa[c] = ua.s * ua.B[i * ra + c]!;
    for (let c = 0; c < rb; c++) xb[c] = ub.s * ub.B[i * rb + c]!;
    for (let j = 0; j < n; j++) {
      let p = 0;
      let q = 0;
      for (let c = 0; c < ra; c++) p += xa[c]! * ua.A[j * ra + c]!;
      for (let c = 0; c < rb; c++) q += xb[c]! * ub.A[j * rb + c]!;
      s += (p - q) * (p - q);
    }
  }
  return s;
}

/**
 * ‖ΔW_a − ΔW_b‖²_F from the factors only (see the module comment). When k = ρ_a + ρ_b is so
 * large that the QRs (≈ 2(m + n)k² flops) would cost more than forming every entry (m·n·k), the
 * entries are formed row by row instead.
 */
export function factoredDiffSq(ua: ModuleUpdate, ub: ModuleUpdate): number {
  const { m, n } = ua;
  if (2 * (m + n) * (ua.rho + ub.rho) > m * n) return rowwiseDiffSq(ua, ub);
  const { X, k } = stackColMajor(
    [
      { M: ua.B, rho: ua.rho, scale: ua.s },
      { M: ub.B, rho: ub.rho, scale: -ub.s },
    ],
    m,
  );
  if (k === 0) return 0;
  const { X: Y } = stackColMajor(
    [
      { M: ua.A, rho: ua.rho, scale: 1 },
      { M: ub.A, rho: ub.rho, scale: 1 },
    ],
    n,
  );
  const RX = householderR(X, m, k);
  const RY = householderR(Y, n, k);
  const tx = Math.min(m, k);
  const ty = Math.min(n, k);
  let s = 0;
  for (let i = 0; i < tx; i++) {
    for (let j = 0; j < ty; j++) {
      let acc = 0;
      for (let c = 0; c < k; c++) acc += RX[i * k + c]! * RY[j * k + c]!;
      s += acc * acc;
    }
  }
  return s;
}

function pair(ua: readonly ModuleUpdate[], ub: readonly ModuleUpdate[]): [ModuleUpdate, ModuleUpdate][] {
  const byPath = new Map(ub.map((u) => [u.path, u]));
  const out: [ModuleUpdate, ModuleUpdate][] = [];
  for (const u of ua) {
    const v = byPath.get(u.path);
    if (!v) throw new ShapeMismatchError('module is in the first adapter but not in the second', { field: u.path, expected: 'the same modules in both adapters', found: 'missing' });
    if (v.n !== u.n || v.m !== u.m) {
      throw new ShapeMismatchError('module has different sizes in the two adapters', { field: u.path, expected: [u.m, u.n], found: [v.m, v.n] });
    }
    byPath.delete(u.path);
    out.push([u, v]);
  }
  for (const path of byPath.keys()) {
    throw new ShapeMismatchError('module is in the second adapter but not in the first', { field: path, expected: 'the same modules in both adapters', found: 'missing' });
  }
  return out;
}

/** Compare the updates of two adapters; their modules must match by path and size. */
export async function diffAdapters(a: Adapter, b: Adapter, backend?: Backend, opts: DiffOptions = {}): Promise<DiffResult> {
  const be = backend ?? (await getBackend());
  const pairs = pair(await materializeAdapter(a, be), await materializeAdapter(b, be));
  let a2 = 0;
  let b2 = 0;
  let d2 = 0;
  let maxAbs = 0;
  if (opts.dense === false) {
    for (const [u, v] of pairs) {
      a2 += normSq(u);
      b2 += normSq(v);
      d2 += factoredDiffSq(u, v);
    }
    maxAbs = NaN;
  } else {
    for (const [u, v] of pairs) {
      const Wa = new Float32Array(u.m * u.n);
      const Wb = new Float32Array(u.m * u.n);
      await be.merge(Wa, 'out_in', u);
      await be.merge(Wb, 'out_in', v);
      for (let i = 0; i < Wa.length; i++) {
        const x = Wa[i]!;
        const y = Wb[i]!;
        const d = x - y;
        a2 += x * x;
        b2 += y * y;
        d2 += d * d;
        const ad = Math.abs(d);
        if (ad > maxAbs) maxAbs = ad;
      }
    }
  }
  const denom = a2 > 0 ? a2 : b2;
  return { max_abs: maxAbs, rel_fro: denom > 0 ? Math.sqrt(d2 / denom) : 0, modules: pairs.length };
}
