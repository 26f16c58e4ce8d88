/** `tensorpeft export`: convert any adapter to a plain PEFT LoRA adapter. */
import { parseArgs } from 'node:util';
import { adapterStats, exportToLora, getBackend, loadAdapter, saveAdapter } from '@tensorpeft/core';
import { parseDtype, resolveModel, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const exportHelp = `tensorpeft export <adapter dir|url> --to lora --out <dir> [--dtype fp32|fp16|bf16] [--model …]
  Writes an equivalent HF PEFT LoRA adapter (r = ρ, lora_alpha = ρ, s folded into lora_B).`;

export async function exportCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { to: { type: 'string' }, out: { type: 'string' }, dtype: { type: 'string' }, model: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError('export takes exactly one adapter folder or URL');
  if (values.to !== 'lora') throw new UsageError(`--to must be "lora" (the only export target), got ${values.to ?? 'nothing'}`);
  if (!values.out) throw new UsageError('--out <dir> is required');
  const opts = values.model ? { shape: await resolveModel(values.model) } : {};
  const src = await loadAdapter(positionals[0]!, opts);
  const lora = await exportToLora(src, await getBackend());
  const dtype = values.dtype ? parseDtype(values.dtype) : src.dtype;
  await saveAdapter(lora, values.out, { dtype });
  printJson(io, { out: values.out, from: src.config.peft_type, ...adapterStats(lora) });
  return 0;
}
