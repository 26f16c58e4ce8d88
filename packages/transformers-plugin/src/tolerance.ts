/**
 * The tolerance `verify` applies to `max_abs_diff` (the plugin with the adapter on a model of some
 * dtype vs the fp32 offline merge).
 *
 * Derivation. Write f_D for the network evaluated with dtype D's weights and arithmetic, W0 the base
 * weights and ΔW the adapter. The plugin computes f_D(W0) + branch, the reference f_32(W0 + ΔW), so
 *   |plugin − reference| ≤ |f_D(W0 + ΔW) − f_32(W0 + ΔW)| + ε_branch,
 * the first term being dtype D's own error at the adapted weights and ε_branch the fp32 rounding of
 * (x·A′)·B′ vs x·ΔW (≤ 1e-4 relative to the outputs' scale on these sizes: fp32 dot products of ≤ 4k
 * terms, u = 6e-8 per operation, through a dozen layers, measured ≤ 2.4e-7 at scale 1).
 * The dtype's error is not a constant of the dtype: it depends on the model's weights and depth
 * (4-bit blocks on a 2-layer BERT: ~1e-2; on a LLaMA whose RMSNorm and SiLU amplify it: ~0.3). So it
 * is measured on the same inputs at the base weights, q = max |f_D(W0) − f_32(W0)| (`dtype_error`),
 * and the adapted point is allowed three times that. An adapter that replaces heads
 * (`modules_to_save`) evaluates another network: q is then measured with its heads on both sides
 * (ΔW scaled by 0), since a head can amplify the dtype's error of the features it reads many times
 * over (the real DistilBERT emotion head: 5.7–12.5× the base head's q). The adapted point is another point of the same
 * quantized network: W0's rounding is untouched by the branch (it only adds x·ΔW in the activation
 * dtype), but the activations differ, and with them the rounding of the activations (q8's
 * DynamicQuantizeLinear, fp16 storage) — a different draw of the same rounding process, of the same
 * scale but not the same value. The factor is therefore a calibration, not a proof: over the tiny
 * BERT/DistilBERT/GPT-2/LLaMA models, all six methods and every dtype, max_abs_diff / q ranged from
 * 0.45 to 2.3 (LoRA on all linears of DistilBERT, q8), so 3 leaves margin, while a wrong branch — an
 * error of the size of the adapter's effect, 10–1000× q on these models — still fails.
 * On fp16 graphs the branch itself runs in fp16: A′, s·B′ᵀ and x are rounded to half precision
 * (u = 2⁻¹¹ each) and so is its output, ≤ 4u relative to the branch's own size, which is bounded by
 * the adapter's effect e = max |adapter − base|:
 *   tolerance = 3 · q + 1e-4 · max(1, max |reference|) + 4 · u_branch · e,
 * u_branch = 2⁻¹¹ for fp16 branches and 2⁻²⁴ (negligible) for fp32 ones. For fp32, q = 0: the fp32
 * bound alone. Measured ratios (max_abs_diff / q) on the tiny models and all six methods are listed
 * in the plugin README.
 */
export const VERIFY_DTYPES = ['fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'] as const;
export type VerifyDtype = (typeof VERIFY_DTYPES)[number];

/** fp32 rounding allowance, relative to the outputs' scale (see the derivation above). */
export const FP32_RELATIVE = 1e-4;
/** Factor on the dtype's measured base error (see the derivation above). */
export const DTYPE_ERROR_FACTOR = 3;

export function isVerifyDtype(d: string): d is VerifyDtype {
  return (VERIFY_DTYPES as readonly string[]).includes(d);
}

/** Unit roundoff of the branch's arithmetic. */
export const BRANCH_ROUNDOFF = { float32: 2 ** -24, float16: 2 ** -11 } as const;

/** The half-precision dtypes: their branches run in fp16. */
export function branchDtypeOf(dtype: VerifyDtype): 'float32' | 'float16' {
  return dtype === 'fp16' || dtype === 'q4f16' ? 'float16' : 'float32';
}

/** `3 · q + 1e-4 · max(1, referenceMaxAbs) + 4 · u_branch · effect`: see the module comment. */
export function toleranceFor(dtype: VerifyDtype, dtypeError: number, referenceMaxAbs: number, effect: number): number {
  return DTYPE_ERROR_FACTOR * dtypeError + FP32_RELATIVE * Math.max(1, referenceMaxAbs) + 4 * BRANCH_ROUNDOFF[branchDtypeOf(dtype)] * effect;
}
