/**
 * Per-run overhead of the plugin on a tiny LLaMA's greedy generation (a token step of well under a
 * millisecond, where any fixed cost per session run shows): plain transformers.js vs the plugin with
 * no adapter and with one LoRA, measured in one process. Configurations run in rotating blocks (each
 * block's first generation a warm-up); a ratio is the median over rounds of block median ÷ the plain
 * block median of the same round, the spread is min–max of those per-round ratios. Issue 16.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createAdapter } from '@tensorpeft/core';
import { AdapterRegistry, from_pretrained } from './plugin.js';
import type { PluginBenchRow } from './bench.js';

export interface OverheadBenchOptions {
  /** Rounds of blocks (default 6; 2 with `quick`). */
  rounds?: number;
  /** Timed generations per block (default 5; 2 with `quick`). */
  block?: number;
  /** New tokens per generation (default 32). */
  tokens?: number;
  quick?: boolean;
  log?: (line: string) => void;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

type Gen = (opts: Record<string, unknown>) => Promise<unknown>;

/** Median µs per run of a stand-in session called directly and through the registry's hook. */
async function wrapperMicrosAsync(modules: number, n: number): Promise<{ direct: number; hooked: number }> {
  const names = ['input_ids', 'attention_mask'];
  const inputMetadata: Array<{ name: string; shape: Array<number | string> }> = [];
  for (let i = 0; i < modules; i++) {
    names.push(`tensorpeft.m${i}.A`, `tensorpeft.m${i}.B`);
    inputMetadata.push({ name: `tensorpeft.m${i}.A`, shape: [64, `rho_${i}`] }, { name: `tensorpeft.m${i}.B`, shape: [`rho_${i}`, 64] });
  }
  const out = {};
  const session = { inputNames: names, inputMetadata, run: async (_f: unknown) => out };
  const direct = session.run;
  new AdapterRegistry([session as never]);
  const feeds = { input_ids: 1, attention_mask: 2 };
  const res = { direct: [] as number[], hooked: [] as number[] };
  for (let r = 0; r < 5; r++) {
    for (const k of ['direct', 'hooked'] as const) {
      const f = k === 'direct' ? direct : session.run;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await f(feeds);
      res[k].push(((performance.now() - t0) / n) * 1000);
    }
  }
  return { direct: median(res.direct), hooked: median(res.hooked) };
}

/** Rows: plain generation, and the plugin with no adapter / one LoRA as ratios to plain. */
export async function runOverheadBench(opts: OverheadBenchOptions = {}): Promise<PluginBenchRow[]> {
  const quick = opts.quick ?? false;
  const rounds = opts.rounds ?? (quick ? 2 : 6);
  const block = opts.block ?? (quick ? 2 : 5);
  const tokens = opts.tokens ?? 32;
  const log = opts.log ?? (() => undefined);
  const tf = await import('@huggingface/transformers');
  const { env, AutoModelForCausalLM, AutoTokenizer } = tf;
  const gen = (await import('@tensorpeft/model-gen')) as typeof import('@tensorpeft/model-gen');
  const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath };
  const root = await mkdtemp(path.join(tmpdir(), 'tp-bench-overhead-'));
  const load0 = loadavg()[0]!;
  try {
    env.allowRemoteModels = false;
    env.localModelPath = `${root}/`;
    log('llama-tiny: generating the model');
    const m = await gen.writeModel({ arch: 'llama', size: 'tiny', seed: 4, quantized: false }, path.join(root, 'llama'));
    const tok = await AutoTokenizer.from_pretrained('llama');
    const inputs = tok('the quick brown fox') as Record<string, unknown>;
    const plain = await AutoModelForCausalLM.from_pretrained('llama', { dtype: 'fp32' });
    const model = await from_pretrained(env, AutoModelForCausalLM, 'llama', { dtype: 'fp32' });
    // base_session: the plainly loaded twin runs while no adapter is active (second copy of the weights).
    const twinned = await from_pretrained(env, AutoModelForCausalLM, 'llama', { dtype: 'fp32', base_session: true });
    // What the twin costs: ORT holds another copy of the weights (RSS deltas are GC noise here).
    const weightBytes = (await stat(path.join(root, 'llama', 'onnx', 'model.onnx'))).size;
    const lora = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { r: 8 } });
    await model.load_adapter(lora, { adapter_name: 'a' });
    const g = (x: unknown, extra: Record<string, unknown>) => () => (x as { generate: Gen }).generate({ ...inputs, max_new_tokens: tokens, min_new_tokens: tokens, do_sample: false, ...extra });
    const configs: Array<[string, () => Promise<unknown>]> = [
      ['plain', g(plain, {})],
      ['none', g(model, { adapter: null })],
      ['lora', g(model, { adapter: 'a' })],
      ['twin', g(twinned, { adapter: null })],
    ];
    const per: Record<string, number[]> = { plain: [], none: [], lora: [], twin: [] };
    const all: Record<string, number[]> = { plain: [], none: [], lora: [], twin: [] };
    for (let r = 0; r < rounds; r++) {
      // Rotate the order so no configuration always runs first.
      for (let k = 0; k < configs.length; k++) {
        const [name, f] = configs[(k + r) % configs.length]!;
        await f();
        const b: number[] = [];
        for (let i = 0; i < block; i++) {
          const t0 = performance.now();
          await f();
          b.push(performance.now() - t0);
        }
        all[name]!.push(...b);
        per[name]!.push(median(b));
      }
    }
    const load1 = loadavg()[0]!;
    const ratios = (k: string): number[] => per[k]!.map((x, i) => x / per.plain![i]!);
    const spread = (xs: number[]): string => `${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}`;
    const shape = `llama-tiny (hidden ${m.shape.hiddenSize}, ${m.shape.numLayers} layers), ${tokens} new tokens`;
    const loadNote = `load average ${load0.toFixed(2)} → ${load1.toFixed(2)}; ${rounds} rounds × ${block}`;
    const plainMs = median(all.plain!);
    const rows: PluginBenchRow[] = [
      { bench: 'generate: plain transformers.js', shape, ms: plainMs, note: `${(plainMs / tokens).toFixed(3)} ms/token; ${loadNote}` },
    ];
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(2)} MB`;
    for (const [k, label] of [['none', 'no adapter'], ['lora', 'one LoRA r=8'], ['twin', 'no adapter, base_session (original graph)']] as const) {
      const rs = ratios(k);
      const med = median(rs);
      rows.push({
        bench: `generate: plugin, ${label} (per-run overhead)`,
        shape,
        ms: median(all[k]!),
        ratio: med,
        note: `ratio to plain (spread ${spread(rs)}); overhead ${((med - 1) * 100).toFixed(1)} % of a token step; ${loadNote}${k === 'twin' ? `; memory: a second session holding the weights again (model.onnx ${mb(weightBytes)})` : ''}`,
      });
    }
    // The wrapper alone (deterministic, free of ORT's own time): a stand-in session with this model's
    // adapter inputs whose run resolves at once, hooked vs called directly.
    const modules = m.shape.modules.length;
    const us = await wrapperMicrosAsync(modules, quick ? 5000 : 20000);
    const stepUs = (plainMs / tokens) * 1000;
    rows.push({
      bench: 'plugin wrapper per session run (hook + pin + feeds), stand-in session',
      shape: `${modules} modules (${2 * modules} adapter inputs)`,
      ms: us.hooked / 1000,
      ratio: (us.hooked - us.direct) / stepUs,
      note: `ratio: (hooked − direct ${us.direct.toFixed(2)} µs) ÷ plain token step ${stepUs.toFixed(0)} µs`,
    });
    for (const x of [model, twinned, plain]) await (x as unknown as { dispose(): Promise<unknown> }).dispose();
    return rows;
  } finally {
    Object.assign(env, saved);
    await rm(root, { recursive: true, force: true });
  }
}
