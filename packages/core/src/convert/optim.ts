/**
 * Gradient optimizers over a flat float64 parameter vector: L-BFGS (two-loop recursion, memory 10,
 * Armijo backtracking from the unit step) and Adam. Both are deterministic: no randomness, fixed
 * arithmetic order.
 */

/** Loss and gradient at θ (the gradient is written into `grad`). */
export type LossFn = (theta: Float64Array, grad: Float64Array) => number;

export interface OptimOptions {
  iters: number;
  /** Called after every iteration with (iteration, loss); return true to stop early. */
  onIter?: (iter: number, loss: number) => boolean | void;
  /** Stop when the loss falls below this value (default 0: never). */
  targetLoss?: number;
}

export interface OptimResult {
  loss: number;
  iters: number;
  evals: number;
}

function dotv(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** L-BFGS; θ is updated in place. */
export function lbfgs(f: LossFn, theta: Float64Array, opts: OptimOptions & { memory?: number }): OptimResult {
  const n = theta.length;
  const mem = opts.memory ?? 10;
  const g = new Float64Array(n);
  let loss = f(theta, g);
  let evals = 1;
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rhos: number[] = [];
  const d = new Float64Array(n);
  const trial = new Float64Array(n);
  const gNew = new Float64Array(n);
  let it = 0;
  let stall = 0;
  for (; it < opts.iters; it++) {
    if (n === 0 || !(loss > (opts.targetLoss ?? 0))) break;
    // Two-loop recursion: d = −H·g.
    d.set(g);
    const alphas: number[] = new Array(S.length);
    for (let j = S.length - 1; j >= 0; j--) {
      const a = rhos[j]! * dotv(S[j]!, d);
      alphas[j] = a;
      const y = Y[j]!;
      for (let i = 0; i < n; i++) d[i]! -= a * y[i]!;
    }
    if (S.length > 0) {
      const y = Y[S.length - 1]!;
      const gamma = dotv(S[S.length - 1]!, y) / dotv(y, y);
      for (let i = 0; i < n; i++) d[i]! *= gamma;
    } else {
      // First step: a unit step along −g scaled to move θ by ~1e-3 of its norm.
      const gn = Math.sqrt(dotv(g, g));
      const tn = Math.sqrt(dotv(theta, theta));
      const scale = gn > 0 ? (1e-3 * Math.max(tn, 1)) / gn : 0;
      for (let i = 0; i < n; i++) d[i]! *= scale;
    }
    for (let j = 0; j < S.length; j++) {
      const b = rhos[j]! * dotv(Y[j]!, d);
      const s = S[j]!;
      for (let i = 0; i < n; i++) d[i]! += (alphas[j]! - b) * s[i]!;
    }
    for (let i = 0; i < n; i++) d[i] = -d[i]!;
    let slope = dotv(g, d);
    if (!(slope < 0)) {
      // Not a descent direction: reset the memory and use steepest descent.
      S.length = 0;
      Y.length = 0;
      rhos.length = 0;
      const gn = Math.sqrt(dotv(g, g));
      const tn = Math.sqrt(dotv(theta, theta));
      const scale = gn > 0 ? (1e-3 * Math.max(tn, 1)) / gn : 0;
      for (let i = 0; i < n; i++) d[i] = -g[i]! * scale;
      slope = dotv(g, d);
      if (!(slope < 0)) break;
    }
    // Converged: the predicted decrease of a full step is below rounding of the loss.
    if (-slope <= 1e-14 * Math.abs(loss)) break;
    let step = 1;
    let newLoss = Infinity;
    let accepted = false;
    for (let ls = 0; ls < 30; ls++) {
      for (let i = 0; i < n; i++) trial[i] = theta[i]! + step * d[i]!;
      newLoss = f(trial, gNew);
      evals++;
      if (Number.isFinite(newLoss) && newLoss <= loss + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) {
      if (S.length === 0) break;
      S.length = 0;
      Y.length = 0;
      rhos.length = 0;
      continue;
    }
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = trial[i]! - theta[i]!;
      y[i] = gNew[i]! - g[i]!;
    }
    const sy = dotv(s, y);
    if (sy > 1e-300) {
      S.push(s);
      Y.push(y);
      rhos.push(1 / sy);
      if (S.length > mem) {
        S.shift();
        Y.shift();
        rhos.shift();
      }
    }
    theta.set(trial);
    g.set(gNew);
    const improved = loss - newLoss;
    loss = newLoss;
    if (improved <= 1e-15 * Math.max(loss, 1e-300)) stall++;
    else stall = 0;
    if (opts.onIter?.(it + 1, loss) === true) {
      it++;
      break;
    }
    if (stall >= 5) {
      it++;
      break;
    }
  }
  return { loss, iters: it, evals };
}

/** Adam with a cosine-decayed learning rate; keeps and returns the best θ seen. */
export function adam(f: LossFn, theta: Float64Array, opts: OptimOptions & { lr?: number }): OptimResult {
  const n = theta.length;
  const lr0 = opts.lr ?? 1e-2;
  const m = new Float64Array(n);
  const v = new Float64Array(n);
  const g = new Float64Array(n);
  const best = Float64Array.from(theta);
  let bestLoss = Infinity;
  const b1 = 0.9;
  const b2 = 0.999;
  let it = 0;
  let loss = Infinity;
  for (; it < opts.iters; it++) {
    loss = f(theta, g);
    if (loss < bestLoss) {
      bestLoss = loss;
      best.set(theta);
    }
    if (!(loss > (opts.targetLoss ?? 0))) break;
    const lr = lr0 * 0.5 * (1 + Math.cos((Math.PI * it) / opts.iters));
    const c1 = 1 - Math.pow(b1, it + 1);
    const c2 = 1 - Math.pow(b2, it + 1);
    for (let i = 0; i < n; i++) {
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      theta[i]! -= (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + 1e-12);
    }
    if (opts.onIter?.(it + 1, loss) === true) {
      it++;
      break;
    }
  }
  const last = f(theta, g);
  if (last < bestLoss) {
    bestLoss = last;
    best.set(theta);
  }
  theta.set(best);
  return { loss: bestLoss, iters: it, evals: it + 1 };
}
