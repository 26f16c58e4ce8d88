/**
 * fp16 decode step on a CPU execution provider with fp16 vs fp32 side branches (issue 12,
 * `branch_dtype`, branch-dtype.ts): `generate()` (KV cache, greedy, batch 1) on generated GPT-2 and
 * LLaMA `model_fp16.onnx`, three models of the same file in one run — the base, the plugin with
 * `branch_dtype: 'activation'` (fp16 A′/B′, which ORT's CPU EP casts to fp32 every run) and the
 * plugin with `branch_dtype: 'float32'` (the CPU default) — each with a LoRA on every target linear.
 *
 * Timing: per round one call of each, in a rotated order; ratios of medians to the base's median;
 * the spread is the range of per-round ratios; the load average (1 min) before and after. Then one
 * profiled session of each model (onnxruntime `enableProfiling`, two calls): the share of the base's kernel time in the
 * branch nodes (`/tensorpeft/…`) and in the Casts ORT inserts on branch tensors. Node only.
 */
import { mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { createAdapter } from '@tensorpeft/core';
import type { PluginBenchRow } from './bench.js';
import { splitProfileFolder, type ProfileSplit } from './bench-dtype.js';
import { decodeBenchSizes, median, withBenchModelFolder, type Generator } from './decode-step-timing.js';
import { from_pretrained } from './plugin.js';
import type { BranchDtype } from './rewrite-types.js';

export interface BranchDtypeBenchOptions {
  /** Default `['gpt2', 'llama']`. */
  archs?: Array<'gpt2' | 'llama'>;
  /** Default `['tiny', 'base']` (base: GPT-2 small and SmolLM-135M shapes). */
  sizes?: Array<'tiny' | 'base'>;
  /** Tokens per timed call (default 16; 4 with quick). */
  tokens?: number;
  /** Rounds (default 7; 3 with quick). */
  rounds?: number;
  quick?: boolean;
  /** LoRA rank (default 16). */
  rank?: number;
  /** Passed to `from_pretrained` as `fuse_siblings` when given (sibling fusion, rewrite-siblings.ts). */
  fuseSiblings?: boolean;
  log?: (line: string) => void;
}

const BRANCH_DTYPES: readonly BranchDtype[] = ['activation', 'float32'];
const PROFILED_CALLS = 2;

/** Two rows per (arch, size): step time ratios, and the kernel-time split of each branch dtype. */
export async function runBranchDtypeBench(opts: BranchDtypeBenchOptions = {}): Promise<PluginBenchRow[]> {
  const archs = opts.archs ?? ['gpt2', 'llama'];
  const sizes = opts.sizes ?? ['tiny', 'base'];
  const { tokens, rounds, rank } = decodeBenchSizes(opts);
  const log = opts.log ?? (() => undefined);
  const fuse = opts.fuseSiblings === undefined ? {} : { fuse_siblings: opts.fuseSiblings };
  const gen = (await import('@tensorpeft/model-gen')) as typeof import('@tensorpeft/model-gen');
  return withBenchModelFolder('tp-bench-branch-dtype-', async (root, tf) => {
    const { env, AutoModelForCausalLM, AutoTokenizer } = tf;
    const rows: PluginBenchRow[] = [];
    for (const size of sizes)
      for (const arch of archs) {
        const id = `${arch}-${size}`;
        log(`${id}: generating model_fp16`);
        const m = await gen.writeModel({ arch, size, seed: 1, quantized: false, dtypes: ['fp16'], ...(arch === 'gpt2' ? { gpt2Conv1d: 'MatMul' as const } : {}) }, path.join(root, id));
        const tok = await AutoTokenizer.from_pretrained(id);
        const inputs = tok('the happy model reads a long text today and');
        const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { r: rank } });
        const shape = `${id} fp16, LoRA r=${rank} on ${m.shape.modules.length} linears, onnxruntime-node cpu`;
        const load0 = loadavg()[0]!;
        const models: Generator[] = [(await AutoModelForCausalLM.from_pretrained(id, { dtype: 'fp16' })) as unknown as Generator];
        for (const bd of BRANCH_DTYPES) models.push((await from_pretrained(env, AutoModelForCausalLM, id, { dtype: 'fp16', device: 'cpu', branch_dtype: bd, adapters: { a: adapter }, ...fuse })) as unknown as Generator);
        const times = await rotatedStepTimes(models, inputs, tokens, rounds);
        for (const x of models) await x.dispose();
        const load1 = loadavg()[0]!;
        const base = median(times[0]!);
        const ratio = (k: number) => median(times[k]!) / base;
        const spread = (k: number) => {
          const per = times[k]!.map((t, r) => t / times[0]![r]!);
          return `${Math.min(...per).toFixed(3)}–${Math.max(...per).toFixed(3)}`;
        };
        rows.push({
          bench: 'decode step fp16 on CPU: fp32 side branches (branch_dtype float32) ÷ base',
          shape,
          ms: median(times[2]!),
          ratio: ratio(2),
          note: `base ${base.toFixed(3)} ms/token; fp32 branches ${ratio(2).toFixed(3)}× (rounds ${spread(2)}), fp16 branches ${ratio(1).toFixed(3)}× (rounds ${spread(1)}); medians over ${rounds} rotated rounds × ${tokens} tokens; load ${load0.toFixed(2)} → ${load1.toFixed(2)}`,
        });
        log(`${id}: ${rows[rows.length - 1]!.note}`);
        const baseSplit = await profiled(env, AutoModelForCausalLM, id, undefined, adapter, inputs, tokens, path.join(root, `profile-${id}-base`), fuse);
        const splits: ProfileSplit[] = [];
        for (const bd of BRANCH_DTYPES) splits.push(await profiled(env, AutoModelForCausalLM, id, bd, adapter, inputs, tokens, path.join(root, `profile-${id}-${bd}`), fuse));
        const total = (x: ProfileSplit) => x.branch + x.branchCasts + x.otherCasts + x.rest;
        const pct = (x: number, t: number) => `${((100 * x) / t).toFixed(1)} %`;
        // Shares of the base step's kernel time, as the profile put them.
        const desc = (x: ProfileSplit) =>
          `kernel time ${(total(x) / total(baseSplit)).toFixed(3)}× the base's; branch nodes ${pct(x.branch, total(baseSplit))}, Casts ORT inserts on branch tensors ${pct(x.branchCasts, total(baseSplit))} of the base step (${(x.branchCasts / 1000 / tokens / PROFILED_CALLS).toFixed(3)} ms/token)`;
        rows.push({
          bench: 'decode step fp16 on CPU: branch + its Casts, share of the base kernel time (fp32 branches)',
          shape,
          ms: (splits[1]!.branch + splits[1]!.branchCasts) / 1000 / tokens / PROFILED_CALLS,
          ratio: total(splits[1]!) / total(baseSplit),
          note: `fp32 branches: ${desc(splits[1]!)}; fp16 branches: ${desc(splits[0]!)}; base ${(total(baseSplit) / 1000 / tokens / PROFILED_CALLS).toFixed(3)} kernel ms/token; ratio = kernel time fp32 branches ÷ base (onnxruntime enableProfiling, ${PROFILED_CALLS} ${tokens}-token calls each, prefill included)`,
        });
        log(`${id}: ${rows[rows.length - 1]!.note}`);
      }
    return rows;
  });
}

/** ms per generated token, per model, per round (round r calls the models starting at r mod count). */
async function rotatedStepTimes(models: Generator[], inputs: object, tokens: number, rounds: number): Promise<number[][]> {
  const call = async (model: Generator): Promise<number> => {
    const t0 = performance.now();
    await model.generate({ ...inputs, max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false });
    return (performance.now() - t0) / tokens;
  };
  for (const x of models) await call(x);
  const out = models.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++)
    for (let i = 0; i < models.length; i++) {
      const k = (r + i) % models.length;
      out[k]!.push(await call(models[k]!));
    }
  return out;
}

/** Kernel time by class of `PROFILED_CALLS` profiled generate()s: the plugin's with branch dtype `bd`, or (undefined) the base. */
async function profiled(env: unknown, Loader: unknown, id: string, bd: BranchDtype | undefined, adapter: unknown, inputs: unknown, tokens: number, dir: string, fuse: object): Promise<ProfileSplit> {
  await mkdir(dir, { recursive: true });
  const session_options = { enableProfiling: true, profileFilePrefix: path.join(dir, 'ort') };
  const model = (
    bd === undefined
      ? await (Loader as { from_pretrained(id: string, o: unknown): Promise<unknown> }).from_pretrained(id, { dtype: 'fp16', device: 'cpu', session_options })
      : await from_pretrained(env as never, Loader as never, id, { dtype: 'fp16', device: 'cpu', branch_dtype: bd, adapters: { a: adapter }, session_options, ...fuse } as never)
  ) as Generator;
  // Two calls (the first one's warm-up inside the profile, for every model alike): kernel times per
  // token are the sum over both ÷ 2·tokens, steadier than one call on a loaded machine.
  for (let i = 0; i < PROFILED_CALLS; i++) await model.generate({ ...(inputs as object), max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false });
  for (const s of Object.values(model.sessions ?? {})) await s.endProfiling?.();
  await model.dispose();
  return splitProfileFolder(dir);
}
