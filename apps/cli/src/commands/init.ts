/** `tensorpeft init`: write a freshly initialized adapter. */
import { parseArgs } from 'node:util';
import { adapterStats, adapterToFiles, createAdapter, getMethod, saveAdapter } from '@tensorpeft/core';
import { parseConfigArg, parseDtype, parseIntArg, resolveModel, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const initHelp = `tensorpeft init --model <…> --method <name> [--config '<json>'] [--seed N] [--nonzero] [--dtype fp32|fp16|bf16] --out <dir>
  Writes adapter_config.json + adapter_model.safetensors with the method's faithful init.
  --nonzero also fills the zero-initialized tensors with small seeded noise (ΔW ≠ 0).`;

export async function initCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      method: { type: 'string' },
      config: { type: 'string' },
      seed: { type: 'string' },
      nonzero: { type: 'boolean', default: false },
      dtype: { type: 'string' },
      out: { type: 'string' },
    },
    strict: true,
  });
  if (!values.method) throw new UsageError('--method is required');
  if (!values.out) throw new UsageError('--out <dir> is required');
  const method = getMethod(values.method);
  const shape = await resolveModel(values.model);
  const dtype = parseDtype(values.dtype);
  const adapter = createAdapter({
    method,
    config: await parseConfigArg(values.config),
    shape,
    seed: parseIntArg(values.seed, '--seed', 0),
    nonzero: values.nonzero,
    dtype,
  });
  await saveAdapter(adapter, values.out, { dtype });
  const stats = adapterStats(adapter);
  stats.bytes = adapterToFiles(adapter, { dtype }).safetensors.byteLength;
  printJson(io, { out: values.out, ...stats });
  return 0;
}
