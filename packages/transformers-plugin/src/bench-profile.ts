/**
 * Where a tiny LLaMA token step goes inside ONNX Runtime, plain vs through the plugin with one LoRA
 * (issue 16: the per-run cost left once the JS hook is microseconds). Both models generate with
 * ORT's profiler on (`enableProfiling`); the Chrome-trace files are summed per op type (kernel time
 * of the `Node` events, per generated token), and the whole `model_run` per token, whose excess
 * over the kernels is ORT's own per-run work (binding inputs, allocation, the executor).
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createAdapter } from '@tensorpeft/core';
import { from_pretrained } from './plugin.js';
import type { PluginBenchRow } from './bench.js';

interface TraceEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string; node_index?: string };
}

/** µs per token per op type (kernel time), the `model_run` total, and the branch nodes' share. */
function summarize(events: TraceEvent[], tokens: number): { byOp: Map<string, number>; run: number; kernels: number; branch: number } {
  const byOp = new Map<string, number>();
  let run = 0;
  let kernels = 0;
  let branch = 0;
  for (const e of events) {
    if (e.cat === 'Session' && e.name === 'model_run') run += e.dur ?? 0;
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    const d = e.dur ?? 0;
    byOp.set(op, (byOp.get(op) ?? 0) + d / tokens);
    kernels += d;
    if (e.name.startsWith('/tensorpeft/')) branch += d;
  }
  return { byOp, run: run / tokens, kernels: kernels / tokens, branch: branch / tokens };
}

async function profiled(dir: string, load: (opts: Record<string, unknown>) => Promise<unknown>, generate: (m: unknown) => Promise<unknown>, prefix: string): Promise<TraceEvent[]> {
  const model = await load({ session_options: { enableProfiling: true, profileFilePrefix: path.join(dir, prefix) } });
  await generate(model);
  const s = (model as { sessions: Record<string, { handler?: { endProfiling?: () => void }; endProfiling?: () => unknown }> }).sessions['model']!;
  await s.endProfiling?.();
  await (model as { dispose(): Promise<unknown> }).dispose();
  const file = (await readdir(dir)).find((f) => f.startsWith(prefix) && f.endsWith('.json'));
  if (!file) throw new Error(`no ORT profile written for ${prefix}`);
  return JSON.parse(await readFile(path.join(dir, file), 'utf8')) as TraceEvent[];
}

/** Rows: per op type µs/token plain vs plugin + LoRA, and `model_run` vs kernel totals. */
export async function runProfileRows(opts: { tokens?: number; log?: (l: string) => void } = {}): Promise<PluginBenchRow[]> {
  const tokens = opts.tokens ?? 32;
  const tf = await import('@huggingface/transformers');
  const { env, AutoModelForCausalLM, AutoTokenizer } = tf;
  const gen = (await import('@tensorpeft/model-gen')) as typeof import('@tensorpeft/model-gen');
  const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath };
  const root = await mkdtemp(path.join(tmpdir(), 'tp-bench-profile-'));
  try {
    env.allowRemoteModels = false;
    env.localModelPath = `${root}/`;
    const m = await gen.writeModel({ arch: 'llama', size: 'tiny', seed: 4, quantized: false }, path.join(root, 'llama'));
    const tok = await AutoTokenizer.from_pretrained('llama');
    const inputs = tok('the quick brown fox') as Record<string, unknown>;
    const lora = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { r: 8 } });
    const generate = async (x: unknown) => {
      const g = (x as { generate(o: unknown): Promise<unknown> }).generate;
      const o = { ...inputs, max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false };
      await g.call(x, o); // warm-up (first-run allocations) inside the profile too: both models alike
      await g.call(x, o);
    };
    opts.log?.('profile: plain');
    const plain = summarize(await profiled(root, (o) => AutoModelForCausalLM.from_pretrained('llama', { dtype: 'fp32', ...o }), generate, 'plain'), 2 * tokens);
    opts.log?.('profile: plugin + LoRA');
    const withLora = summarize(
      await profiled(
        root,
        async (o) => {
          const mm = await from_pretrained(env, AutoModelForCausalLM, 'llama', { dtype: 'fp32', ...o });
          await mm.load_adapter(lora, { adapter_name: 'a' });
          mm.set_adapter('a');
          return mm;
        },
        generate,
        'lora',
      ),
      2 * tokens,
    );
    const shape = `llama-tiny, ${tokens} new tokens (×2), µs per token`;
    const rows: PluginBenchRow[] = [
      { bench: 'ORT profile: model_run per token, plain', shape, ms: plain.run / 1000, note: `kernels ${plain.kernels.toFixed(0)} µs, outside kernels ${(plain.run - plain.kernels).toFixed(0)} µs` },
      {
        bench: 'ORT profile: model_run per token, plugin + one LoRA',
        shape,
        ms: withLora.run / 1000,
        ratio: withLora.run / plain.run,
        note: `kernels ${withLora.kernels.toFixed(0)} µs (branch nodes /tensorpeft/ ${withLora.branch.toFixed(0)} µs), outside kernels ${(withLora.run - withLora.kernels).toFixed(0)} µs; ratio to plain`,
      },
    ];
    const ops = [...new Set([...plain.byOp.keys(), ...withLora.byOp.keys()])].sort((a, b) => (withLora.byOp.get(b) ?? 0) - (plain.byOp.get(b) ?? 0) - ((withLora.byOp.get(a) ?? 0) - (plain.byOp.get(a) ?? 0)));
    for (const op of ops.slice(0, 8)) {
      const p = plain.byOp.get(op) ?? 0;
      const l = withLora.byOp.get(op) ?? 0;
      rows.push({ bench: `ORT profile: ${op} kernel time per token`, shape, ms: l / 1000, note: `plugin + LoRA ${l.toFixed(1)} µs vs plain ${p.toFixed(1)} µs (+${(l - p).toFixed(1)})` });
    }
    return rows;
  } finally {
    Object.assign(env, saved);
    await rm(root, { recursive: true, force: true });
  }
}
