/**
 * Training benchmark rows (`tensorpeft bench train`): one optimizer step (training-graph forward +
 * backward, the method's chain rule, clipping, AdamW) vs one forward (the forward graph with the
 * loss) on the same batch, in one process, with the same trainer. Repeats are interleaved (forward,
 * step, forward, step, …) so that a change of machine load hits both sides of each ratio; the
 * ratio row is the median of the per-pair ratios, with their min and max.
 *
 * Memory: Linux's peak resident set (VmHWM in /proc/self/status), reset before each phase by
 * writing 5 to /proc/self/clear_refs. Both sessions exist before either phase starts, so each
 * phase's "working memory" is its peak minus the RSS right before it: what the runs themselves add
 * (onnxruntime's CPU arena, activations, outputs, the JS step), not the weights. The forward phase
 * runs first; its arena stays allocated and counts in the step phase's starting RSS, so the step's
 * number is what a step needs beyond a forward session that has already run.
 * Elsewhere than Linux the memory rows are left out (a note says so).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createTrainer, type TrainableModel } from './train/trainer.js';
import type { OrtLike } from './probe.js';

export interface TrainBenchRow {
  bench: string;
  /** Model, batch, sequence length, method. */
  shape: string;
  /** Median milliseconds (time rows), or 0 (ratio and memory rows). */
  ms: number;
  /** Fastest and slowest repeat (time rows), or the spread of the per-pair ratios (ratio rows). */
  min?: number;
  max?: number;
  /** Step ÷ forward: the median of per-pair ratios (time), or of the two working memories (memory). */
  ratio?: number;
  /** Bytes (memory rows). */
  bytes?: number;
  repeats?: number;
  /** 1-minute load average at the start and at the end of the timed repeats. */
  load?: [number, number];
  note?: string;
}

export interface TrainBenchOptions {
  model: TrainableModel;
  /** Label of the model in the rows (e.g. `distilbert-base`). */
  label: string;
  ort: OrtLike;
  /** Default `trac` (with its default config; trains the heads too). */
  method?: string;
  config?: Record<string, unknown>;
  /** Tokens per example (default 128) and examples per batch (default 8). */
  seq?: number;
  batch?: number;
  /** Timed repeats of each (default 5) after `warmup` untimed ones (default 2: onnxruntime's arena grows on the first runs). */
  repeats?: number;
  warmup?: number;
  /** Memory rows (default true). */
  memory?: boolean;
  log?: (line: string) => void;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

const STATUS = '/proc/self/status';

/** Resident and peak resident bytes from /proc/self/status, or undefined where there is none. */
function procMemory(): { rss: number; hwm: number } | undefined {
  try {
    const s = readFileSync(STATUS, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)![1]) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Reset the peak-RSS mark (Linux ≥ 4.0); false where that is not possible. */
function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

export async function runTrainBench(o: TrainBenchOptions): Promise<TrainBenchRow[]> {
  const seq = o.seq ?? 128;
  const bs = o.batch ?? 8;
  const repeats = o.repeats ?? 5;
  const warmup = o.warmup ?? 2;
  const method = o.method ?? 'trac';
  const log = o.log ?? (() => {});
  const cfg = o.model.config;
  const vocab = typeof cfg['vocab_size'] === 'number' ? cfg['vocab_size'] : 1000;
  const positions = [cfg['max_position_embeddings'], cfg['n_positions']].find((v): v is number => typeof v === 'number');
  const S = positions !== undefined ? Math.min(seq, positions) : seq;
  const shape = `${o.label}, batch ${bs} × seq ${S}, ${method}${o.config ? ` ${JSON.stringify(o.config)}` : ''}`;

  log(`building the training graph of ${o.label} (${method})`);
  const t = await createTrainer(o.model, { method, ort: o.ort, seed: 0, ...(o.config ? { config: o.config } : {}) });
  try {
    // Deterministic full-length rows (no padding) with labels of both classes (or next tokens).
    const data = Array.from({ length: bs }, (_, i) => ({ input_ids: Array.from({ length: S }, (_, j) => 3 + ((i * 131 + j * 7) % Math.max(1, vocab - 3))), label: i % 2 }));
    const forward = (): Promise<unknown> => t.evaluate(data, { batch_size: bs, max_length: S });
    // A tiny learning rate: AdamW runs in full, and the tensors stay near their init across repeats.
    const step = (): Promise<unknown> => t.train(data, { epochs: 1, batch_size: bs, learning_rate: 1e-6, max_length: S });
    const timed = async (f: () => Promise<unknown>): Promise<number> => {
      const t0 = performance.now();
      await f();
      return performance.now() - t0;
    };

    const rows: TrainBenchRow[] = [];
    const mem = o.memory ?? true;
    let fwdMem: { before: number; peak: number } | undefined;
    let stepMem: { before: number; peak: number } | undefined;
    const canPeak = mem && procMemory() !== undefined && resetPeak();

    // Memory and warm-up: forwards first, then steps (see the header).
    log(`warm-up: ${warmup} forward(s), ${warmup} step(s)`);
    let before = procMemory();
    resetPeak();
    for (let i = 0; i < Math.max(1, warmup); i++) await forward();
    if (canPeak && before) fwdMem = { before: before.rss, peak: procMemory()!.hwm };
    before = procMemory();
    resetPeak();
    for (let i = 0; i < Math.max(1, warmup); i++) await step();
    if (canPeak && before) stepMem = { before: before.rss, peak: procMemory()!.hwm };

    const f: number[] = [];
    const s: number[] = [];
    const load0 = loadavg()[0]!;
    for (let i = 0; i < repeats; i++) {
      f.push(await timed(forward));
      s.push(await timed(step));
      log(`repeat ${i + 1}/${repeats}: forward ${f[i]!.toFixed(1)} ms, step ${s[i]!.toFixed(1)} ms`);
    }
    const load: [number, number] = [load0, loadavg()[0]!];
    const ratios = s.map((x, i) => x / f[i]!);
    rows.push({ bench: 'train forward (loss, no backward)', shape, ms: median(f), min: Math.min(...f), max: Math.max(...f), repeats, load });
    rows.push({ bench: 'train step (forward + backward + AdamW)', shape, ms: median(s), min: Math.min(...s), max: Math.max(...s), repeats, load });
    rows.push({
      bench: 'train step ÷ forward',
      shape,
      ms: 0,
      ratio: median(ratios),
      min: Math.min(...ratios),
      max: Math.max(...ratios),
      repeats,
      load,
      note: 'median of per-pair ratios (interleaved repeats); goal ≤ 2.5',
    });
    if (fwdMem && stepMem) {
      const fw = fwdMem.peak - fwdMem.before;
      const sw = stepMem.peak - stepMem.before;
      rows.push({ bench: 'train forward working memory', shape, ms: 0, bytes: fw, note: `peak RSS ${fwdMem.peak} B − RSS before the first forward (VmHWM, reset per phase)` });
      rows.push({ bench: 'train step working memory', shape, ms: 0, bytes: sw, note: `peak RSS ${stepMem.peak} B − RSS before the first step (after the forwards)` });
      rows.push({ bench: 'train step ÷ forward working memory', shape, ms: 0, ratio: fw > 0 ? sw / fw : Number.POSITIVE_INFINITY, bytes: stepMem.peak, note: 'bytes = peak process RSS during the steps' });
    } else if (mem) {
      rows.push({ bench: 'train working memory', shape, ms: 0, note: 'not measured: needs Linux /proc/self/status and clear_refs' });
    }
    return rows;
  } finally {
    await t.release();
  }
}
