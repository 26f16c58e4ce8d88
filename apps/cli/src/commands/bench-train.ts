/**
 * `tensorpeft bench train`: one training step (forward + backward + AdamW) vs one forward on a
 * generated sequence classifier (default: base DistilBERT, batch 8 × seq 128, TRAC), ratio from
 * interleaved repeats in one run, with the working memory of each (see autodiff's bench-train.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runTrainBench, type OrtLike, type TrainBenchRow } from '@tensorpeft/autodiff/node';
import { makeModel } from '@tensorpeft/model-gen';
import * as ort from 'onnxruntime-node';
import { parseConfigArg, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const benchTrainHelp = `tensorpeft bench train [--size base|tiny] [--arch distilbert|bert] [--method trac] [--config json]
        [--seq N] [--batch N] [--repeats N] [--warmup N] [--no-memory] [--json] [--out file.json]
  Generates an fp32 sequence classifier (default: base DistilBERT, random weights) and times one
  training step (training-graph forward + backward, the method's chain rule, AdamW; heads trained)
  against one forward of the same batch (default 8 × 128 tokens), interleaved, in one process; the
  ratio row is the median of per-pair ratios with min/max and the load average. Memory rows: peak
  RSS above the RSS before each phase (Linux VmHWM, reset per phase). Rows {bench, shape, ms, min,
  max, ratio, bytes, repeats, load, note}; --out also writes them to a file. Progress on stderr.`;

function positiveInt(name: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer ≥ ${min}, got ${v}`);
  return n;
}

function fmtBytes(b: number): string {
  return `${(b / 2 ** 20).toFixed(1)} MiB`;
}

function table(rows: TrainBenchRow[]): string[] {
  const cells = rows.map((r) => [
    r.bench,
    r.ms ? r.ms.toFixed(1) : '',
    r.min === undefined ? '' : r.ratio !== undefined && !r.ms ? `${r.min.toFixed(2)}–${r.max!.toFixed(2)}` : `${r.min.toFixed(1)}–${r.max!.toFixed(1)}`,
    r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`,
    r.bytes === undefined ? '' : fmtBytes(r.bytes),
    r.load ? `${r.load[0].toFixed(2)}→${r.load[1].toFixed(2)}` : '',
  ]);
  const all = [['bench', 'ms', 'spread', 'ratio', 'memory', 'load'], ...cells];
  const widths = all[0]!.map((_, i) => Math.max(...all.map((c) => c[i]!.length)));
  return all.map((c) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ').trimEnd());
}

export async function benchTrainCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      size: { type: 'string' },
      arch: { type: 'string' },
      method: { type: 'string' },
      config: { type: 'string' },
      seq: { type: 'string' },
      batch: { type: 'string' },
      repeats: { type: 'string' },
      warmup: { type: 'string' },
      'no-memory': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      out: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const rest = positionals[0] === 'train' ? positionals.slice(1) : positionals;
  if (rest.length) throw new UsageError(`unexpected argument ${rest.map((p) => `"${p}"`).join(' ')}`);
  const size = values.size ?? 'base';
  if (size !== 'base' && size !== 'tiny') throw new UsageError(`--size must be base or tiny, got ${size}`);
  const arch = values.arch ?? 'distilbert';
  if (arch !== 'distilbert' && arch !== 'bert') throw new UsageError(`--arch must be distilbert or bert, got ${arch}`);
  const config = values.config === undefined ? undefined : await parseConfigArg(values.config);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  io.err(`bench train on ${cpu} (${cpus().length} cores, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}), node ${process.version}, ${arch}-${size}`);
  const gm = makeModel({ arch, size, seed: 0, quantized: false });
  const rows = await runTrainBench({
    model: { onnx: gm.files.get('onnx/model.onnx')!, config: gm.config },
    label: `${arch}-${size}`,
    ort: ort as unknown as OrtLike,
    ...(values.method ? { method: values.method } : {}),
    ...(config ? { config } : {}),
    seq: positiveInt('seq', values.seq, 128),
    batch: positiveInt('batch', values.batch, 8),
    repeats: positiveInt('repeats', values.repeats, 5),
    warmup: positiveInt('warmup', values.warmup, 2, 0),
    memory: !values['no-memory'],
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
