/**
 * The paired decode-step timing of the per-dtype benchmarks (bench-step.ts, bench-dtype.ts):
 * `generate()` (greedy, KV cache, a fixed number of new tokens) on a base and a plugged model of the
 * same file, one warm-up call each, then per round one timed call of each — alternating which goes
 * first, so a change of machine load during the run moves both sides alike.
 */

/** What the timing needs of a transformers.js causal LM (`sessions` for the profiled runs). */
export type Generator = { generate(o: unknown): Promise<unknown>; dispose(): Promise<unknown>; sessions?: Record<string, { endProfiling?: () => unknown }> };

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Milliseconds per generated token, one entry per round: `base[r]` and `plugin[r]` are round r's pair. */
export async function pairedStepTimes(base: Generator, plugged: Generator, inputs: object, tokens: number, rounds: number): Promise<{ base: number[]; plugin: number[] }> {
  const call = async (model: Generator): Promise<number> => {
    const t0 = performance.now();
    await model.generate({ ...inputs, max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false });
    return (performance.now() - t0) / tokens;
  };
  await call(base);
  await call(plugged);
  const b: number[] = [];
  const p: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      b.push(await call(base));
      p.push(await call(plugged));
    } else {
      p.push(await call(plugged));
      b.push(await call(base));
    }
  }
  return { base: b, plugin: p };
}
