/**
 * Mixed-adapter batch throughput (issue 16's goal: a batch of 8 rows over 4 adapters at ≥ 0.9× the
 * throughput of the same batch with one adapter), measured in one process:
 *
 * - `one adapter`: the same batch on an ordinary branch rewrite with one LoRA active (what an app
 *   runs today: one adapter per batch);
 * - `mixed rewrite, one adapter`: the same on the mixed-batch rewrite (`{ adapter }`: one-slot stacks);
 * - `8 rows × 4 adapters`: the mixed rewrite with `adapter_names` over four LoRAs.
 *
 * Forward of DistilBERT (base size; tiny with `size: 'tiny'`) on 8 × `seq` tokens, and greedy
 * generation of 8 rows on a tiny LLaMA (token steps of well under a millisecond per row, where
 * the extra Gather/Reshape nodes per module show most). Configurations run interleaved, one run
 * each in rotating order; a ratio is the median over iterations of (one adapter's time ÷ the
 * configuration's time in the same iteration), i.e. throughput relative to one adapter, with its
 * interquartile range.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createAdapter, type ModelShape } from '@tensorpeft/core';
import { from_pretrained } from './plugin.js';
import type { PluginBenchRow } from './bench.js';

export interface MixedBenchOptions {
  /** `base` (DistilBERT-base forward rows) or `tiny` (seconds). Default `base`. */
  size?: 'base' | 'tiny';
  quick?: boolean;
  /** Tokens per row of the forward rows (default 64). */
  seq?: number;
  log?: (line: string) => void;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

const ROWS = 8;
const NAMES = ['a', 'b', 'c', 'd', 'a', 'b', 'c', 'd'];

/**
 * Times of each configuration, interleaved run by run (the order rotating each iteration) after one
 * warm-up each: on a loaded machine, neighbouring runs share the load, so per-iteration ratios are
 * far steadier than ratios of separate blocks.
 */
async function interleaved(configs: Array<[string, () => Promise<unknown>]>, iterations: number): Promise<Timings> {
  const wall: Record<string, number[]> = Object.fromEntries(configs.map(([k]) => [k, []]));
  const cpu: Record<string, number[]> = Object.fromEntries(configs.map(([k]) => [k, []]));
  for (const [, f] of configs) await f();
  for (let r = 0; r < iterations; r++) {
    for (let k = 0; k < configs.length; k++) {
      const [name, f] = configs[(k + r) % configs.length]!;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await f();
      wall[name]!.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu[name]!.push((c.user + c.system) / 1000);
    }
  }
  return { wall, cpu };
}

/**
 * Wall times per configuration, and the process CPU time of the same runs (all of ONNX Runtime's
 * threads): on a machine loaded by other jobs, CPU time tracks the work done far more steadily
 * than wall time does.
 */
interface Timings {
  wall: Record<string, number[]>;
  cpu: Record<string, number[]>;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))]!;
}

function rowsOf(t: Timings, what: string, shape: string, loadNote: string): PluginBenchRow[] {
  const per = t.wall;
  const one = per.one!;
  const iqr = (xs: number[]): string => `${quantile(xs, 0.25).toFixed(3)}–${quantile(xs, 0.75).toFixed(3)}`;
  const out: PluginBenchRow[] = [{ bench: `${what}: one adapter for the batch (branch rewrite)`, shape, ms: median(one), note: loadNote }];
  for (const [k, label] of [['mixedOne', 'mixed-batch rewrite, one adapter'], ['mixed', `mixed batch, ${ROWS} rows × 4 adapters`]] as const) {
    const rs = per[k]!.map((x, i) => one[i]! / x);
    const cs = t.cpu[k]!.map((x, i) => t.cpu.one![i]! / x);
    out.push({
      bench: `${what}: ${label}`,
      shape,
      ms: median(per[k]!),
      ratio: median(rs),
      note: `throughput ratio to one adapter: median of ${rs.length} interleaved pairs (interquartile ${iqr(rs)}); by process CPU time ${median(cs).toFixed(3)} (interquartile ${iqr(cs)}); goal ≥ 0.9 for the mixed batch; ${loadNote}`,
    });
  }
  return out;
}

function tokens(rows: number, len: number, vocab: number): Record<string, unknown> {
  const ids = new BigInt64Array(rows * len);
  for (let i = 0; i < ids.length; i++) ids[i] = BigInt(1 + ((i * 7919 + 13) % (vocab - 1)));
  return { ids, dims: [rows, len] };
}

const lora = (shape: ModelShape, seed: number, target?: string[]) => createAdapter({ method: 'LORA', shape, nonzero: true, seed, config: { r: 8, ...(target ? { target_modules: target } : {}) } });

/** Rows: forward and generation throughput of a mixed batch vs one adapter (see the module comment). */
export async function runMixedBench(opts: MixedBenchOptions = {}): Promise<PluginBenchRow[]> {
  const quick = opts.quick ?? false;
  const size = opts.size ?? 'base';
  const seq = opts.seq ?? 64;
  const iterations = quick ? 3 : 15;
  const log = opts.log ?? (() => undefined);
  const tf = await import('@huggingface/transformers');
  const { env, AutoModelForCausalLM, AutoModelForSequenceClassification, Tensor } = tf;
  const gen = (await import('@tensorpeft/model-gen')) as typeof import('@tensorpeft/model-gen');
  const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath };
  const root = await mkdtemp(path.join(tmpdir(), 'tp-bench-mixed-'));
  const rows: PluginBenchRow[] = [];
  try {
    env.allowRemoteModels = false;
    env.localModelPath = `${root}/`;
    type Model = Awaited<ReturnType<typeof from_pretrained>>;
    const setUp = async (loader: never, id: string, shape: ModelShape, extra: Record<string, unknown>): Promise<[Model, Model]> => {
      const plain = await from_pretrained(env, loader, id, { dtype: 'fp32', ...extra });
      const mixed = await from_pretrained(env, loader, id, { dtype: 'fp32', mixed_batches: true, ...extra });
      const ads = ['a', 'b', 'c', 'd'].map((n, i) => [n, lora(shape, i + 1)] as const);
      await plain.load_adapter(ads[0]![1], { adapter_name: 'a' });
      plain.set_adapter('a');
      for (const [n, a] of ads) await mixed.load_adapter(a, { adapter_name: n });
      return [plain, mixed];
    };

    log(`mixed batches: DistilBERT-${size} forward, ${ROWS} × ${seq}`);
    const d = await gen.writeModel({ arch: 'distilbert', size, numLabels: 2, seed: 1, quantized: false }, path.join(root, 'distilbert'));
    const [dPlain, dMixed] = await setUp(AutoModelForSequenceClassification as never, 'distilbert', d.shape, {});
    const t = tokens(ROWS, seq, d.config.vocab_size as number);
    const inputs = {
      input_ids: new Tensor('int64', t.ids as BigInt64Array, t.dims as number[]),
      attention_mask: new Tensor('int64', new BigInt64Array(ROWS * seq).fill(1n), t.dims as number[]),
    };
    type Call = (x: unknown, o?: unknown) => Promise<unknown>;
    const load0 = loadavg()[0]!;
    const fwd = await interleaved(
      [
        ['one', () => (dPlain as unknown as Call)(inputs)],
        ['mixedOne', () => (dMixed as unknown as Call)(inputs, { adapter: 'a' })],
        ['mixed', () => (dMixed as unknown as Call)(inputs, { adapter_names: NAMES })],
      ],
      iterations,
    );
    const loadNote = (l0: number): string => `load average ${l0.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}`;
    rows.push(...rowsOf(fwd, 'mixed batches, forward', `distilbert-${size}, ${ROWS} × ${seq} tokens, LoRA r=8 (q_lin, v_lin)`, loadNote(load0)));
    for (const m of [dPlain, dMixed]) await (m as unknown as { dispose(): Promise<unknown> }).dispose();

    const newTokens = quick ? 8 : 32;
    log(`mixed batches: tiny LLaMA generate, ${ROWS} rows, ${newTokens} new tokens`);
    const l = await gen.writeModel({ arch: 'llama', size: 'tiny', seed: 4, quantized: false }, path.join(root, 'llama'));
    const [lPlain, lMixed] = await setUp(AutoModelForCausalLM as never, 'llama', l.shape, {});
    const lt = tokens(ROWS, 6, l.config.vocab_size as number);
    const prompt = {
      input_ids: new Tensor('int64', lt.ids as BigInt64Array, lt.dims as number[]),
      attention_mask: new Tensor('int64', new BigInt64Array(ROWS * 6).fill(1n), lt.dims as number[]),
    };
    type Gen = { generate(o: Record<string, unknown>): Promise<unknown> };
    const g = (m: Model, extra: Record<string, unknown>) => () => (m as unknown as Gen).generate({ ...prompt, max_new_tokens: newTokens, min_new_tokens: newTokens, do_sample: false, ...extra });
    const load1 = loadavg()[0]!;
    const gens = await interleaved(
      [
        ['one', g(lPlain, {})],
        ['mixedOne', g(lMixed, { adapter: 'a' })],
        ['mixed', g(lMixed, { adapter_names: NAMES })],
      ],
      // Token steps are short: more pairs for a steadier median.
      quick ? iterations : 40,
    );
    rows.push(...rowsOf(gens, 'mixed batches, generate', `llama-tiny (hidden ${l.shape.hiddenSize}, ${l.shape.numLayers} layers), ${ROWS} rows, ${newTokens} new tokens, LoRA r=8 (q_proj, v_proj)`, loadNote(load1)));
    for (const m of [lPlain, lMixed]) await (m as unknown as { dispose(): Promise<unknown> }).dispose();
    return rows;
  } finally {
    Object.assign(env, saved);
    await rm(root, { recursive: true, force: true });
  }
}
