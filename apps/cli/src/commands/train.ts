/** `tensorpeft train`: fine-tune an adapter of any method on a model folder with onnxruntime-node. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { createTrainer, lossCurveSvg, parseDataFile, type OrtLike, type TrainProgress } from '@tensorpeft/autodiff';
import { saveAdapter } from '@tensorpeft/core';
import * as ort from 'onnxruntime-node';
import { parseConfigArg, parseIntArg, UsageError } from '../args.js';
import { printJson, type CliIO } from '../io.js';
import { formatDuration } from '../progress.js';

export const trainHelp = `tensorpeft train --model <model dir> --method <m> --data <file.jsonl|file.csv> --out <dir>
        [--config '<json>'] [--eval <file>] [--task seq-cls|causal-lm] [--dtype fp32|q8]
        [--epochs N] [--batch-size B] [--lr X] [--warmup N] [--accum K] [--max-length L]
        [--max-steps N] [--early-stop P] [--seed S] [--no-heads] [--grad-check] [--json] [--quiet]
  Fine-tunes a new adapter of the method on the model (an ONNX gradient graph run by
  onnxruntime-node: the plugin's branch rewrite + cross-entropy + backward). Classification heads are
  trained as PEFT modules_to_save (unless --no-heads). Writes the adapter folder, loss.svg and
  summary.json to --out, draws a progress bar with loss and time left on stderr (a terminal, not
  --quiet), and prints {method, steps, loss_first, loss_last, eval_loss, eval_accuracy, seconds, out}.
  --grad-check also compares the training graph's gradients with central finite differences after
  training and adds {max_rel_err, checked}. Data: JSONL lines {"text", "label"} (or "input_ids"),
  or CSV with a header naming text and label columns; labels are indices or config.json label names.`;

function num(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0) throw new UsageError(`${name} must be a positive number, got ${v}`);
  return x;
}

export async function trainCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      method: { type: 'string' },
      config: { type: 'string' },
      data: { type: 'string' },
      eval: { type: 'string' },
      task: { type: 'string' },
      dtype: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      warmup: { type: 'string' },
      accum: { type: 'string' },
      'max-length': { type: 'string' },
      'max-steps': { type: 'string' },
      'early-stop': { type: 'string' },
      seed: { type: 'string' },
      'no-heads': { type: 'boolean', default: false },
      'grad-check': { type: 'boolean', default: false },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.model) throw new UsageError('--model <model dir> is required (a transformers.js model folder, e.g. from make-model)');
  if (!values.method) throw new UsageError('--method is required: trac, lora, vera, loretta, lorta or tenslora');
  if (!values.data) throw new UsageError('--data <file.jsonl|file.csv> is required');
  if (!values.out) throw new UsageError('--out <dir> is required');
  const task = values.task;
  if (task !== undefined && task !== 'seq-cls' && task !== 'causal-lm') throw new UsageError(`--task must be seq-cls or causal-lm, got ${task}`);
  const dtype = values.dtype ?? 'fp32';
  if (dtype !== 'fp32' && dtype !== 'q8') throw new UsageError(`--dtype must be fp32 or q8, got ${dtype}`);
  const dir = path.resolve(values.model);
  const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const onnxBytes = await readFile(path.join(dir, 'onnx', dtype === 'q8' ? 'model_quantized.onnx' : 'model.onnx'));
  const data = parseDataFile(await readFile(values.data, 'utf8'), values.data);
  const evalData = values.eval ? parseDataFile(await readFile(values.eval, 'utf8'), values.eval) : undefined;
  const needsText = [...data, ...(evalData ?? [])].some((x) => x.text !== undefined);
  let tokenize: ((t: string) => number[]) | undefined;
  if (needsText) {
    const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath };
    env.allowRemoteModels = false;
    env.localModelPath = `${path.dirname(dir)}/`;
    try {
      const tok = await AutoTokenizer.from_pretrained(path.basename(dir));
      tokenize = (t) => Array.from((tok(t) as unknown as { input_ids: { data: BigInt64Array } }).input_ids.data, Number);
    } finally {
      Object.assign(env, saved);
    }
  }
  const trainer = await createTrainer(
    { onnx: onnxBytes, config },
    {
      method: values.method,
      config: await parseConfigArg(values.config),
      ort: ort as unknown as OrtLike,
      ...(task ? { task } : {}),
      // Default: heads for classification only (a causal LM has none to save as modules_to_save).
      ...(values['no-heads'] ? { heads: false } : {}),
      seed: values.seed !== undefined ? parseIntArg(values.seed, '--seed', 0) : 0,
      ...(tokenize ? { tokenize } : {}),
    },
  );
  const bar = !values.quiet && !values.json && process.stderr.isTTY;
  const onProgress = (p: TrainProgress): void => {
    if (!bar || p.status !== 'step') return;
    const frac = p.step / Math.max(1, p.total_steps);
    const eta = frac > 0 ? (p.elapsed * (1 - frac)) / frac : 0;
    const filled = Math.round(frac * 30);
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(30 - filled)}] ${p.step}/${p.total_steps} loss ${p.loss!.toFixed(4)} eta ${formatDuration(eta)}  `);
  };
  const r = await trainer.train(data, {
    epochs: num(values.epochs, '--epochs', 1),
    batch_size: num(values['batch-size'], '--batch-size', 8),
    learning_rate: num(values.lr, '--lr', 1e-3),
    ...(values.warmup !== undefined ? { warmup_steps: parseIntArg(values.warmup, '--warmup', 0) } : {}),
    gradient_accumulation_steps: num(values.accum, '--accum', 1),
    max_length: num(values['max-length'], '--max-length', 128),
    ...(values['max-steps'] !== undefined ? { max_steps: num(values['max-steps'], '--max-steps', 1) } : {}),
    ...(evalData ? { eval_dataset: evalData } : {}),
    ...(values['early-stop'] !== undefined ? { early_stopping_patience: num(values['early-stop'], '--early-stop', 1) } : {}),
    progress_callback: onProgress,
  });
  if (bar) process.stderr.write('\r\x1b[K');
  const out = path.resolve(values.out);
  await mkdir(out, { recursive: true });
  await saveAdapter(trainer.adapter, out);
  const last = r.evals[r.evals.length - 1];
  const summary: Record<string, unknown> = {
    method: trainer.adapter.method.cliName,
    peft_type: trainer.adapter.config.peft_type,
    task: trainer.task,
    dtype,
    steps: r.steps,
    stopped: r.stopped,
    loss_first: r.losses[0] ?? null,
    loss_last: r.losses[r.losses.length - 1] ?? null,
    eval_loss: last?.loss ?? null,
    eval_accuracy: last?.accuracy ?? null,
    seconds: r.seconds,
    out,
    trainable: trainer.trainableKeys.length,
  };
  if (values['grad-check']) summary['grad_check'] = await trainer.gradCheck(evalData ?? data, { seed: 1 });
  await writeFile(path.join(out, 'loss.svg'), lossCurveSvg({ losses: r.losses, evals: r.evals, title: `${summary['method']} on ${path.basename(dir)}` }));
  await writeFile(path.join(out, 'summary.json'), `${JSON.stringify({ ...summary, losses: r.losses, evals: r.evals }, null, 2)}\n`);
  await trainer.release();
  printJson(io, summary);
  return 0;
}
