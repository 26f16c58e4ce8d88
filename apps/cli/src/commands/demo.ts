/**
 * `tensorpeft demo`: the README's main job for now. For a model preset it creates an adapter of
 * every method, writes it to bytes and reads it back, materializes (A′, B′, s) for every module,
 * exports it to plain LoRA and checks the export reproduces ΔW; then it loads the real PEFT LoRA
 * fixtures when `../shared` is present. Prints counts, bytes and timings.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
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
} from '@tensorpeft/core';
import { printJson, type CliIO } from '../io.js';

export const demoHelp = `tensorpeft demo [--model roberta-base] [--json]
  Creates one adapter per method for a preset, round-trips it through files, materializes it,
  exports it to LoRA and prints counts, bytes and timings.`;

/** Per-method configs for the demo; RoBERTa-base q,v as in the papers' GLUE tables. */
export const DEMO_CONFIGS: Record<string, Record<string, unknown>> = {
  LORA: { r: 8, lora_alpha: 16, target_modules: ['query', 'value'] },
  VERA: { r: 256, target_modules: ['query', 'value'] },
  TRAC: { r: 16, lora_alpha: 32, tensor_shape: [8, 8, 12], tensor_rank_a: [1, 8, 12], tensor_rank_b: [1, 24, 36], target_modules: ['query', 'value'] },
  LORETTA: { r: 8, lora_alpha: 16, tensor_rank: 5, tensor_shape_a: [8, 8, 12, 8], tensor_shape_b: [8, 8, 12, 8], target_modules: ['query', 'value'] },
  LORTA: { r: 8, lora_alpha: 8, target_modules: ['query', 'value'] },
  TENSLORA: { construction: 'att_qkv_depth', ranks: [16, 16, 8, 2, 8], target_modules: ['query', 'value'] },
};

const FIXTURES = fileURLToPath(new URL('../../../../../shared/fixtures/peft-real/', import.meta.url));

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

export async function demoCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { model: { type: 'string', default: 'roberta-base' }, json: { type: 'boolean', default: false } }, strict: true });
  const shape = presetShape(values.model);
  const backend = await getBackend();
  const rows: Record<string, unknown>[] = [];
  if (!values.json) io.out(`TensorPEFT demo — model ${values.model} (${shape.nameOrPath}), backend ${backend.name}\n`);
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
      materialize_ms: Number(ms.toFixed(2)),
      export_rel_fro: d.rel_fro,
    });
  }
  const real: Record<string, unknown>[] = [];
  if (existsSync(FIXTURES)) {
    for (const name of ['distilbert-lora-emotion', 'gpt2-lora-tigrinya']) {
      const t0 = performance.now();
      const a = await loadAdapter(FIXTURES + name);
      const updates = await materializeAdapter(a, backend);
      const ms = performance.now() - t0;
      const s = adapterStats(a);
      real.push({ adapter: name, peft_type: s.peft_type, modules: s.modules, rank: s.rank, trainable: s.trainable, bytes: s.bytes, modules_to_save: s.modules_to_save.map((m) => m.name), load_and_materialize_ms: Number(ms.toFixed(1)), updates: updates.length });
    }
  }
  if (values.json) {
    printJson(io, { model: values.model, backend: backend.name, methods: rows, real_peft_adapters: real });
    return 0;
  }
  const cols = ['method', 'modules', 'rank', 'trainable', 'frozen', 'bytes_fp32', 'bytes_fp16', 'materialize_ms', 'export_rel_fro'];
  const table = [cols, ...rows.map((r) => cols.map((c) => (typeof r[c] === 'number' ? (c === 'export_rel_fro' ? (r[c] as number).toExponential(1) : fmt(r[c] as number)) : String(r[c]))))];
  const widths = cols.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table) io.out(row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  if (real.length) {
    io.out('\nReal HF PEFT adapters (../shared/fixtures/peft-real):');
    for (const r of real) io.out(`  ${r.adapter}: ${r.peft_type} ${r.modules} modules, r=${r.rank}, ${fmt(r.trainable as number)} params, ${fmt(r.bytes as number)} bytes, heads ${JSON.stringify(r.modules_to_save)}, load+materialize ${r.load_and_materialize_ms} ms`);
  }
  io.out('\nEvery adapter was written to safetensors, read back, materialized to (A′, B′, s) and exported to PEFT LoRA (export_rel_fro = ‖ΔW − ΔW_lora‖/‖ΔW‖).');
  return 0;
}
