/**
 * Typed errors of the gradient builder and the trainer (TensorPeftErrors, rendered at the edge).
 */
import { TensorPeftError } from '@tensorpeft/core';

/** An op on the path from a trainable input to the loss has no gradient rule (or not for that input). */
export class NoGradientRuleError extends TensorPeftError {
  override readonly code: string = 'NO_GRADIENT_RULE';
}

/** The model cannot be trained as asked: no adapter inputs, a missing output, a non-constant attribute input. */
export class TrainingGraphError extends TensorPeftError {
  override readonly code: string = 'TRAINING_GRAPH';
}

/** A training dataset is malformed (file, line and field named), empty, or has labels outside the model's label set. */
export class DatasetError extends TensorPeftError {
  override readonly code: string = 'DATASET';
}
