/**
 * The conversion target: every module's LoRA update ΔW_t = s·B Aᵀ held factored, in float64, as
 * `T = U Vᵀ` with `U = s·B′` (`[m, r]`) and `V = A′` (`[n, r]`), and the factored least-squares
 * error of a fitted update `s_f·B_f A_fᵀ` against it (with its gradient), never forming `m × n`.
 *
 * ‖T − F‖² = ‖T‖² − 2·s_f·Σ (UᵀB_f ⊙ VᵀA_f) + s_f²·Σ (A_fᵀA_f ⊙ B_fᵀB_f),
 * since ⟨U Vᵀ, B Aᵀ⟩ = tr(V Uᵀ B Aᵀ) = tr((UᵀB)(AᵀV)) = Σ_{k,l} (UᵀB)[k,l]·(VᵀA)[k,l].
 * Gradients: ∂/∂A_f = −2 s_f V (UᵀB_f) + 2 s_f² A_f (B_fᵀB_f), ∂/∂B_f = −2 s_f U (VᵀA_f) + 2 s_f² B_f (A_fᵀA_f).
 */
import type { Backend } from '../backend/types.js';
import { getBackend } from '../backend/registry.js';
import { ConfigError } from '../errors.js';
import { materializeAdapter, type Adapter } from '../io/adapter.js';
import { gramT, matmul, matmulTN, qr, svd } from './linalg.js';

export interface TargetModule {
  path: string;
  /** Matrix type (path within the layer). */
  type: string;
  layer: number;
  n: number;
  m: number;
  /** Rank of the factored target (the LoRA r). */
  r: number;
  /** `[m, r]` = s·B′. */
  U: Float64Array;
  /** `[n, r]` = A′. */
  V: Float64Array;
  /** ‖T‖²_F. */
  norm2: number;
  /** The LoRA scale s of this module (U already includes it). */
  s: number;
}

export interface Target {
  modules: TargetModule[];
  /** Σ ‖T‖²_F over modules. */
  norm2: number;
  /** Trainable parameters of the LoRA (Σ r·(n + m)). */
  params: number;
}

/** ‖U Vᵀ‖² = Σ (UᵀU ⊙ VᵀV). */
export function factoredNorm2(U: ArrayLike<number>, V: ArrayLike<number>, m: number, n: number, r: number): number {
  const GU = gramT(U, m, r);
  const GV = gramT(V, n, r);
  let s = 0;
  for (let i = 0; i < GU.length; i++) s += GU[i]! * GV[i]!;
  return s;
}

/**
 * The factored target of a LoRA adapter. Throws ConfigError (field `peft_type`) when the adapter
 * is not a LoRA adapter.
 */
export async function loraTarget(src: Adapter, backend?: Backend): Promise<Target> {
  if (src.config.peft_type !== 'LORA') {
    throw new ConfigError('conversion needs a LoRA adapter as its source', {
      file: src.source,
      field: 'peft_type',
      expected: 'LORA',
      found: src.config.peft_type,
    });
  }
  const updates = await materializeAdapter(src, backend ?? (await getBackend()));
  const byPath = new Map(src.plan.modules.map((m) => [m.path, m]));
  const modules: TargetModule[] = updates.map((u) => {
    const pm = byPath.get(u.path)!;
    const U = new Float64Array(u.m * u.rho);
    for (let i = 0; i < U.length; i++) U[i] = u.s * u.B[i]!;
    const V = Float64Array.from(u.A);
    return { path: u.path, type: pm.type, layer: pm.layer, n: u.n, m: u.m, r: u.rho, U, V, norm2: factoredNorm2(U, V, u.m, u.n, u.rho), s: u.s };
  });
  return {
    modules,
    norm2: modules.reduce((a, t) => a + t.norm2, 0),
    params: modules.reduce((a, t) => a + t.r * (t.n + t.m), 0),
  };
}

/** A fitted module in the universal form, float64. */
export interface FitUpdate {
  /** `[n, ρ]`. */
  A: Float64Array;
  /** `[m, ρ]`. */
  B: Float64Array;
  s: number;
  rho: number;
}

/**
 * ‖T − s_f B_f A_fᵀ‖² for one module, and (when `grad`) its gradients with respect to A_f and B_f.
 * Cost O((m + n)·r·ρ + (m + n)·ρ²).
 */
export function moduleError(t: TargetModule, f: FitUpdate, grad: boolean): { err2: number; dA?: Float64Array; dB?: Float64Array } {
  const { m, n, r } = t;
  const rho = f.rho;
  const s = f.s;
  const UtB = matmulTN(t.U, f.B, m, r, rho); // [r, ρ]
  const VtA = matmulTN(t.V, f.A, n, r, rho); // [r, ρ]
  const GA = gramT(f.A, n, rho);
  const GB = gramT(f.B, m, rho);
  let cross = 0;
  for (let i = 0; i < UtB.length; i++) cross += UtB[i]! * VtA[i]!;
  let self = 0;
  for (let i = 0; i < GA.length; i++) self += GA[i]! * GB[i]!;
  const err2 = t.norm2 - 2 * s * cross + s * s * self;
  if (!grad) return { err2 };
  // dA = −2s V (UᵀB) + 2s² A (BᵀB);  dB = −2s U (VᵀA) + 2s² B (AᵀA)
  const dA = matmul(t.V, UtB, n, r, rho);
  const AGB = matmul(f.A, GB, n, rho, rho);
  for (let i = 0; i < dA.length; i++) dA[i] = -2 * s * dA[i]! + 2 * s * s * AGB[i]!;
  const dB = matmul(t.U, VtA, m, r, rho);
  const BGA = matmul(f.B, GA, m, rho, rho);
  for (let i = 0; i < dB.length; i++) dB[i] = -2 * s * dB[i]! + 2 * s * s * BGA[i]!;
  return { err2, dA, dB };
}

/** Singular values of one module's T = U Vᵀ through QR of U and V and an r × r SVD (never m × n). */
export function moduleSingularValues(t: TargetModule): Float64Array {
  const qu = qr(t.U, t.m, t.r);
  const qv = qr(t.V, t.n, t.r);
  // T = Q_U R_U R_Vᵀ Q_Vᵀ → singular values of R_U R_Vᵀ ([tu, tv]).
  const core = new Float64Array(qu.t * qv.t);
  for (let i = 0; i < qu.t; i++) {
    for (let j = 0; j < qv.t; j++) {
      let acc = 0;
      for (let c = 0; c < t.r; c++) acc += qu.R[i * t.r + c]! * qv.R[j * t.r + c]!;
      core[i * qv.t + j] = acc;
    }
  }
  return svd(core, qu.t, qv.t).S;
}

/**
 * Thin SVD of T = U Vᵀ in factored form: T = P diag(S) Qᵀ with P `[m, k]`, Q `[n, k]`,
 * k = min(r, m, n), through QR of both factors.
 */
export function moduleSvd(t: TargetModule): { P: Float64Array; S: Float64Array; Q: Float64Array; k: number } {
  const qu = qr(t.U, t.m, t.r);
  const qv = qr(t.V, t.n, t.r);
  const core = new Float64Array(qu.t * qv.t);
  for (let i = 0; i < qu.t; i++) {
    for (let j = 0; j < qv.t; j++) {
      let acc = 0;
      for (let c = 0; c < t.r; c++) acc += qu.R[i * t.r + c]! * qv.R[j * t.r + c]!;
      core[i * qv.t + j] = acc;
    }
  }
  const f = svd(core, qu.t, qv.t);
  return { P: matmul(qu.Q, f.U, t.m, qu.t, f.p), S: f.S, Q: matmul(qv.Q, f.V, t.n, qv.t, f.p), k: f.p };
}
