/** `tensorpeft inspect`: what an adapter folder or URL holds. */
import { parseArgs } from 'node:util';
import { adapterStats, loadAdapter } from '@tensorpeft/core';
import { resolveModel, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const inspectHelp = `tensorpeft inspect <adapter dir|url> [--model <preset|config.json|dir>] [--max-bytes N]
  Prints {peft_type, modules, rank, trainable, frozen, stored, bytes, modules_to_save, base_model_name_or_path} as JSON.
  --model is only needed for files that do not describe their module shapes (e.g. PEFT VeRA files).`;

export async function inspectCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { model: { type: 'string' }, 'max-bytes': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const location = positionals[0];
  if (!location || positionals.length > 1) throw new UsageError('inspect takes exactly one adapter folder or URL');
  const opts: Parameters<typeof loadAdapter>[1] = {};
  if (values.model) opts.shape = await resolveModel(values.model);
  if (values['max-bytes'] !== undefined) {
    const n = Number(values['max-bytes']);
    if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--max-bytes must be a positive integer, got ${values['max-bytes']}`);
    opts.maxBytes = n;
  }
  const adapter = await loadAdapter(location, opts);
  printJson(io, adapterStats(adapter));
  return 0;
}
