/**
 * Training examples → padded batches: token ids (given, or from a `tokenize` function), labels
 * resolved against the model's label set, seeded shuffling, and the label/weight tensors of the
 * loss (classification: one label per row; causal LM: next token, padding and the last position
 * weighted 0).
 */
import { Prng } from '@tensorpeft/core';
import { DatasetError } from '../errors.js';

export interface Example {
  /** Token ids (or `text` with the trainer's `tokenize`). */
  input_ids?: readonly number[];
  text?: string;
  /** Classification label: an index, or a name from config.json's label2id. */
  label?: number | string;
  /**
   * A teacher's logits, for the `logits-mse` loss (distillation): [C] for classification,
   * [tokens × V] (row-major, one row per token, as `Trainer.predict` returns) for causal LM.
   */
  logits?: ArrayLike<number>;
}

export interface Encoded {
  ids: number[];
  label: number;
  /** Teacher logits (logits-mse), truncated with the ids. */
  logits?: Float32Array;
}

export interface EncodeOptions {
  task: 'seq-cls' | 'causal-lm';
  tokenize?: (text: string) => number[];
  maxLength: number;
  numLabels: number;
  label2id?: Record<string, number>;
  vocabSize?: number;
  /** Name of the dataset for error messages (file path). */
  source?: string;
  /** The logits-mse loss: every example carries `logits` with this many per row / token. */
  logitClasses?: number;
}

export function encodeExamples(examples: readonly Example[], o: EncodeOptions): Encoded[] {
  if (examples.length === 0) throw new DatasetError('dataset is empty', { file: o.source, expected: 'at least one example', found: 0 });
  return examples.map((ex, i) => {
    const where = { file: o.source, field: `example ${i + 1}` };
    let ids: number[];
    if (ex.input_ids) ids = [...ex.input_ids];
    else if (typeof ex.text === 'string') {
      if (!o.tokenize) throw new DatasetError('example has text but the trainer has no tokenizer', { ...where, expected: 'input_ids or a tokenize function' });
      ids = o.tokenize(ex.text);
    } else throw new DatasetError('example has neither text nor input_ids', { ...where, found: Object.keys(ex) });
    if (ids.length === 0) throw new DatasetError('example has no tokens', where);
    if (o.vocabSize !== undefined) {
      const bad = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= o.vocabSize!);
      if (bad !== undefined) throw new DatasetError('token id outside the vocabulary', { ...where, expected: `0 ≤ id < ${o.vocabSize}`, found: bad });
    }
    ids = ids.slice(0, o.maxLength);
    let label = -1;
    if (o.logitClasses !== undefined) {
      const C = o.logitClasses;
      const want = o.task === 'seq-cls' ? C : ids.length * C;
      const l = ex.logits;
      if (!l) throw new DatasetError('example has no teacher logits (the logits-mse loss needs them)', { ...where, expected: 'logits' });
      if (l.length < want || (o.task === 'seq-cls' && l.length !== C) || (o.task === 'causal-lm' && l.length % C !== 0)) {
        throw new DatasetError('teacher logits of the wrong length', { ...where, expected: o.task === 'seq-cls' ? C : `tokens × ${C} = ${want}`, found: l.length });
      }
      const logits = Float32Array.from({ length: want }, (_, k) => Number(l[k]));
      if (!logits.every(Number.isFinite)) throw new DatasetError('teacher logits are not all finite', where);
      if (o.task === 'causal-lm' && ids.length < 2) throw new DatasetError('causal-LM example needs at least 2 tokens', { ...where, found: ids.length });
      return { ids, label, logits };
    }
    if (o.task === 'seq-cls') {
      if (ex.label === undefined) throw new DatasetError('example has no label', { ...where, expected: 'label' });
      if (typeof ex.label === 'number') label = ex.label;
      else if (o.label2id && Object.hasOwn(o.label2id, ex.label)) label = o.label2id[ex.label]!;
      else if (/^\d+$/.test(ex.label)) label = Number(ex.label);
      else throw new DatasetError('label is not in the model\'s label set', { ...where, expected: Object.keys(o.label2id ?? {}).join(' | ') || `0…${o.numLabels - 1}`, found: ex.label });
      if (!Number.isInteger(label) || label < 0 || label >= o.numLabels) throw new DatasetError('label outside the model\'s label set', { ...where, expected: `0…${o.numLabels - 1}`, found: ex.label });
    } else if (ids.length < 2) throw new DatasetError('causal-LM example needs at least 2 tokens', { ...where, found: ids.length });
    return { ids, label };
  });
}

/** A seeded permutation of 0…n−1 (Fisher–Yates on core's PRNG). */
export function shuffled(n: number, seed: number, epoch: number): number[] {
  const r = new Prng(seed, `train.shuffle.${epoch}`);
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r.uniform() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

export interface PaddedBatch {
  batch: number;
  seq: number;
  ids: BigInt64Array;
  mask: BigInt64Array;
  labels: BigInt64Array;
  /** Loss weights (sum 1 over counted positions). */
  weights: Float32Array;
  /** Counted labels. */
  count: number;
  /** Classification labels per row / LM targets per position (−1 = not counted), for accuracy (logits-mse: the teacher's argmax). */
  targets: number[];
  /** Teacher logits padded to [batch, (seq,) C] (logits-mse). */
  soft?: Float32Array;
}

function argmax(x: Float32Array, at: number, C: number): number {
  let best = 0;
  for (let k = 1; k < C; k++) if (x[at + k]! > x[at + best]!) best = k;
  return best;
}

/** Teacher logits of a batch padded to [B, (S,) C] and argmax targets where the batch counts a row / position. */
function softTargets(items: readonly Encoded[], b: PaddedBatch, task: 'seq-cls' | 'causal-lm'): PaddedBatch {
  const rows = task === 'seq-cls' ? b.batch : b.batch * b.seq;
  const C = items[0]!.logits!.length / (task === 'seq-cls' ? 1 : items[0]!.ids.length);
  const soft = new Float32Array(rows * C);
  items.forEach((x, r) => soft.set(x.logits!, (task === 'seq-cls' ? r : r * b.seq) * C));
  const targets = b.targets.map((t, i) => (task === 'causal-lm' && t < 0 ? -1 : argmax(soft, i * C, C)));
  return { ...b, soft, targets };
}

export function padBatch(items: readonly Encoded[], task: 'seq-cls' | 'causal-lm', padId: number): PaddedBatch {
  const B = items.length;
  const S = Math.max(...items.map((x) => x.ids.length));
  const ids = new BigInt64Array(B * S).fill(BigInt(padId));
  const mask = new BigInt64Array(B * S);
  items.forEach((x, r) => x.ids.forEach((t, j) => {
    ids[r * S + j] = BigInt(t);
    mask[r * S + j] = 1n;
  }));
  if (task === 'seq-cls') {
    const labels = BigInt64Array.from(items.map((x) => BigInt(x.label)));
    const b = { batch: B, seq: S, ids, mask, labels, weights: new Float32Array(B).fill(1 / B), count: B, targets: items.map((x) => x.label) };
    return items[0]?.logits ? softTargets(items, b, task) : b;
  }
  const labels = new BigInt64Array(B * S);
  const w = new Float32Array(B * S);
  const targets = new Array<number>(B * S).fill(-1);
  let count = 0;
  items.forEach((x, r) => {
    for (let t = 0; t + 1 < x.ids.length; t++) {
      labels[r * S + t] = BigInt(x.ids[t + 1]!);
      targets[r * S + t] = x.ids[t + 1]!;
      w[r * S + t] = 1;
      count++;
    }
  });
  for (let i = 0; i < w.length; i++) w[i]! /= count;
  const b = { batch: B, seq: S, ids, mask, labels, weights: w, count, targets };
  return items[0]?.logits ? softTargets(items, b, task) : b;
}
