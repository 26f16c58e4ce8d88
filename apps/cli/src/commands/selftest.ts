/**
 * `tensorpeft selftest`: every kernel of a backend on random shapes (odd sizes, rank 1) and whole
 * adapters of every method, against the JS reference backend. Exit code 1 when any case fails.
 */
import { parseArgs } from 'node:util';
import { getBackend } from '@tensorpeft/core';
import { registerWasmBackend, runSelftest } from '@tensorpeft/kernels-wasm';
import { registerWebGpuBackend } from '@tensorpeft/kernels-wgsl';
import { parseIntArg } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const selftestHelp = `tensorpeft selftest [--backend wasm|webgpu|js|…] [--json] [--seed N] [--rounds N]
  Runs every kernel of the backend (default: the fastest that loads) on random shapes — odd,
  non-multiple-of-4 sizes and rank 1 included — and materializes tiny adapters of every method,
  comparing with the JS reference. Prints {backend, passed, failed, max_rel_err}; a case passes
  when ‖x − y‖∞ ≤ (K + 2)·2⁻²⁴·‖|y|‖∞, K its float32 summation length (see --json "tolerance").
  Exit code 1 when a case fails.`;

export async function selftestCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { backend: { type: 'string' }, json: { type: 'boolean', default: false }, seed: { type: 'string' }, rounds: { type: 'string' } },
    strict: true,
  });
  registerWasmBackend();
  registerWebGpuBackend();
  const backend = await getBackend(values.backend);
  const r = await runSelftest(backend, { seed: parseIntArg(values.seed, '--seed', 1), rounds: parseIntArg(values.rounds, '--rounds', 12) });
  if (values.json) {
    printJson(io, r);
  } else {
    io.out(`selftest ${r.backend} vs js: ${r.passed} passed, ${r.failed} failed; max_rel_err ${r.max_rel_err.toExponential(2)} (worst case at ${(100 * r.max_err_over_bound).toFixed(0)}% of its bound)`);
    io.out(`tolerance: ${r.tolerance}`);
    for (const f of r.failures) io.out(`  FAILED ${f.kernel} [${f.shape}]: ${f.error ?? `rel_err ${f.rel_err.toExponential(2)}, ${f.err_over_bound.toFixed(2)}× its bound`}`);
  }
  return r.failed === 0 ? 0 : 1;
}
