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

/** What every decode-step bench reads the same way (bench-dtype.ts, bench-branch-dtype.ts). */
export interface DecodeBenchDefaults {
  tokens?: number;
  rounds?: number;
  rank?: number;
  quick?: boolean;
}

/** New tokens per call, rounds, LoRA rank: the given values, or the quick / full defaults. */
export function decodeBenchSizes(opts: DecodeBenchDefaults): { tokens: number; rounds: number; rank: number } {
  return { tokens: opts.tokens ?? (opts.quick ? 4 : 16), rounds: opts.rounds ?? (opts.quick ? 3 : 7), rank: opts.rank ?? 16 };
}

/**
 * Runs `fn` with transformers.js loading local models only from a fresh temporary folder (`root`,
 * where `fn` writes the generated models), then restores `env` and removes the folder.
 */
export async function withBenchModelFolder<T>(prefix: string, fn: (root: string, tf: typeof import('@huggingface/transformers')) => Promise<T>): Promise<T> {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const tf = await import('@huggingface/transformers');
  const { env } = tf;
  const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath };
  const root = await mkdtemp(path.join(tmpdir(), prefix));
  try {
    env.allowRemoteModels = false;
    env.localModelPath = `${root}/`;
    return await fn(root, tf);
  } finally {
    Object.assign(env, saved);
    await rm(root, { recursive: true, force: true });
  }
}
