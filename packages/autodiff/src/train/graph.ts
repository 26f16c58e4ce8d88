/**
 * The training graph of a model: the plugin's branch rewrite (every adapter factor and head
 * parameter a graph input), the cross-entropy loss, and the backward pass, in one ONNX model that
 * an onnxruntime inference session runs. Outputs: loss, logits, `grad.<input>` per trainable input.
 */
import { rewriteModel, type BranchInfo, type ParamInfo } from '@tensorpeft/transformers-plugin';
import { buildGradientGraph } from '../gradient.js';
import { TrainingGraphError } from '../errors.js';
import { onnx, type ModelProto } from '../onnx.js';
import { probeShapes, type OrtLike, type OrtTensorLike } from '../probe.js';
import { appendCrossEntropy, appendLogitsMse, LABELS_INPUT, LOSS_OUTPUT, TARGETS_INPUT, WEIGHTS_INPUT } from './loss.js';
import { modelFeeds, modelInputs, type ModelInput } from './feeds.js';

export interface TrainingGraphOptions {
  /** PEFT module paths the adapter targets (core's plan modules). */
  targets: readonly string[];
  /** Also train the overridable head parameters (PEFT `modules_to_save`); default true. */
  heads?: boolean;
  /** `cross-entropy` on labels (default), or `logits-mse`: squared error to a teacher's logits (distillation). */
  loss?: TrainLoss;
  ort: OrtLike;
}

export type TrainLoss = 'cross-entropy' | 'logits-mse';

export interface TrainingGraph {
  bytes: Uint8Array;
  branches: BranchInfo[];
  /** Head parameters that get gradients (when `heads`). */
  params: ParamInfo[];
  /** The model's own inputs (ids, mask, …), for `modelFeeds`. */
  inputs: ModelInput[];
  loss: string;
  logits: string;
  /** `grad.<input>` by trainable input name. */
  grads: Map<string, string>;
  straightThrough: string[];
  /** The forward graph with loss (no backward), for finite differences and evaluation. */
  forward: Uint8Array;
  /** Logits rank 3 (causal LM) or 2 (classification). */
  sequenceLogits: boolean;
  lossKind: TrainLoss;
  /** Size of the logits' last axis (classes or vocabulary). */
  classes: number;
}

const PROBE_RANK = 2;

export async function buildTrainingGraph(modelBytes: Uint8Array, opts: TrainingGraphOptions): Promise<TrainingGraph> {
  const rw = rewriteModel(modelBytes, { targets: opts.targets, overridableHeads: opts.heads ?? true });
  if (rw.branches.length === 0) throw new TrainingGraphError('model has no adapter inputs for these target modules', { expected: opts.targets.slice(0, 4).join(', '), found: 'no matching linear' });
  const model: ModelProto = onnx.ModelProto.decode(rw.bytes);
  const logitsOut = (model.graph!.output ?? []).find((o) => o.name === 'logits');
  if (!logitsOut) throw new TrainingGraphError('model has no logits output (export the task model, not the bare one)', { found: (model.graph!.output ?? []).map((o) => o.name) });
  const logitDims = logitsOut.type?.tensorType?.shape?.dim ?? [];
  const sequenceLogits = logitDims.length === 3;
  const classes = Number(logitDims[logitDims.length - 1]?.dimValue ?? 0);
  const lossKind = opts.loss ?? 'cross-entropy';
  if (lossKind === 'logits-mse') {
    if (!(classes > 0)) throw new TrainingGraphError('logits-mse needs a static size of the logits\' last axis', { tensor: 'logits', found: logitDims.map((d) => d.dimParam || Number(d.dimValue)) });
    appendLogitsMse(model, 'logits');
  } else appendCrossEntropy(model, 'logits');
  const inputs = modelInputs(model);
  const wrt = [...rw.branches.flatMap((b) => [b.inputA, b.inputB]), ...((opts.heads ?? true) ? rw.params.map((p) => p.input) : [])];
  const feeds = probeFeeds(opts.ort, inputs, rw.branches, rw.params, sequenceLogits, lossKind === 'logits-mse' ? classes : 0);
  const shapes = await probeShapes(model, feeds, opts.ort);
  const gg = buildGradientGraph(model, { loss: LOSS_OUTPUT, wrt, shapes, keep: ['logits'] });
  return {
    bytes: gg.bytes,
    branches: rw.branches,
    params: (opts.heads ?? true) ? rw.params : [],
    inputs,
    loss: LOSS_OUTPUT,
    logits: 'logits',
    grads: gg.grads,
    straightThrough: gg.straightThrough,
    forward: onnx.ModelProto.encode(model).finish(),
    sequenceLogits,
    lossKind: lossKind,
    classes,
  };
}

/** A small batch (sizes ≥ 2 on every symbolic axis, adapter rank 2) whose run reveals every value's rank. */
function probeFeeds(ort: OrtLike, inputs: readonly ModelInput[], branches: readonly BranchInfo[], params: readonly ParamInfo[], seqLogits: boolean, mseClasses: number): Record<string, OrtTensorLike> {
  const B = 2;
  const S = 3;
  const pixelsIn = inputs.find((i) => i.name === 'pixel_values');
  const pixels = pixelsIn ? new Float32Array(B * pixelsIn.dims.slice(1).reduce<number>((a, d) => a * Number(d), 1)) : undefined;
  const f = modelFeeds(ort, inputs, { batch: B, seq: S, ids: BigInt64Array.from({ length: B * S }, (_, i) => BigInt(i % 3)), ...(pixels ? { pixels } : {}) });
  for (const b of branches) {
    f[b.inputA] = new ort.Tensor('float32', new Float32Array(b.n * PROBE_RANK), [b.n, PROBE_RANK]);
    f[b.inputB] = new ort.Tensor('float32', new Float32Array(PROBE_RANK * b.m), [PROBE_RANK, b.m]);
  }
  for (const p of params) f[p.input] = new ort.Tensor('float32', new Float32Array(p.dims.reduce((a, d) => a * d, 1)), [1, ...p.dims]);
  const lab = seqLogits ? B * S : B;
  if (mseClasses) f[TARGETS_INPUT] = new ort.Tensor('float32', new Float32Array(lab * mseClasses), seqLogits ? [B, S, mseClasses] : [B, mseClasses]);
  else f[LABELS_INPUT] = new ort.Tensor('int64', new BigInt64Array(lab), seqLogits ? [B, S] : [B]);
  f[WEIGHTS_INPUT] = new ort.Tensor('float32', new Float32Array(lab).fill(1 / lab), seqLogits ? [B, S] : [B]);
  return f;
}
