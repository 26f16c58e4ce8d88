/**
 * Decode-step benchmark per dtype: the time per generated token of `generate()` (KV cache, greedy,
 * batch 1) on a generated decoder with the plugin and a LoRA adapter on every target linear, against
 * the same file without the plugin — the branch overhead on the dtypes WebGPU/CPU apps ship
 * (q4, fp16, …). Paired per round (base then plugin, alternating which goes first), median of the
 * per-round ratios. Needs `@tensorpeft/model-gen` (imported on use) and a Node runtime.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createAdapter } from '@tensorpeft/core';
import { from_pretrained } from './plugin.js';
import { median, pairedStepTimes, type Generator } from './decode-step-timing.js';
import type { PluginBenchRow } from './bench.js';

export interface StepBenchOptions {
  /** Default `['gpt2', 'llama']`. */
  archs?: Array<'gpt2' | 'llama'>;
  /** transformers.js dtypes to time (default `['fp32', 'fp16', 'q4']`). */
  dtypes?: Array<'fp32' | 'fp16' | 'q8' | 'int8' | 'uint8' | 'q4' | 'q4f16' | 'bnb4'>;
  /** `base` (GPT-2 small, SmolLM-135M shapes) or `tiny` (default `base`). */
  size?: 'base' | 'tiny';
  /** Tokens generated per timed call (default 16). */
  tokens?: number;
  /** Paired rounds (default 5). */
  rounds?: number;
  /** LoRA rank (default 16). */
  rank?: number;
  log?: (line: string) => void;
}

/** One row per (arch, dtype): `ms` = plugin ms per generated token, `ratio` = plugin ÷ base (paired). */
export async function runStepBench(opts: StepBenchOptions = {}): Promise<PluginBenchRow[]> {
  const archs = opts.archs ?? ['gpt2', 'llama'];
  const dtypes = opts.dtypes ?? ['fp32', 'fp16', 'q4'];
  const size = opts.size ?? 'base';
  const tokens = opts.tokens ?? 16;
  const rounds = opts.rounds ?? 5;
  const log = opts.log ?? (() => undefined);
  const tf = await import('@huggingface/transformers');
  const { env, AutoModelForCausalLM, AutoTokenizer } = tf;
  const gen = (await import('@tensorpeft/model-gen')) as typeof import('@tensorpeft/model-gen');
  const extra = dtypes.filter((d) => d !== 'fp32' && d !== 'q8') as Array<'fp16' | 'int8' | 'uint8' | 'q4' | 'q4f16' | 'bnb4'>;
  const rows: PluginBenchRow[] = [];
  const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath };
  const root = await mkdtemp(path.join(tmpdir(), 'tp-bench-step-'));
  try {
    env.allowRemoteModels = false;
    env.localModelPath = `${root}/`;
    for (const arch of archs) {
      const id = `${arch}-${size}`;
      log(`${id}: generating the model (${dtypes.join(', ')})`);
      // GPT-2's Conv1D as MatMul: the 4- and 8-bit quantizers take MatMul only.
      const m = await gen.writeModel({ arch, size, seed: 1, quantized: dtypes.includes('q8'), dtypes: extra, ...(arch === 'gpt2' ? { gpt2Conv1d: 'MatMul' as const } : {}) }, path.join(root, id));
      const tok = await AutoTokenizer.from_pretrained(id);
      const inputs = tok('the happy model reads a long text today and');
      const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { r: opts.rank ?? 16 } });
      for (const dtype of dtypes) {
        const base = (await AutoModelForCausalLM.from_pretrained(id, { dtype })) as unknown as Generator;
        const plugged = (await from_pretrained(env, AutoModelForCausalLM, id, { dtype, adapters: { a: adapter } })) as unknown as Generator;
        const { base: b, plugin: p } = await pairedStepTimes(base, plugged, inputs, tokens, rounds);
        const ratios = p.map((y, i) => y / b[i]!);
        await base.dispose();
        await plugged.dispose();
        const shape = `${id} ${dtype}, LoRA r=${opts.rank ?? 16} on ${m.shape.modules.length} linears`;
        rows.push({ bench: 'decode step (base)', shape, ms: median(b) });
        rows.push({ bench: 'decode step (plugin + adapter)', shape, ms: median(p), ratio: median(ratios), note: `ms per generated token, ${tokens} tokens × ${rounds} paired rounds` });
        log(`${id} ${dtype}: base ${median(b).toFixed(2)} ms/token, plugin ${median(p).toFixed(2)} ms/token (${median(ratios).toFixed(3)}×)`);
      }
    }
  } finally {
    Object.assign(env, saved);
    await rm(root, { recursive: true, force: true });
  }
  return rows;
}
