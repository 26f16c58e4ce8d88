/** `tensorpeft diff`: how far apart the ΔW of two adapters are. */
import { parseArgs } from 'node:util';
import { diffAdapters, getBackend, loadAdapter } from '@tensorpeft/core';
import { resolveModel, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const diffHelp = `tensorpeft diff <adapter A> <adapter B> [--model …]
  Prints {max_abs, rel_fro, modules}: max |ΔW_A − ΔW_B| and ‖ΔW_A − ΔW_B‖_F / ‖ΔW_A‖_F over all modules.`;

export async function diffCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { model: { type: 'string' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 2) throw new UsageError('diff takes exactly two adapters');
  const opts = values.model ? { shape: await resolveModel(values.model) } : {};
  const [a, b] = await Promise.all(positionals.map((p) => loadAdapter(p, opts)));
  printJson(io, await diffAdapters(a!, b!, await getBackend()));
  return 0;
}
