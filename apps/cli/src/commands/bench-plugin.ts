/**
 * `tensorpeft bench plugin`: the transformers.js plugin on generated BERT / DistilBERT sequence
 * classifiers — adapter swap vs re-creating the ORT session with merged weights, branch-mode forward
 * vs base forward, and load time per method; rows {bench, shape, ms, ratio?, bytes?, note?}.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { getBackend } from '@tensorpeft/core';
import { registerWasmBackend } from '@tensorpeft/kernels-wasm';
import { runPluginBench, type PluginBenchRow } from '@tensorpeft/transformers-plugin/node';
import { UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const benchPluginHelp = `tensorpeft bench plugin [--size base|tiny] [--arch bert,distilbert] [--seq N] [--rank N] [--backend js|wasm] [--quick] [--json] [--out file.json]
  Generates fp32 sequence classifiers (default: base-size DistilBERT and BERT) and times, through
  transformers.js and onnxruntime: set_adapter (ready to run) vs re-creating the session with merged
  weights (ratio = re-creation ÷ swap); forward at batch 1 × --seq tokens (default 128): base model,
  plugin with adapters disabled, and a LoRA of rank --rank (default 16) in branch mode (ratio ÷ base);
  load_adapter from a folder for every method (file bytes and materialized bytes). --quick takes
  fewer repetitions; --out also writes the JSON rows to a file. Progress goes to stderr.`;

function table(rows: PluginBenchRow[]): string[] {
  const cells = rows.map((r) => [
    r.bench,
    r.shape,
    r.ms < 0.01 ? r.ms.toExponential(2) : r.ms.toFixed(2),
    r.ratio === undefined ? '' : r.ratio >= 100 ? `${r.ratio.toExponential(2)}×` : `${r.ratio.toFixed(3)}×`,
    r.bytes === undefined ? '' : String(r.bytes),
    r.note ?? '',
  ]);
  const all = [['bench', 'shape', 'ms', 'ratio', 'bytes', 'note'], ...cells];
  const widths = all[0]!.map((_, i) => Math.max(...all.map((c) => c[i]!.length)));
  return all.map((c) => c.map((v, i) => (i === 2 || i === 3 || i === 4 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd());
}

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer, got ${v}`);
  return n;
}

export async function benchPluginCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string' },
      arch: { type: 'string' },
      seq: { type: 'string' },
      rank: { type: 'string' },
      backend: { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const rest = positionals[0] === 'plugin' ? positionals.slice(1) : positionals;
  if (rest.length) throw new UsageError(`unexpected argument ${rest.map((p) => `"${p}"`).join(' ')}`);
  const size = values.size ?? 'base';
  if (size !== 'base' && size !== 'tiny') throw new UsageError(`--size must be base or tiny, got ${size}`);
  const archs = (values.arch ?? 'distilbert,bert').split(',').map((s) => s.trim()).filter(Boolean);
  for (const a of archs) if (a !== 'bert' && a !== 'distilbert') throw new UsageError(`--arch takes bert and/or distilbert, got ${a}`);
  const seq = positiveInt('seq', values.seq, 128);
  const rank = positiveInt('rank', values.rank, 16);
  registerWasmBackend();
  const backend = await getBackend(values.backend);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  io.err(`bench plugin on ${cpu} (${cpus().length} cores, load ${load}), node ${process.version}, ${size}${values.quick ? ', quick' : ''}, backend ${backend.name}`);
  const rows = await runPluginBench({
    size,
    quick: values.quick,
    archs: archs as Array<'bert' | 'distilbert'>,
    seq,
    rank,
    backend,
    log: (l) => io.err(`  ${l}`),
  });
  if (values.out) {
    await mkdir(path.dirname(values.out), { recursive: true });
    await writeFile(values.out, `${JSON.stringify(rows, null, 2)}\n`);
  }
  if (values.json) printJson(io, rows);
  else for (const line of table(rows)) io.out(line);
  return 0;
}
