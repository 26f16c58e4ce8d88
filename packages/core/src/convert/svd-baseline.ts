/**
 * The honest baseline: the best truncated-SVD LoRA with a parameter budget. Each module's update
 * T = U Vᵀ has singular values σ_1 ≥ … ≥ σ_r (QR of both factors + an r × r SVD, never m × n);
 * keeping k of them costs k·(m + n) LoRA parameters and leaves an error Σ_{j>k} σ_j².
 *
 * Ranks are chosen per module by a global greedy: repeatedly take, among the modules whose next
 * singular value still fits in the remaining budget, the one with the largest σ²/(m + n) (error
 * removed per parameter spent). Within a module σ² is non-increasing, so this is the optimal
 * fractional knapsack; the integer answer can differ from the exact optimum only by what the last,
 * partly-fitting item would have bought. The error is exact (from the tail singular values).
 */
import { moduleSingularValues, type Target } from './target.js';

export interface SvdBaseline {
  /** ‖ΔW_t − ΔW_svd‖_F / ‖ΔW_t‖_F over all modules. */
  rel_error: number;
  /** LoRA parameters used (≤ budget). */
  params: number;
  /** Kept rank per module path. */
  ranks: Record<string, number>;
}

/** Singular values of every module (cache them when calling svdTruncation many times). */
export function targetSpectra(target: Target): Float64Array[] {
  return target.modules.map(moduleSingularValues);
}

export function svdTruncation(target: Target, budget: number, spectra: Float64Array[] = targetSpectra(target)): SvdBaseline {
  const mods = target.modules;
  const kept = mods.map(() => 0);
  let left = Math.floor(budget);
  for (;;) {
    let best = -1;
    let bestScore = -1;
    for (let i = 0; i < mods.length; i++) {
      const k = kept[i]!;
      const S = spectra[i]!;
      const cost = mods[i]!.m + mods[i]!.n;
      if (k >= S.length || cost > left) continue;
      const score = (S[k]! * S[k]!) / cost;
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    if (best < 0 || bestScore <= 0) break;
    kept[best]!++;
    left -= mods[best]!.m + mods[best]!.n;
  }
  let total = 0;
  for (const S of spectra) for (const x of S) total += x * x;
  // The tail is summed directly (no subtraction of nearly equal numbers).
  let tail = 0;
  spectra.forEach((S, i) => {
    for (let k = kept[i]!; k < S.length; k++) tail += S[k]! * S[k]!;
  });
  const ranks: Record<string, number> = {};
  mods.forEach((m, i) => (ranks[m.path] = kept[i]!));
  const params = mods.reduce((a, m, i) => a + kept[i]! * (m.m + m.n), 0);
  return { rel_error: total > 0 ? Math.sqrt(tail / total) : 0, params, ranks };
}
