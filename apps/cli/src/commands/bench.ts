/**
 * `tensorpeft bench kernels`: merge, branch apply and whole-adapter materialization on every
 * backend in one run (ratios comparable); rows {kernel, shape, backend, ms, gflops}.
 */
import { registerWebGpuBackend, WebGpuBackend } from '@tensorpeft/kernels-wgsl';
import { benchPluginCommand, benchPluginHelp } from './bench-plugin.js';
import { benchTrainCommand, benchTrainHelp } from './bench-train.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { getBackend, registeredBackends, type Backend } from '@tensorpeft/core';
import { registerWasmBackend, runKernelBench, type BenchRow } from '@tensorpeft/kernels-wasm';
import { UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const benchKernelsHelp = `tensorpeft bench kernels [--json] [--quick] [--tiny] [--backends js,wasm] [--out file.json]
  Times merge (W += s·B′A′ᵀ on 768x768x16, 768x3072x16, 4096x4096x16 = m×n×ρ), branch apply
  (128 rows), the Tucker reconstruction of one TensLoRA B′ (with and without its output permutation)
  and materialization of whole adapters of every method (BERT-base and LLaMA-2-7B, q,v) on each backend (default: every registered backend that loads). Prints rows
  {kernel, shape, backend, ms, gflops}; --quick takes fewer repetitions (same shapes); --tiny runs
  every row group at small shapes (merge/apply 64x64, BERT-base adapters only) to check the wiring
  in seconds, not for numbers; --out also writes the JSON rows to a file. Progress goes to stderr.`;

export const benchHelp = `${benchKernelsHelp}\n\n${benchPluginHelp}\n\n${benchTrainHelp}`;

function table(rows: BenchRow[]): string[] {
  const js = new Map(rows.filter((r) => r.backend === 'js').map((r) => [`${r.kernel}|${r.shape}`, r.ms]));
  const cells = rows.map((r) => {
    const base = js.get(`${r.kernel}|${r.shape}`);
    return [r.kernel, r.shape, r.backend, r.ms.toFixed(3), r.gflops.toFixed(2), base !== undefined && r.backend !== 'js' ? `${(base / r.ms).toFixed(1)}×` : ''];
  });
  const all = [['kernel', 'shape', 'backend', 'ms', 'GFLOP/s', 'vs js'], ...cells];
  const widths = all[0]!.map((_, i) => Math.max(...all.map((c) => c[i]!.length)));
  return all.map((c) => c.map((v, i) => (i < 3 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  '));
}

export async function benchCommand(argv: string[], io: CliIO): Promise<number> {
  // `bench plugin …` has its own options (model sizes, archs); dispatch before parsing.
  if (argv[0] === 'plugin') return benchPluginCommand(argv.slice(1), io);
  if (argv[0] === 'train') return benchTrainCommand(argv.slice(1), io);
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false }, tiny: { type: 'boolean', default: false }, backends: { type: 'string' }, out: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1 || positionals[0] !== 'kernels') {
    throw new UsageError(`expected the benchmark name "kernels", "plugin" or "train", got ${positionals.length ? positionals.map((p) => `"${p}"`).join(' ') : 'nothing'}`);
  }
  registerWasmBackend();
  registerWebGpuBackend();
  const requested = values.backends?.split(',').map((s) => s.trim()).filter(Boolean);
  const backends: Backend[] = [];
  for (const name of requested ?? registeredBackends().reverse()) {
    try {
      const b = await getBackend(name);
      // SwiftShader (software WebGPU) runs at ~0.1 GFLOP/s: a full bench would take minutes per row.
      if (!requested && b instanceof WebGpuBackend && b.software) {
        io.err(`bench: skipping backend webgpu: software adapter (${b.adapterDescription}); ask for it with --backends webgpu`);
        continue;
      }
      backends.push(b);
    } catch (e) {
      if (requested) throw e;
      io.err(`bench: skipping backend ${name}: ${(e as Error).message}`);
    }
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  io.err(`bench kernels on ${cpu} (${cpus().length} cores), node ${process.version}${values.quick ? ', quick' : ''}${values.tiny ? ', tiny shapes' : ''}: ${backends.map((b) => b.name).join(', ')}`);
  const rows = await runKernelBench(backends, { quick: values.quick, tiny: values.tiny, log: (l) => io.err(`  ${l}`) });
  if (values.out) {
    await mkdir(path.dirname(values.out), { recursive: true });
    await writeFile(values.out, `${JSON.stringify(rows, null, 2)}\n`);
  }
  if (values.json) printJson(io, rows);
  else for (const line of table(rows)) io.out(line);
  return 0;
}
