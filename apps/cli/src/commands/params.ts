/** `tensorpeft params`: parameter counts of a method on a model shape. */
import { parseArgs } from 'node:util';
import { configForShape, countParams, getMethod } from '@tensorpeft/core';
import { parseConfigArg, resolveModel, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';

export const paramsHelp = `tensorpeft params --model <preset|config.json|model dir> --method <name> [--config '<json>'|@file]
  Prints {peft_type, model, modules, rank, trainable, frozen, stored} as JSON.
  --config takes adapter_config.json fields; missing fields take the method's documented defaults;
  target_modules defaults to the model's PEFT default targets (e.g. query,value; c_attn; q_proj,v_proj).`;

export async function paramsCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { model: { type: 'string' }, method: { type: 'string' }, config: { type: 'string' } }, strict: true });
  if (!values.method) throw new UsageError('--method is required');
  const method = getMethod(values.method);
  const shape = await resolveModel(values.model);
  const { plan } = configForShape(method, await parseConfigArg(values.config), shape, '--config');
  const counts = countParams(plan);
  printJson(io, {
    peft_type: method.peftType,
    model: values.model,
    modules: plan.modules.length,
    rank: plan.rank,
    ...counts,
  });
  return 0;
}
