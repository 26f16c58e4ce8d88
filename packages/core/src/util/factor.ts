/**
 * Balanced factorizations, used to derive tensor shapes for dimensions no official table lists.
 */

/**
 * The factorization d = f1·…·fk (f1 ≤ … ≤ fk) with the smallest largest factor, ties broken by the
 * largest smallest factor — the "most cubic" shape. Examples (k = 3): 768 → [8, 8, 12],
 * 1024 → [8, 8, 16], 4096 → [16, 16, 16], 576 → [8, 8, 9], 896 → [8, 8, 14], 32 → [2, 4, 4].
 */
export function balancedFactors(d: number, k: number): number[] {
  if (!Number.isSafeInteger(d) || d < 1 || k < 1) throw new RangeError(`cannot factor ${d} into ${k} factors`);
  let best: number[] | undefined;
  const better = (a: number[], b: number[] | undefined): boolean => {
    if (!b) return true;
    const [amax, bmax] = [a[a.length - 1]!, b[b.length - 1]!];
    if (amax !== bmax) return amax < bmax;
    return a[0]! > b[0]!;
  };
  const rec = (rest: number, min: number, acc: number[]): void => {
    if (acc.length === k - 1) {
      if (rest >= min) {
        const cand = [...acc, rest];
        if (better(cand, best)) best = cand;
      }
      return;
    }
    // Divisors f ≥ min with f^(k − len) ≤ rest keep the factors ascending.
    for (let f = min; f ** (k - acc.length) <= rest; f++) if (rest % f === 0) rec(rest / f, f, [...acc, f]);
  };
  rec(d, 1, []);
  return best!;
}
