/**
 * Cross-entropy appended to a model graph: L = −Σ w ⊙ log softmax(logits)[label]. The trainer feeds
 * the weights already divided by the number of counted labels in the whole (accumulated) batch, so
 * L is the mean over counted labels and a weight 0 ignores a position (padding, the last token of a
 * causal-LM row). Classification: logits [B, C], labels/weights [B]; causal LM: [B, S, V] and [B, S].
 */
import { A, type ModelProto, onnx } from '../onnx.js';
import { TrainingGraphError } from '../errors.js';

export const LABELS_INPUT = 'tensorpeft.train.labels';
export const WEIGHTS_INPUT = 'tensorpeft.train.weights';
export const LOSS_OUTPUT = 'tensorpeft.train.loss';
export const TARGETS_INPUT = 'tensorpeft.train.targets';

/** Append the loss (in place); `logits` must be a graph output. */
export function appendCrossEntropy(model: ModelProto, logits = 'logits'): void {
  const g = model.graph!;
  if (!(g.output ?? []).some((o) => o.name === logits)) {
    throw new TrainingGraphError('model has no logits output to train on', { tensor: logits, found: (g.output ?? []).map((o) => o.name) });
  }
  const s = '/tensorpeft/loss';
  const axesLast = `${s}/axes_last`;
  g.initializer!.push(onnx.TensorProto.fromObject({ name: axesLast, dataType: onnx.TensorProto.DataType.INT64, dims: [1], int64Data: [-1] }));
  const nodes = [
    { name: `${s}/LogSoftmax`, opType: 'LogSoftmax', input: [logits], output: [`${s}/logp`], attribute: [A.int('axis', -1)] },
    { name: `${s}/Unsqueeze`, opType: 'Unsqueeze', input: [LABELS_INPUT, axesLast], output: [`${s}/idx`] },
    { name: `${s}/GatherElements`, opType: 'GatherElements', input: [`${s}/logp`, `${s}/idx`], output: [`${s}/picked`], attribute: [A.int('axis', -1)] },
    { name: `${s}/Squeeze`, opType: 'Squeeze', input: [`${s}/picked`, axesLast], output: [`${s}/logp_label`] },
    { name: `${s}/Mul`, opType: 'Mul', input: [`${s}/logp_label`, WEIGHTS_INPUT], output: [`${s}/weighted`] },
    { name: `${s}/ReduceSum`, opType: 'ReduceSum', input: [`${s}/weighted`], output: [`${s}/sum`], attribute: [A.int('keepdims', 0)] },
    { name: `${s}/Neg`, opType: 'Neg', input: [`${s}/sum`], output: [LOSS_OUTPUT] },
  ];
  g.node = [...(g.node ?? []), ...nodes.map((n) => onnx.NodeProto.fromObject(n))];
  const dims = [{ dimParam: 'batch_size' }, ...((g.output ?? []).find((o) => o.name === logits)!.type?.tensorType?.shape?.dim?.length === 3 ? [{ dimParam: 'sequence_length' }] : [])];
  g.input = [
    ...(g.input ?? []),
    onnx.ValueInfoProto.fromObject({ name: LABELS_INPUT, type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: dims } } } }),
    onnx.ValueInfoProto.fromObject({ name: WEIGHTS_INPUT, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims } } } }),
  ];
  g.output = [...(g.output ?? []), onnx.ValueInfoProto.fromObject({ name: LOSS_OUTPUT, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [] } } } })];
}

/**
 * Logit matching (distillation from a teacher's logits) appended in place: L = Σ w ⊙ Σ_c (logits − targets)²,
 * the squared error summed over the last (class / vocabulary) axis, then weighted per row (or per
 * position) with the same normalized weights as the cross-entropy. Zero exactly when the student's
 * logits equal the teacher's, unlike a cross-entropy on hard labels, whose infimum (0) needs
 * unbounded margins. Targets have the logits' shape: [B, C], or [B, S, V] for causal LM.
 */
export function appendLogitsMse(model: ModelProto, logits = 'logits'): void {
  const g = model.graph!;
  const out = (g.output ?? []).find((o) => o.name === logits);
  if (!out) throw new TrainingGraphError('model has no logits output to train on', { tensor: logits, found: (g.output ?? []).map((o) => o.name) });
  const s = '/tensorpeft/loss';
  const axesLast = `${s}/axes_last`;
  g.initializer!.push(onnx.TensorProto.fromObject({ name: axesLast, dataType: onnx.TensorProto.DataType.INT64, dims: [1], int64Data: [-1] }));
  const nodes = [
    { name: `${s}/Sub`, opType: 'Sub', input: [logits, TARGETS_INPUT], output: [`${s}/diff`] },
    { name: `${s}/Square`, opType: 'Mul', input: [`${s}/diff`, `${s}/diff`], output: [`${s}/sq`] },
    { name: `${s}/ReduceSumLast`, opType: 'ReduceSum', input: [`${s}/sq`, axesLast], output: [`${s}/row`], attribute: [A.int('keepdims', 0)] },
    { name: `${s}/Mul`, opType: 'Mul', input: [`${s}/row`, WEIGHTS_INPUT], output: [`${s}/weighted`] },
    { name: `${s}/ReduceSum`, opType: 'ReduceSum', input: [`${s}/weighted`], output: [LOSS_OUTPUT], attribute: [A.int('keepdims', 0)] },
  ];
  g.node = [...(g.node ?? []), ...nodes.map((n) => onnx.NodeProto.fromObject(n))];
  const logitDims = out.type?.tensorType?.shape?.dim ?? [];
  const dims = [{ dimParam: 'batch_size' }, ...(logitDims.length === 3 ? [{ dimParam: 'sequence_length' }] : [])];
  g.input = [
    ...(g.input ?? []),
    onnx.ValueInfoProto.fromObject({ name: TARGETS_INPUT, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [...dims, { dimParam: 'classes' }] } } } }),
    onnx.ValueInfoProto.fromObject({ name: WEIGHTS_INPUT, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims } } } }),
  ];
  g.output = [...(g.output ?? []), onnx.ValueInfoProto.fromObject({ name: LOSS_OUTPUT, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [] } } } })];
}
