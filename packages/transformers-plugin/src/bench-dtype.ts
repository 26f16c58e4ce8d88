/**
 * Branch overhead per generated token on the LLM dtypes apps ship (issue 12): `generate()` (KV
 * cache, greedy, batch 1) on generated GPT-2 and LLaMA files `model_q4.onnx` / `model_fp16.onnx`,
 * the plugin with a LoRA on every target linear against the same file without the plugin, on
 * onnxruntime-node (CPU). Goal: ≤ 1.05× the base step.
 *
 * Measurement: per round, one timed call of each (alternating which goes first); the ratio is the
 * ratio of the two medians, all in one run; the spread is the range of the per-round ratios; the
 * load average (1 min) is read before and after each configuration, since other processes on the
 * machine move both medians. Then one profiled call of each (onnxruntime `enableProfiling`): the
 * kernel time per token of the branch's own nodes (`/tensorpeft/…`), of the Casts onnxruntime inserts
 * (`InsertedPrecisionFreeCast_…`: fp16 nodes it has no CPU kernel for run in fp32) on the branch's
 * tensors and elsewhere, and of every other node — plugin minus base: what the overhead is made of.
 * Needs `@tensorpeft/model-gen` (imported on use) and a Node runtime.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import { createAdapter } from '@tensorpeft/core';
import type { PluginBenchRow } from './bench.js';
import { from_pretrained } from './plugin.js';
import { decodeBenchSizes, median, pairedStepTimes, withBenchModelFolder, type Generator } from './decode-step-timing.js';

export interface DtypeBenchOptions {
  /** Default `['gpt2', 'llama']`. */
  archs?: Array<'gpt2' | 'llama'>;
  /** Default `['q4', 'fp16']`. */
  dtypes?: Array<'q4' | 'fp16' | 'q4f16'>;
  /** Default `['tiny', 'base']` (base: GPT-2 small and SmolLM-135M shapes). */
  sizes?: Array<'tiny' | 'base'>;
  /** Tokens generated per timed call (default 16; 4 with quick). */
  tokens?: number;
  /** Paired rounds (default 7; 3 with quick). */
  rounds?: number;
  quick?: boolean;
  /** LoRA rank (default 16). */
  rank?: number;
  /**
   * Load the plugin's models with sibling fusion (`fuse_siblings`, rewrite-siblings.ts; default false,
   * the plugin's default: one branch per linear); `both` measures unfused then fused per
   * configuration (rows of each, same model files, back to back).
   */
  fuseSiblings?: boolean | 'both';
  /** Profile each plugin configuration once (default true). */
  profile?: boolean;
  log?: (line: string) => void;
}

/** The overhead goal of issue 12. */
export const DTYPE_STEP_GOAL = 1.05;

/** Kernel time (µs) by class from an onnxruntime profile (Chrome trace JSON). */
export interface ProfileSplit {
  /** The plugin's branch nodes (names under `/tensorpeft/`). */
  branch: number;
  /** Casts onnxruntime inserted on the branch's tensors. */
  branchCasts: number;
  /** Casts onnxruntime inserted elsewhere (fp16 nodes without a CPU kernel run in fp32). */
  otherCasts: number;
  /** Every other node. */
  rest: number;
}

const INSERTED_CAST = 'InsertedPrecisionFreeCast_';

export function splitProfile(events: ReadonlyArray<{ cat?: string; name?: string; dur?: number }>): ProfileSplit {
  const out: ProfileSplit = { branch: 0, branchCasts: 0, otherCasts: 0, rest: 0 };
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time') || typeof e.dur !== 'number') continue;
    const node = e.name.slice(0, -'_kernel_time'.length);
    const ours = node.includes('/tensorpeft/') || node.includes('tensorpeft.');
    if (node.startsWith(INSERTED_CAST)) {
      if (ours) out.branchCasts += e.dur;
      else out.otherCasts += e.dur;
    } else if (ours) out.branch += e.dur;
    else out.rest += e.dur;
  }
  return out;
}

/** Rows per (arch, size, dtype): the overhead row, and a profile row when profiling. */
export async function runDtypeBench(opts: DtypeBenchOptions = {}): Promise<PluginBenchRow[]> {
  const archs = opts.archs ?? ['gpt2', 'llama'];
  const dtypes = opts.dtypes ?? ['q4', 'fp16'];
  const sizes = opts.sizes ?? ['tiny', 'base'];
  const { tokens, rounds, rank } = decodeBenchSizes(opts);
  const fuses = opts.fuseSiblings === 'both' ? [false, true] : [opts.fuseSiblings ?? false];
  const log = opts.log ?? (() => undefined);
  const gen = (await import('@tensorpeft/model-gen')) as typeof import('@tensorpeft/model-gen');
  return withBenchModelFolder('tp-bench-dtype-', async (root, tf) => {
    const { env, AutoModelForCausalLM, AutoTokenizer } = tf;
    const rows: PluginBenchRow[] = [];
    for (const size of sizes)
      for (const arch of archs) {
        const id = `${arch}-${size}`;
        log(`${id}: generating the model (${dtypes.join(', ')})`);
        // GPT-2's Conv1D as MatMul: the 4-bit quantizer takes MatMul only.
        const m = await gen.writeModel({ arch, size, seed: 1, quantized: false, dtypes, ...(arch === 'gpt2' ? { gpt2Conv1d: 'MatMul' as const } : {}) }, path.join(root, id));
        const tok = await AutoTokenizer.from_pretrained(id);
        const inputs = tok('the happy model reads a long text today and');
        const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { r: rank } });
        const shape = `${id}, LoRA r=${rank} on ${m.shape.modules.length} linears`;
        for (const dtype of dtypes) {
          for (const fuse of fuses) {
            const load0 = loadavg()[0]!;
            const base = (await AutoModelForCausalLM.from_pretrained(id, { dtype })) as unknown as Generator;
            const plugged = (await from_pretrained(env, AutoModelForCausalLM, id, { dtype, adapters: { a: adapter }, fuse_siblings: fuse })) as unknown as Generator;
            const { base: b, plugin: p } = await pairedStepTimes(base, plugged, inputs, tokens, rounds);
            await base.dispose();
            await plugged.dispose();
            const load1 = loadavg()[0]!;
            const ratio = median(p) / median(b);
            const per = p.map((x, i) => x / b[i]!);
            const met = ratio <= DTYPE_STEP_GOAL ? 'met' : 'NOT met';
            rows.push({
              bench: `decode step overhead ${dtype} (plugin + adapter ÷ base)${fuse ? ', fused siblings' : ''}`,
              shape,
              ms: median(p),
              ratio,
              note: `base ${median(b).toFixed(3)} ms/token; ratio of medians over ${rounds} paired rounds × ${tokens} tokens; per-round ratios ${Math.min(...per).toFixed(3)}–${Math.max(...per).toFixed(3)}; load ${load0.toFixed(2)} → ${load1.toFixed(2)}; goal ≤ ${DTYPE_STEP_GOAL}×: ${met}`,
            });
            log(`${id} ${dtype}${fuse ? '' : ' (unfused)'}: base ${median(b).toFixed(3)} ms/token, plugin ${median(p).toFixed(3)} (${ratio.toFixed(3)}×, rounds ${Math.min(...per).toFixed(3)}–${Math.max(...per).toFixed(3)}, load ${load0.toFixed(2)} → ${load1.toFixed(2)})`);
            if (opts.profile !== false) rows.push(await profileRow(env, AutoModelForCausalLM, id, dtype, adapter, inputs, tokens, root, shape, log, fuse));
            log(`${id} ${dtype}: done`);
          }
        }
      }
    return rows;
  });
}

/** Kernel time by class of one profiled generate() of `id` (the plugin's with `adapter`, or the base). */
async function profiled(env: unknown, Loader: unknown, id: string, dtype: string, adapter: unknown, inputs: unknown, tokens: number, dir: string, fuse = true): Promise<ProfileSplit> {
  await mkdir(dir, { recursive: true });
  const session_options = { enableProfiling: true, profileFilePrefix: path.join(dir, 'ort') };
  const model = (
    adapter
      ? await from_pretrained(env as never, Loader as never, id, { dtype, adapters: { a: adapter }, session_options, fuse_siblings: fuse } as never)
      : await (Loader as { from_pretrained(id: string, o: unknown): Promise<unknown> }).from_pretrained(id, { dtype, session_options })
  ) as Generator;
  await model.generate({ ...(inputs as object), max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false });
  for (const s of Object.values(model.sessions ?? {})) await s.endProfiling?.();
  await model.dispose();
  return splitProfileFolder(dir);
}

/** Where the plugin's extra kernel time per token goes: plugin profile minus base profile. */
async function profileRow(env: unknown, Loader: unknown, id: string, dtype: string, adapter: unknown, inputs: unknown, tokens: number, root: string, shape: string, log: (l: string) => void, fuse = true): Promise<PluginBenchRow> {
  // A folder per call: `profiled` sums every profile file in its folder.
  const base = await profiled(env, Loader, id, dtype, undefined, inputs, tokens, path.join(root, `profile-${id}-${dtype}-base${fuse ? '' : '-unfused'}`));
  const plug = await profiled(env, Loader, id, dtype, adapter, inputs, tokens, path.join(root, `profile-${id}-${dtype}-plugin${fuse ? '' : '-unfused'}`), fuse);
  const per = (us: number) => us / 1000 / tokens;
  const total = (x: ProfileSplit) => x.branch + x.branchCasts + x.otherCasts + x.rest;
  const f = (us: number) => `${per(us).toFixed(3)}`;
  // The branch's kernel time as a share of the base step's (the overhead goal's measure without wall-clock noise).
  const share = (100 * (plug.branch + plug.branchCasts)) / Math.max(1, total(base));
  const note =
    `branch ${share.toFixed(1)} % of the base kernel time; kernel ms/token, plugin vs base: total ${f(total(plug))} vs ${f(total(base))}; branch nodes ${f(plug.branch)}, Casts on branch tensors ${f(plug.branchCasts)}, ` +
    `other inserted Casts ${f(plug.otherCasts)} vs ${f(base.otherCasts)}, other nodes ${f(plug.rest)} vs ${f(base.rest)} (onnxruntime enableProfiling, one ${tokens}-token call each, prefill included)`;
  log(`${id} ${dtype}${fuse ? '' : ' (unfused)'} profile: ${note}`);
  return { bench: `decode step profile ${dtype}: kernel time plugin ÷ base${fuse ? ', fused siblings' : ''}`, shape, ms: per(total(plug)), ratio: total(plug) / Math.max(1, total(base)), note };
}

/** The kernel-time split summed over every ORT profile (`*.json`) written into `dir`. */
export async function splitProfileFolder(dir: string): Promise<ProfileSplit> {
  const split: ProfileSplit = { branch: 0, branchCasts: 0, otherCasts: 0, rest: 0 };
  for (const f of await readdir(dir)) {
    if (!f.endsWith('.json')) continue;
    const part = splitProfile(JSON.parse(await readFile(path.join(dir, f), 'utf8')) as never);
    for (const k of Object.keys(split) as Array<keyof ProfileSplit>) split[k] += part[k];
  }
  return split;
}
