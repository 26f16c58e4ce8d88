/**
 * The plugin's own typed error: the plugin used in a way it does not support, or asked for
 * something that is not there (no such adapter, a model without adapter inputs, a runtime without
 * GPU tensors). Adapters that do not fit a model throw core's ShapeMismatchError, unreadable
 * adapter files core's FetchError / AdapterFormatError; all are TensorPeftErrors.
 */
import { TensorPeftError } from '@tensorpeft/core';

export class PluginError extends TensorPeftError {
  override name = 'PluginError';
  override readonly code: string = 'PLUGIN';
}

/**
 * An ONNX model the plugin cannot read (bytes that do not decode as a ModelProto, no graph, tensor
 * data that does not match its dims): names the model file where the caller gave one.
 */
export class ModelFormatError extends PluginError {
  override name = 'ModelFormatError';
  override readonly code: string = 'MODEL_FORMAT';
}
