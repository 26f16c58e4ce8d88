/**
 * `tensorpeft demo`: the README's main job.
 *
 * 1. Methods table (a model preset, no inference): one adapter per method, written to safetensors
 *    and read back, materialized to (A′, B′, s), exported to PEFT LoRA and checked; counts, bytes,
 *    timings. Plus the stats of the real PEFT adapters in `fixtures/peft-real`.
 * 2. Hot swap on a tiny BERT sequence classifier (generated with model-gen into a temp folder):
 *    one nonzero adapter per registered method, all loaded into ONE transformers.js model through
 *    the plugin; the same texts through base and each adapter (logits, labels), swap time vs a fresh
 *    session load, bytes per adapter, and disabling = base bit for bit.
 * 3. The real HF PEFT adapter `distilbert-lora-emotion` (LoRA q_lin/v_lin + pre_classifier/classifier
 *    heads) on a base-size DistilBERT sequence classifier with 6 labels (random base weights, real
 *    DistilBERT tokenizer): predictions with and without the adapter, disabling = base exactly.
 *    `--tiny-only` skips it; a missing fixtures folder is reported and skipped.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import {
  adapterFromBytes,
  adapterStats,
  adapterToFiles,
  countParams,
  createAdapter,
  diffAdapters,
  exportToLora,
  getBackend,
  listMethods,
  loadAdapter,
  materializeAdapter,
  presetShape,
  type Backend,
} from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { from_pretrained, type AdapterMethods } from '@tensorpeft/transformers-plugin';
import { printJson, type CliIO } from '../io.js';

export const demoHelp = `tensorpeft demo [--model roberta-base] [--tiny-only] [--json]
  The hot-swap demo. (1) For a preset (--model), one adapter per method: round trip through
  safetensors, materialize, export to LoRA; counts, bytes, timings. (2) Generates a tiny BERT
  classifier in a temp folder, loads one adapter per method into ONE transformers.js model with the
  TensorPEFT plugin and swaps between them: logits and labels per adapter, swap time vs a fresh
  session load, bytes per adapter, disabled = base exactly. (3) Generates a base-size DistilBERT
  (6 labels) and loads the real HF PEFT adapter fixtures/peft-real/distilbert-lora-emotion
  on it (skipped with --tiny-only or when the fixtures are missing). --json prints the same data as JSON
  (progress goes to stderr).`;

/** Per-method configs for the methods table; RoBERTa-base q,v as in the papers' GLUE tables. */
export const DEMO_CONFIGS: Record<string, Record<string, unknown>> = {
  LORA: { r: 8, lora_alpha: 16, target_modules: ['query', 'value'] },
  VERA: { r: 256, target_modules: ['query', 'value'] },
  TRAC: { r: 16, lora_alpha: 32, tensor_shape: [8, 8, 12], tensor_rank_a: [1, 8, 12], tensor_rank_b: [1, 24, 36], target_modules: ['query', 'value'] },
  LORETTA: { r: 8, lora_alpha: 16, tensor_rank: 5, tensor_shape_a: [8, 8, 12, 8], tensor_shape_b: [8, 8, 12, 8], target_modules: ['query', 'value'] },
  LORTA: { r: 8, lora_alpha: 8, target_modules: ['query', 'value'] },
  TENSLORA: { construction: 'att_qkv_depth', ranks: [16, 16, 8, 2, 8], target_modules: ['query', 'value'] },
};

/**
 * Per-method configs for the tiny BERT (hidden 32) of the hot-swap part. Every other method uses its
 * PEFT defaults (query/value targets). LoRETTA's and TRAC's default tensor factorizations cover the
 * published sizes (768, 4096, …), not 32, so they get an explicit factorization of 32 (as in the
 * plugin's verify tests).
 */
export const TINY_CONFIGS: Record<string, Record<string, unknown>> = {
  LORETTA: { tensor_shape_a: { '32': [4, 8, 8] }, tensor_shape_b: { '32': [8, 8, 4] } },
  TRAC: { tensor_shape: { '32': [2, 4, 4] } },
};

/** Texts for the tiny model (its generated WordPiece vocabulary is small; unknown words are [UNK]). */
export const TINY_TEXTS = ['i feel happy today', 'this movie was terrible and boring', 'what a surprise to see you here'];

/** Texts for the emotion adapter. */
export const EMOTION_TEXTS = ['i feel so happy and grateful today', 'i am terrified of what comes next', 'i miss her so much that it hurts', 'this makes me furious'];

/** dair-ai/emotion's label order, which the emotion adapter's 6-way head was trained on. */
export const EMOTION_LABELS = ['sadness', 'joy', 'love', 'anger', 'fear', 'surprise'];

const FIXTURES = fileURLToPath(new URL('../../../../fixtures/peft-real/', import.meta.url));
const REAL_ADAPTER = 'distilbert-lora-emotion';

async function timeMs(fn: () => Promise<unknown>, reps: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const r2 = (x: number, d = 2) => Number(x.toFixed(d));

// ---------------------------------------------------------------------------------------------
// transformers.js helpers

type Logits = { data: Float32Array; dims: number[] };
type SeqCls = ((inputs: Record<string, unknown>) => Promise<{ logits: Logits }>) & { dispose(): Promise<unknown> };
type Plugged = SeqCls & AdapterMethods;
type Tokenize = (texts: string[], opts: Record<string, unknown>) => Record<string, unknown>;

interface Outputs {
  /** [texts][labels] logits. */
  logits: number[][];
  /** argmax label per text. */
  labels: string[];
  /** Raw logits, for exact comparisons. */
  raw: Float32Array;
}

async function forward(model: SeqCls, inputs: Record<string, unknown>, labelNames: string[]): Promise<Outputs> {
  const out = (await model({ ...inputs })).logits;
  const raw = Float32Array.from(out.data);
  const [b, k] = out.dims as [number, number];
  const logits: number[][] = [];
  const labels: string[] = [];
  for (let i = 0; i < b; i++) {
    const row = Array.from(raw.subarray(i * k, (i + 1) * k));
    logits.push(row.map((v) => r2(v, 4)));
    labels.push(labelNames[row.indexOf(Math.max(...row))] ?? `LABEL_${row.indexOf(Math.max(...row))}`);
  }
  return { logits, labels, raw };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function identical(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
}

/** Mean time of one `set_adapter` call (µs), alternating between two names. */
function swapMicros(model: AdapterMethods, a: string, b: string, reps = 2000): number {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) model.set_adapter(i % 2 ? a : b);
  return ((performance.now() - t0) * 1000) / reps;
}

function loadPlain(id: string): Promise<SeqCls> {
  return AutoModelForSequenceClassification.from_pretrained(id, { dtype: 'fp32' }) as unknown as Promise<SeqCls>;
}

function loadPlugged(id: string): Promise<Plugged> {
  return from_pretrained(env, AutoModelForSequenceClassification, id, { dtype: 'fp32' }) as unknown as Promise<Plugged>;
}

// ---------------------------------------------------------------------------------------------
// 1. methods table

async function methodsTable(modelName: string, backend: Backend): Promise<{ rows: Record<string, unknown>[]; real: Record<string, unknown>[] }> {
  const shape = presetShape(modelName);
  const rows: Record<string, unknown>[] = [];
  for (const method of listMethods()) {
    const adapter = createAdapter({ method, config: DEMO_CONFIGS[method.peftType] ?? {}, shape, seed: 0, nonzero: true });
    const counts = countParams(adapter.plan);
    const fp32 = adapterToFiles(adapter, { dtype: 'fp32' });
    const fp16 = adapterToFiles(adapter, { dtype: 'fp16' });
    const back = adapterFromBytes({ config: fp32.configJson, safetensors: fp32.safetensors, source: `${method.cliName} (in memory)` });
    const updates = await materializeAdapter(back, backend);
    const ms = await timeMs(() => materializeAdapter(back, backend), 3);
    const exported = await exportToLora(back, backend);
    const d = await diffAdapters(back, exported, backend);
    const loraParams = updates.reduce((a, u) => a + u.rho * (u.n + u.m), 0);
    rows.push({
      method: method.cliName,
      modules: adapter.plan.modules.length,
      rank: adapter.plan.rank,
      trainable: counts.trainable,
      frozen: counts.frozen,
      stored: counts.stored,
      bytes_fp32: fp32.safetensors.byteLength,
      bytes_fp16: fp16.safetensors.byteLength,
      lora_equivalent_params: loraParams,
      materialize_ms: r2(ms),
      export_rel_fro: d.rel_fro,
    });
  }
  const real: Record<string, unknown>[] = [];
  if (existsSync(FIXTURES)) {
    for (const name of [REAL_ADAPTER, 'gpt2-lora-tigrinya']) {
      if (!existsSync(FIXTURES + name)) continue;
      const t0 = performance.now();
      const a = await loadAdapter(FIXTURES + name);
      const updates = await materializeAdapter(a, backend);
      const ms = performance.now() - t0;
      const s = adapterStats(a);
      real.push({ adapter: name, peft_type: s.peft_type, modules: s.modules, rank: s.rank, trainable: s.trainable, bytes: s.bytes, modules_to_save: s.modules_to_save.map((m) => m.name), load_and_materialize_ms: r2(ms, 1), updates: updates.length });
    }
  }
  return { rows, real };
}

// ---------------------------------------------------------------------------------------------
// 2. hot swap on a tiny BERT

interface AdapterResult {
  name: string;
  peft_type: string;
  config: Record<string, unknown>;
  modules: number;
  rank: number;
  /** adapter_model.safetensors size (fp32). */
  file_bytes: number;
  /** Bytes of the materialized (A′, s·B′ᵀ) tensors the plugin holds. */
  held_bytes: number;
  load_ms: number;
  /** set_adapter → outputs ready (one batch of the texts; median of 5 swaps from another adapter). */
  swap_to_output_ms: number;
  logits: number[][];
  labels: string[];
  max_abs_diff_vs_base: number;
  differs_from_base: boolean;
  /** Swapping back to it later reproduces its first outputs exactly. */
  reswap_identical: boolean;
}

async function hotSwapTiny(root: string, backend: Backend, progress: (s: string) => void) {
  const id = 'bert-tiny';
  const numLabels = 3;
  const labelNames = Array.from({ length: numLabels }, (_, i) => `LABEL_${i}`);
  const t0 = performance.now();
  const gen = await writeModel({ arch: 'bert', size: 'tiny', numLabels, seed: 0, quantized: false }, path.join(root, id));
  const generate_ms = performance.now() - t0;
  progress(`tiny BERT sequence classifier (hidden 32, 2 layers, ${numLabels} labels) written in ${generate_ms.toFixed(0)} ms`);

  const tok = (await AutoTokenizer.from_pretrained(id)) as unknown as Tokenize;
  const inputs = tok(TINY_TEXTS, { padding: true, truncation: true });

  // The untouched model as transformers.js ships it: the reference for "disabled", and the cost of
  // a fresh session (what swapping would cost without the plugin: one session per adapter).
  let t = performance.now();
  const plain = await loadPlain(id);
  const fresh_session_load_ms = performance.now() - t;
  const base = await forward(plain, inputs, labelNames);
  const base_forward_ms = await timeMs(() => plain({ ...inputs }), 5);
  await plain.dispose();

  t = performance.now();
  const model = await loadPlugged(id);
  const plugin_load_ms = performance.now() - t;

  const results: AdapterResult[] = [];
  const methods = listMethods();
  for (const [i, method] of methods.entries()) {
    const config = TINY_CONFIGS[method.peftType] ?? {};
    const adapter = createAdapter({ method, shape: gen.shape, config, nonzero: true, seed: 100 + i });
    const files = adapterToFiles(adapter, { dtype: 'fp32' });
    t = performance.now();
    const info = await model.load_adapter(adapter, { adapter_name: method.cliName, backend });
    const load_ms = performance.now() - t;
    results.push({
      name: method.cliName,
      peft_type: info.peft_type,
      config,
      modules: info.modules,
      rank: info.rank,
      file_bytes: files.safetensors.byteLength,
      held_bytes: info.bytes,
      load_ms: r2(load_ms),
      swap_to_output_ms: 0,
      logits: [],
      labels: [],
      max_abs_diff_vs_base: 0,
      differs_from_base: false,
      reswap_identical: false,
    });
  }
  progress(`${results.length} adapters (${results.map((r) => r.name).join(', ')}) loaded into one model`);

  // Swap through all adapters: set_adapter → outputs ready.
  const first = new Map<string, Float32Array>();
  for (const [i, r] of results.entries()) {
    model.set_adapter(r.name);
    const o = await forward(model, inputs, labelNames);
    // Median of 5 swaps from the previous adapter (or the base) to this one, outputs included.
    const prev = i > 0 ? results[i - 1]!.name : null;
    const times: number[] = [];
    for (let k = 0; k < 5; k++) {
      if (prev) model.set_adapter(prev);
      else model.disable_adapters();
      const t1 = performance.now();
      model.set_adapter(r.name);
      await model({ ...inputs });
      times.push(performance.now() - t1);
    }
    r.swap_to_output_ms = r2(times.sort((a, b) => a - b)[2]!, 3);
    first.set(r.name, o.raw);
    r.logits = o.logits;
    r.labels = o.labels;
    r.max_abs_diff_vs_base = maxAbsDiff(o.raw, base.raw);
    r.differs_from_base = r.max_abs_diff_vs_base > 0;
  }
  // Swap again, in reverse order: each adapter's outputs are reproduced exactly.
  for (const r of [...results].reverse()) {
    model.set_adapter(r.name);
    r.reswap_identical = identical((await forward(model, inputs, labelNames)).raw, first.get(r.name)!);
  }
  const swap_us = swapMicros(model, results[0]!.name, results[results.length - 1]!.name);
  model.disable_adapters();
  const disabled = await forward(model, inputs, labelNames);
  const adapter_forward_ms = await timeMs(async () => {
    model.set_adapter(results[0]!.name);
    await model({ ...inputs });
  }, 5);
  await model.dispose();

  return {
    model: { arch: 'bert', size: 'tiny', task: 'sequence-classification', num_labels: numLabels, hidden: 32, layers: 2, dtype: 'fp32' },
    texts: TINY_TEXTS,
    generate_ms: r2(generate_ms, 1),
    fresh_session_load_ms: r2(fresh_session_load_ms),
    plugin_load_ms: r2(plugin_load_ms),
    base_forward_ms: r2(base_forward_ms),
    adapter_forward_ms: r2(adapter_forward_ms),
    swap_us: r2(swap_us, 3),
    swap_vs_fresh_session: Math.round(fresh_session_load_ms / (swap_us / 1000)),
    base: { logits: base.logits, labels: base.labels },
    adapters: results,
    disabled: { logits: disabled.logits, labels: disabled.labels },
    disabled_equals_base: identical(disabled.raw, base.raw),
    disabled_max_abs_diff: maxAbsDiff(disabled.raw, base.raw),
  };
}

// ---------------------------------------------------------------------------------------------
// 3. the real PEFT adapter on a base-size DistilBERT

async function realDistilbert(root: string, backend: Backend, progress: (s: string) => void) {
  const id = 'distilbert-base-6';
  const dir = path.join(root, id);
  progress('generating a base-size DistilBERT sequence classifier (6 layers, hidden 768, 6 labels, fp32 ≈ 268 MB; a few seconds)…');
  let t = performance.now();
  const gen = await writeModel({ arch: 'distilbert', size: 'base', numLabels: 6, seed: 0, quantized: false, fixturesDir: FIXTURES }, dir);
  // Name the 6 outputs like the adapter's training data (the base weights are random; only the head
  // and the LoRA updates come from the real adapter).
  const cfgFile = path.join(dir, 'config.json');
  const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as Record<string, unknown>;
  cfg.id2label = Object.fromEntries(EMOTION_LABELS.map((l, i) => [String(i), l]));
  cfg.label2id = Object.fromEntries(EMOTION_LABELS.map((l, i) => [l, i]));
  await writeFile(cfgFile, JSON.stringify(cfg, null, 2));
  const generate_ms = performance.now() - t;
  progress(`generated in ${(generate_ms / 1000).toFixed(1)} s (tokenizer: ${gen.tokenizerSource ?? 'none'}); loading it in transformers.js…`);

  const tok = (await AutoTokenizer.from_pretrained(id)) as unknown as Tokenize;
  const inputs = tok(EMOTION_TEXTS, { padding: true, truncation: true });

  t = performance.now();
  const plain = await loadPlain(id);
  const fresh_session_load_ms = performance.now() - t;
  const base = await forward(plain, inputs, EMOTION_LABELS);
  await plain.dispose();

  t = performance.now();
  const model = await loadPlugged(id);
  const plugin_load_ms = performance.now() - t;
  progress(`loaded (plain ${(fresh_session_load_ms / 1000).toFixed(2)} s, with the plugin's rewrite ${(plugin_load_ms / 1000).toFixed(2)} s); loading the PEFT adapter…`);

  t = performance.now();
  const info = await model.load_adapter(FIXTURES + REAL_ADAPTER, { adapter_name: 'emotion', backend });
  const adapter_load_ms = performance.now() - t;
  const disabledBefore = await forward(model, inputs, EMOTION_LABELS);
  model.set_adapter('emotion');
  const adapted = await forward(model, inputs, EMOTION_LABELS);
  // set_adapter → outputs ready, from the base: median of 3.
  const swapTimes: number[] = [];
  for (let k = 0; k < 3; k++) {
    model.disable_adapters();
    t = performance.now();
    model.set_adapter('emotion');
    await model({ ...inputs });
    swapTimes.push(performance.now() - t);
  }
  const swap_to_output_ms = swapTimes.sort((a, b) => a - b)[1]!;
  model.disable_adapters();
  const swap_us = swapMicros(model, 'emotion', 'emotion');
  t = performance.now();
  model.disable_adapters();
  const disabled = await forward(model, inputs, EMOTION_LABELS);
  const disable_to_output_ms = performance.now() - t;
  await model.dispose();
  const s = adapterStats(await loadAdapter(FIXTURES + REAL_ADAPTER));

  return {
    adapter: REAL_ADAPTER,
    model: { arch: 'distilbert', size: 'base', task: 'sequence-classification', num_labels: 6, dtype: 'fp32', weights: 'random (model-gen seed 0)', tokenizer: gen.tokenizerSource ?? null },
    texts: EMOTION_TEXTS,
    label_names: EMOTION_LABELS,
    peft_type: info.peft_type,
    modules: info.modules,
    rank: info.rank,
    modules_to_save: info.modules_to_save,
    file_bytes: s.bytes,
    held_bytes: info.bytes,
    generate_ms: Math.round(generate_ms),
    fresh_session_load_ms: Math.round(fresh_session_load_ms),
    plugin_load_ms: Math.round(plugin_load_ms),
    adapter_load_ms: r2(adapter_load_ms, 1),
    swap_us: r2(swap_us, 3),
    swap_to_output_ms: r2(swap_to_output_ms, 1),
    disable_to_output_ms: r2(disable_to_output_ms, 1),
    base: { logits: base.logits, labels: base.labels },
    adapter_on: { logits: adapted.logits, labels: adapted.labels },
    disabled: { logits: disabled.logits, labels: disabled.labels },
    max_abs_diff_vs_base: maxAbsDiff(adapted.raw, base.raw),
    predictions_changed: adapted.labels.filter((l, i) => l !== base.labels[i]).length,
    disabled_equals_base: identical(disabled.raw, base.raw) && identical(disabledBefore.raw, base.raw),
    disabled_max_abs_diff: Math.max(maxAbsDiff(disabled.raw, base.raw), maxAbsDiff(disabledBefore.raw, base.raw)),
  };
}

// ---------------------------------------------------------------------------------------------

export async function demoCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', default: 'roberta-base' },
      json: { type: 'boolean', default: false },
      'tiny-only': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const tStart = performance.now();
  const json = values.json;
  const progress = (s: string) => (json ? io.err(`[demo] ${s}`) : io.out(`  … ${s}`));
  const backend = await getBackend();
  const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath, useCustomCache: env.useCustomCache, customCache: env.customCache };
  const root = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-demo-'));
  try {
    if (!json) io.out(`TensorPEFT demo — backend ${backend.name}\n\n1. One adapter per method for ${values.model} (no model needed): counts, bytes, materialize, export to LoRA\n`);
    const { rows, real } = await methodsTable(values.model, backend);
    if (!json) printTable(io, rows, real);

    env.allowRemoteModels = false;
    env.localModelPath = `${root}/`;
    if (!json) io.out('\n2. Hot swap: one transformers.js model (tiny BERT classifier), one adapter per method, swapped in place\n');
    const tiny = await hotSwapTiny(root, backend, progress);
    if (!json) printTiny(io, tiny);

    let realResult: Awaited<ReturnType<typeof realDistilbert>> | { skipped: string };
    if (values['tiny-only']) realResult = { skipped: '--tiny-only' };
    else if (!existsSync(FIXTURES + REAL_ADAPTER)) realResult = { skipped: `fixtures folder not found: ${FIXTURES}${REAL_ADAPTER}` };
    else {
      if (!json) io.out(`\n3. A real HF PEFT adapter (${REAL_ADAPTER}) on a base-size DistilBERT classifier\n`);
      realResult = await realDistilbert(root, backend, progress);
    }
    if (!json) {
      if ('skipped' in realResult) io.out(`\n3. Real PEFT adapter on a base-size DistilBERT: skipped (${realResult.skipped})`);
      else printReal(io, realResult);
    }
    const total_ms = Math.round(performance.now() - tStart);
    if (json) {
      printJson(io, { model: values.model, backend: backend.name, methods: rows, real_peft_adapters: real, hot_swap: tiny, real_adapter: realResult, total_ms });
    } else {
      io.out(`\nDone in ${(total_ms / 1000).toFixed(1)} s.`);
    }
    return 0;
  } finally {
    Object.assign(env, saved);
    await rm(root, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// text output

function printTable(io: CliIO, rows: Record<string, unknown>[], real: Record<string, unknown>[]): void {
  const cols = ['method', 'modules', 'rank', 'trainable', 'frozen', 'bytes_fp32', 'bytes_fp16', 'materialize_ms', 'export_rel_fro'];
  const table = [cols, ...rows.map((r) => cols.map((c) => (typeof r[c] === 'number' ? (c === 'export_rel_fro' ? (r[c] as number).toExponential(1) : fmt(r[c] as number)) : String(r[c]))))];
  const widths = cols.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table) io.out(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  io.out('(each adapter written to safetensors, read back, materialized to (A′, B′, s) and exported to PEFT LoRA; export_rel_fro = ‖ΔW − ΔW_lora‖/‖ΔW‖)');
  if (real.length) {
    io.out('\nReal HF PEFT adapters (fixtures/peft-real):');
    for (const r of real) io.out(`  ${r.adapter}: ${r.peft_type} ${r.modules} modules, r=${r.rank}, ${fmt(r.trainable as number)} params, ${fmt(r.bytes as number)} bytes, heads ${JSON.stringify(r.modules_to_save)}, load+materialize ${r.load_and_materialize_ms} ms`);
  } else {
    io.out(`\nReal HF PEFT adapters: fixtures folder not found (${FIXTURES}); skipped.`);
  }
}

const row = (l: number[]) => `[${l.map((v) => (v >= 0 ? ' ' : '') + v.toFixed(4)).join(', ')}]`;

function printTiny(io: CliIO, t: Awaited<ReturnType<typeof hotSwapTiny>>): void {
  io.out(`\nTexts: ${t.texts.map((s) => JSON.stringify(s)).join(', ')}`);
  io.out(`Logits of the first text, argmax label of each text:`);
  const w = Math.max(8, ...t.adapters.map((a) => a.name.length));
  io.out(`  ${'base'.padEnd(w)}  ${row(t.base.logits[0]!)}  ${t.base.labels.join(' ')}`);
  for (const a of t.adapters) io.out(`  ${a.name.padEnd(w)}  ${row(a.logits[0]!)}  ${a.labels.join(' ')}   max|Δ| vs base ${a.max_abs_diff_vs_base.toExponential(2)}`);
  io.out(`  ${'disabled'.padEnd(w)}  ${row(t.disabled.logits[0]!)}  ${t.disabled.labels.join(' ')}   ${t.disabled_equals_base ? 'identical to the untouched base (bit for bit)' : `DIFFERS from base by ${t.disabled_max_abs_diff}`}`);
  io.out('\nPer adapter (bytes: adapter_model.safetensors fp32 / materialized tensors held by the plugin):');
  const cols = ['name', 'peft_type', 'modules', 'rank', 'file_bytes', 'held_bytes', 'load_ms', 'swap_to_output_ms', 'reswap_identical'];
  const table = [cols, ...t.adapters.map((a) => cols.map((c) => { const v = (a as unknown as Record<string, unknown>)[c]; return typeof v === 'number' ? fmt(v) : String(v); }))];
  const widths = cols.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  for (const r of table) io.out('  ' + r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  io.out(
    `\nSwap: set_adapter takes ${t.swap_us} µs; a fresh ORT session of this model takes ${t.fresh_session_load_ms} ms to load (${fmt(t.swap_vs_fresh_session)}× the swap). ` +
      `Forward of the batch: base ${t.base_forward_ms} ms, with an adapter ${t.adapter_forward_ms} ms. Loading through the plugin's rewrite: ${t.plugin_load_ms} ms.`,
  );
}

function printReal(io: CliIO, r: Awaited<ReturnType<typeof realDistilbert>>): void {
  io.out(`\nModel: base-size DistilBERT, 6 labels, random weights (tokenizer: ${r.model.tokenizer}); labels named after dair-ai/emotion, which the adapter's head was trained on.`);
  io.out(`Adapter: ${r.peft_type}, ${r.modules} modules (q_lin, v_lin), r=${r.rank}, heads ${r.modules_to_save.join(', ')}; file ${fmt(r.file_bytes)} bytes, held ${fmt(r.held_bytes)} bytes, load ${r.adapter_load_ms} ms.`);
  const w = Math.max(...r.texts.map((s) => s.length)) + 2;
  io.out(`\n  ${'text'.padEnd(w)}  ${'base'.padEnd(9)}  ${'adapter'.padEnd(9)}  ${'disabled'.padEnd(9)}  adapter logits`);
  r.texts.forEach((s, i) => io.out(`  ${JSON.stringify(s).padEnd(w)}  ${r.base.labels[i]!.padEnd(9)}  ${r.adapter_on.labels[i]!.padEnd(9)}  ${r.disabled.labels[i]!.padEnd(9)}  ${row(r.adapter_on.logits[i]!)}`));
  io.out(
    `\nmax|Δ logits| adapter vs base ${r.max_abs_diff_vs_base.toExponential(2)}; ${r.predictions_changed}/${r.texts.length} predictions changed; ` +
      `disabled vs base: ${r.disabled_equals_base ? 'identical (bit for bit)' : `DIFFERS by ${r.disabled_max_abs_diff}`}.`,
  );
  io.out(`Times: generate ${(r.generate_ms / 1000).toFixed(1)} s, fresh session ${r.fresh_session_load_ms} ms, plugin load ${r.plugin_load_ms} ms, set_adapter ${r.swap_us} µs, set_adapter → outputs ${r.swap_to_output_ms} ms, disable → outputs ${r.disable_to_output_ms} ms.`);
  io.out('(The base weights are random, so the labels show that the adapter acts, not what a trained DistilBERT would say.)');
}
