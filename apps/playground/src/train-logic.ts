/**
 * The Train panel's logic without the DOM: pasted or dropped training data → labelled examples
 * (autodiff's JSONL/CSV readers, labels checked against the model's label set), the method list
 * (core's registry, never a method's name in a branch), the settings form, the loss curve's points
 * and the training graph's file. Unit-tested in train-logic.test.ts.
 */
import { DatasetError, parseCsv, parseJsonl, type Example, type OrtLike, type OrtSessionLike } from '@tensorpeft/autodiff';
import { ConfigError, listMethods } from '@tensorpeft/core';
import type { Dtype } from './logic.js';

export type DataFormat = 'auto' | 'jsonl' | 'csv';

/** JSONL when the first non-blank line is a JSON object, CSV (with a `text,label` header) otherwise. */
export function detectFormat(text: string): 'jsonl' | 'csv' {
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '');
  return first?.trimStart().startsWith('{') ? 'jsonl' : 'csv';
}

/**
 * Examples from pasted text or a dropped file (`source` names it in errors). A malformed line is
 * autodiff's DatasetError naming the line and field; no rows is a DatasetError too.
 */
export function parseTrainingData(text: string, format: DataFormat, source: string): Example[] {
  if (text.trim() === '') throw new DatasetError('dataset is empty', { file: source, expected: 'JSONL lines {"text": …, "label": …} or CSV with a text,label header' });
  const fmt = format === 'auto' ? detectFormat(text) : format;
  const rows = fmt === 'jsonl' ? parseJsonl(text, source) : parseCsv(text, source);
  if (rows.length === 0) throw new DatasetError('dataset is empty', { file: source, expected: 'at least one labelled row', found: 0 });
  return rows;
}

/** A labelled example with its label as an index into the model's labels. */
export interface LabelledExample {
  text?: string;
  input_ids?: readonly number[];
  label: number;
}

/**
 * Every example has a label of the model: one of its label names (config.json's id2label), or an
 * index 0…labels−1. Anything else is a DatasetError naming the example and the label set, before
 * any training graph is built.
 */
export function checkLabels(examples: readonly Example[], labels: readonly string[], source: string): LabelledExample[] {
  if (examples.length === 0) throw new DatasetError('dataset is empty', { file: source, expected: 'at least one labelled row', found: 0 });
  if (labels.length === 0) throw new DatasetError('the model has no label set (config.json id2label)', { file: source });
  const expected = `${labels.join(' | ')} (or 0…${labels.length - 1})`;
  return examples.map((ex, i) => {
    const field = `example ${i + 1}${ex.text !== undefined ? ` (${JSON.stringify(ex.text.length > 40 ? `${ex.text.slice(0, 40)}…` : ex.text)})` : ''}`;
    const l = ex.label;
    if (l === undefined) throw new DatasetError('example has no label', { file: source, field, expected });
    let idx = typeof l === 'string' ? labels.indexOf(l) : -1;
    if (idx < 0 && (typeof l === 'number' || /^\d+$/.test(l))) idx = Number(l);
    if (!Number.isInteger(idx) || idx < 0 || idx >= labels.length) throw new DatasetError("label outside the model's label set", { file: source, field, expected, found: l });
    return { ...(ex.text !== undefined ? { text: ex.text } : {}), ...(ex.input_ids ? { input_ids: ex.input_ids } : {}), label: idx };
  });
}

export interface MethodChoice {
  /** peft_type, what createTrainer takes. */
  value: string;
  label: string;
}

/** The method picked when the panel opens. */
export const DEFAULT_METHOD = 'TRAC';

/** Every registered method (core's `listMethods()`), in registry order. */
export function methodChoices(): MethodChoice[] {
  return listMethods().map((m) => ({ value: m.peftType, label: m.peftType }));
}

export interface TrainSettings {
  method: string;
  config: Record<string, unknown>;
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
}

export interface RawSettings {
  method: string;
  config: string;
  epochs: string;
  batchSize: string;
  learningRate: string;
  seed: string;
}

/** The form's strings → settings; a bad value is core's ConfigError naming the field. */
export function parseTrainSettings(raw: RawSettings): TrainSettings {
  const int = (field: string, v: string, min: number, max: number): number => {
    const n = Number(v.trim());
    if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${field} must be an integer`, { field, expected: `${min}…${max}`, found: v });
    return n;
  };
  const lr = Number(raw.learningRate.trim());
  if (raw.learningRate.trim() === '' || !Number.isFinite(lr) || lr <= 0 || lr > 1) throw new ConfigError('learning rate must be a number in (0, 1]', { field: 'learning rate', found: raw.learningRate });
  if (!methodChoices().some((m) => m.value === raw.method)) throw new ConfigError('unknown method', { field: 'method', expected: methodChoices().map((m) => m.value).join(' | '), found: raw.method });
  let config: unknown;
  try {
    config = raw.config.trim() === '' ? {} : JSON.parse(raw.config);
  } catch (e) {
    throw new ConfigError(`adapter config is not JSON: ${(e as Error).message}`, { field: 'config' });
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new ConfigError('adapter config must be a JSON object', { field: 'config', found: raw.config });
  return {
    method: raw.method,
    config: config as Record<string, unknown>,
    epochs: int('epochs', raw.epochs, 1, 1000),
    batchSize: int('batch size', raw.batchSize, 1, 1024),
    learningRate: lr,
    seed: int('seed', raw.seed, 0, 2 ** 31 - 1),
  };
}

/**
 * The graph the trainer differentiates for a model loaded as `dtype`: the q8 file on q8 (the
 * backward is straight-through over its MatMulInteger chain), the fp32 file otherwise (autodiff
 * has no rules for the 4-bit/fp16 contrib ops; the adapter it makes fits every dtype of the model).
 */
export function trainingFileFor(dtype: Dtype): 'onnx/model.onnx' | 'onnx/model_quantized.onnx' {
  return dtype === 'q8' ? 'onnx/model_quantized.onnx' : 'onnx/model.onnx';
}

export interface LossPoint {
  step: number;
  loss: number;
}

/** Points of the live loss plot (step numbers from 1; non-finite losses left out: a log-free linear axis). */
export function lossPoints(losses: readonly number[]): LossPoint[] {
  const out: LossPoint[] = [];
  losses.forEach((loss, i) => {
    if (Number.isFinite(loss)) out.push({ step: i + 1, loss });
  });
  return out;
}

/** `step 3 / 12 · loss 1.7918 · 2.1 s` (ETA when at least one step is done). */
export function formatTrainProgress(step: number, total: number, loss: number | undefined, elapsed: number): string {
  const eta = step > 0 && total > step ? ` · ETA ${((elapsed / step) * (total - step)).toFixed(1)} s` : '';
  return `step ${step} / ${total}${loss !== undefined ? ` · loss ${loss.toFixed(4)}` : ''} · ${elapsed.toFixed(1)} s${eta}`;
}

/** A macrotask turn of the event loop (input events, timers and a frame can run in it). */
const nextTask = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

/**
 * `ort` whose sessions give the event loop a turn before each run. ORT-web's wasm EP runs a
 * session on the page's thread and resolves without ever yielding a task, so a whole training run
 * would otherwise hold the page: no redraw of the loss plot, no click on Cancel until it ends.
 */
export function yieldingOrt(ort: OrtLike): OrtLike {
  return {
    Tensor: ort.Tensor,
    InferenceSession: {
      async create(model, options) {
        const s = await ort.InferenceSession.create(model, options);
        const wrapped: OrtSessionLike = {
          inputNames: s.inputNames,
          outputNames: s.outputNames,
          async run(feeds) {
            await nextTask();
            return s.run(feeds);
          },
          release: async () => s.release?.(),
        };
        return wrapped;
      },
    },
  };
}
