/** `tensorpeft export`: convert any adapter to a plain PEFT LoRA adapter, or to its method's official format. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { adapterStats, exportOfficial, exportToLora, getBackend, loadAdapter, saveAdapter } from '@tensorpeft/core';
import { parseDtype, resolveModel, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const exportHelp = `tensorpeft export <adapter dir|url> --to lora|official --out <dir> [--dtype fp32|fp16|bf16] [--model …]
  --to lora: an equivalent HF PEFT LoRA adapter (r = ρ, lora_alpha = ρ, s folded into lora_B).
  --to official: the files the method's official code reads (TRAC: adapter_config.json +
  adapter_model.bin; LoRTA PEFT port: adapter_config.json + adapter_model.safetensors), to continue
  training in Python.`;

export async function exportCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { to: { type: 'string' }, out: { type: 'string' }, dtype: { type: 'string' }, model: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError('export takes exactly one adapter folder or URL');
  if (values.to !== 'lora' && values.to !== 'official') throw new UsageError(`--to must be "lora" or "official", got ${values.to ?? 'nothing'}`);
  if (!values.out) throw new UsageError('--out <dir> is required');
  const opts = values.model ? { shape: await resolveModel(values.model) } : {};
  const src = await loadAdapter(positionals[0]!, opts);
  if (values.to === 'official') {
    const { files, from, notes } = exportOfficial(src);
    await mkdir(values.out, { recursive: true });
    for (const [name, bytes] of files) await writeFile(path.join(values.out, name), bytes);
    printJson(io, { out: values.out, to: 'official', official: from, files: [...files.keys()], notes, from: src.config.peft_type });
    return 0;
  }
  const lora = await exportToLora(src, await getBackend());
  const dtype = values.dtype ? parseDtype(values.dtype) : src.dtype;
  await saveAdapter(lora, values.out, { dtype });
  printJson(io, { out: values.out, from: src.config.peft_type, ...adapterStats(lora) });
  return 0;
}
