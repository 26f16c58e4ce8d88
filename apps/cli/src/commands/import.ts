/** `tensorpeft import`: read what a method's official (paper) code saved and write a native adapter folder. */
import { parseArgs } from 'node:util';
import { adapterStats, importOfficial, officialSources, readOfficialFiles, saveAdapter } from '@tensorpeft/core';
import { parseConfigArg, parseDtype, resolveModel, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const importHelp = `tensorpeft import <official folder|file> [--from trac|loretta|lorta|tenslora] [--model …] [--config '<json>'] --out <dir> [--dtype fp32|fp16|bf16]
  Reads a checkpoint saved by a method's official code (torch .bin/.pth read without running any
  pickle code, or safetensors) and writes the same adapter as adapter_config.json +
  adapter_model.safetensors. The source is detected from the files when --from is omitted; --model
  supplies what the files cannot say (module paths, heads, layers); --config overrides fields.`;

export async function importCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { from: { type: 'string' }, model: { type: 'string' }, config: { type: 'string' }, out: { type: 'string' }, dtype: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError('import takes exactly one official folder or checkpoint file');
  if (!values.out) throw new UsageError('--out <dir> is required');
  if (values.from !== undefined && !officialSources().includes(values.from)) {
    throw new UsageError(`--from must be one of ${officialSources().join(', ')}, got ${values.from}`);
  }
  const files = await readOfficialFiles(positionals[0]!);
  const shape = values.model ? await resolveModel(values.model) : undefined;
  const config = values.config ? await parseConfigArg(values.config) : undefined;
  const { adapter, from, notes } = importOfficial(files, {
    ...(values.from ? { from: values.from } : {}),
    ...(shape ? { shape } : {}),
    ...(config ? { config } : {}),
  });
  const dtype = values.dtype ? parseDtype(values.dtype) : adapter.dtype;
  adapter.dtype = dtype;
  await saveAdapter(adapter, values.out, { dtype });
  printJson(io, { out: values.out, from, notes, ...adapterStats(adapter) });
  return 0;
}
