/** AdamW (decoupled weight decay, bias-corrected moments) and the linear warm-up/decay schedule, in float64. */

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export class AdamW {
  private readonly m = new Map<string, Float64Array>();
  private readonly v = new Map<string, Float64Array>();
  private t = 0;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;

  constructor(o: AdamWOptions = {}) {
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0;
  }

  /** One update of every tensor in `params` from the same-keyed `grads`, at learning rate `lr`. */
  step(params: Map<string, Float64Array>, grads: Map<string, Float64Array>, lr: number): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    for (const [k, p] of params) {
      const g = grads.get(k);
      if (!g) continue;
      let m = this.m.get(k);
      let v = this.v.get(k);
      if (!m || !v) {
        m = new Float64Array(p.length);
        v = new Float64Array(p.length);
        this.m.set(k, m);
        this.v.set(k, v);
      }
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        m[i] = this.beta1 * m[i]! + (1 - this.beta1) * gi;
        v[i] = this.beta2 * v[i]! + (1 - this.beta2) * gi * gi;
        p[i] = p[i]! - lr * ((m[i]! / c1) / (Math.sqrt(v[i]! / c2) + this.eps) + this.weightDecay * p[i]!);
      }
    }
  }
}

/** HF's `linear` schedule: 0 → lr over `warmup` steps, then linearly to 0 at `total`. */
export function linearSchedule(lr: number, step: number, warmup: number, total: number): number {
  if (warmup > 0 && step < warmup) return (lr * (step + 1)) / warmup;
  return lr * Math.max(0, (total - step) / Math.max(1, total - warmup));
}

/** Scale every gradient so the global L2 norm is at most `max` (no-op for max ≤ 0); returns the norm before clipping. */
export function clipGlobalNorm(grads: Map<string, Float64Array>, max: number): number {
  let s = 0;
  for (const g of grads.values()) for (const x of g) s += x * x;
  const norm = Math.sqrt(s);
  if (max > 0 && norm > max) {
    const f = max / (norm + 1e-6);
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i]! *= f;
  }
  return norm;
}
