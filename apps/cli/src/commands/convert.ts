/** `tensorpeft convert`: fit a tensor-method adapter to a LoRA adapter within a parameter budget. */
import { parseArgs } from 'node:util';
import { convertLora, diffAdapters, getBackend, loadAdapter, saveAdapter } from '@tensorpeft/core';
import { parseConfigArg, parseDtype, parseIntArg, resolveModel, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';
import { progressBar } from '../progress.js';

export const convertHelp = `tensorpeft convert <LoRA adapter dir|url> --to trac|lorta|tenslora|loretta (--budget N | --ratio R) --out <dir>
        [--json] [--seed S] [--iters K] [--als K] [--optimizer lbfgs|adam] [--config '<json>'] [--model …]
        [--dtype fp32|fp16|bf16] [--keep-frozen-random] [--quiet]
  Fits the method's tensors to the LoRA's updates (no base model or data needed), choosing ranks so
  that the fitted parameters stay within --budget (or LoRA trainable / --ratio), writes the adapter,
  and prints {params_before, params_after, rel_error, svd_rel_error, …}: rel_error is
  ‖ΔW_lora − ΔW_out‖_F / ‖ΔW_lora‖_F recomputed from the written file; svd_rel_error is the best
  truncated-SVD LoRA with the same budget. --config fixes non-rank fields (e.g. TensLoRA
  construction, TRAC variant); without a budget it is fitted as given. A progress bar with the time
  left is drawn on stderr when it is a terminal.`;

function positiveNumber(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0) throw new UsageError(`${name} must be a positive number, got ${v}`);
  return x;
}

export async function convertCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      to: { type: 'string' },
      budget: { type: 'string' },
      ratio: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      seed: { type: 'string' },
      iters: { type: 'string' },
      als: { type: 'string' },
      optimizer: { type: 'string' },
      config: { type: 'string' },
      model: { type: 'string' },
      dtype: { type: 'string' },
      'keep-frozen-random': { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError('convert takes exactly one LoRA adapter folder or URL');
  if (!values.to) throw new UsageError('--to is required: trac, lorta, tenslora or loretta');
  if (!values.out) throw new UsageError('--out <dir> is required');
  if (values.budget !== undefined && values.ratio !== undefined) throw new UsageError('give --budget or --ratio, not both');
  const budget = values.budget !== undefined ? parseIntArg(values.budget, '--budget', 0) : undefined;
  if (budget === 0) throw new UsageError('--budget must be a positive integer');
  const ratio = positiveNumber(values.ratio, '--ratio');
  const optimizer = values.optimizer ?? 'lbfgs';
  if (optimizer !== 'lbfgs' && optimizer !== 'adam') throw new UsageError(`--optimizer must be lbfgs or adam, got ${optimizer}`);
  const dtype = parseDtype(values.dtype);
  const shape = values.model ? await resolveModel(values.model) : undefined;
  const src = await loadAdapter(positionals[0]!, shape ? { shape } : {});
  const backend = await getBackend();

  const stream = process.stderr;
  const bar = !values.quiet && stream.isTTY ? progressBar(stream) : undefined;
  let res;
  try {
    res = await convertLora(src, {
      to: values.to,
      ...(budget !== undefined ? { budget } : {}),
      ...(ratio !== undefined ? { ratio } : {}),
      config: await parseConfigArg(values.config),
      ...(shape ? { shape } : {}),
      seed: parseIntArg(values.seed, '--seed', 0),
      iters: parseIntArg(values.iters, '--iters', 200),
      alsSweeps: parseIntArg(values.als, '--als', 30),
      optimizer,
      fitFrozen: !values['keep-frozen-random'],
      dtype,
      backend,
      ...(bar ? { progress: bar.update } : {}),
    });
  } finally {
    bar?.done();
  }
  await saveAdapter(res.adapter, values.out, { dtype });
  // rel_error from the written file: load it back and compare factored with the source.
  const written = await loadAdapter(values.out);
  const diff = await diffAdapters(src, written, backend, { dense: false });
  const report = {
    out: values.out,
    from: src.config.peft_type,
    to: res.adapter.config.peft_type,
    params_before: res.params_before,
    params_after: res.params_after,
    rel_error: diff.rel_fro,
    svd_rel_error: res.svd_rel_error,
    budget: res.budget,
    params_fitted: res.params_fitted,
    params_after_stored: res.params_after_stored,
    svd_rel_error_stored: res.svd_rel_error_stored,
    init_rel_error: res.init_rel_error,
    fit_rel_error: res.rel_error,
    chosen: res.chosen,
    construction: res.adapter.config.construction,
    dtype,
    iterations: res.iterations,
    seconds: Number(res.seconds.toFixed(3)),
  };
  if (values.json) printJson(io, report);
  else {
    io.out(
      [
        `wrote ${report.to} adapter to ${report.out}`,
        `params: ${report.params_before} (LoRA) → ${report.params_after} trainable, ${report.params_after_stored} stored` +
          (report.budget !== null ? ` (budget ${report.budget}, fitted ${report.params_fitted})` : ''),
        `rel_error ${report.rel_error.toFixed(6)} (from the written file); truncated-SVD LoRA with the same budget: ${report.svd_rel_error.toFixed(6)}`,
        `ranks: ${JSON.stringify(report.chosen)}${report.construction ? ` construction ${String(report.construction)}` : ''}; ${report.seconds} s`,
      ].join('\n'),
    );
  }
  return 0;
}
