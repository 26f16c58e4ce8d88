/**
 * @tensorpeft/autodiff — ONNX reverse-mode differentiation: training graphs (loss, logits,
 * ∂loss/∂adapter inputs) that any onnxruntime inference build runs, and an adapter trainer.
 */
export { buildGradientGraph, unbroadcast, GRAD_PREFIX, type GradientGraph, type GradientOptions } from './gradient.js';
export { probeShapes, TRAINING_SESSION_OPTIONS, type OrtLike, type OrtSessionLike, type OrtTensorLike, type ShapeMap, type ValueShape } from './probe.js';
export { registerGradient, gradientRule, gradientOps } from './rules/registry.js';
export type { GradContext, GradRule } from './rules/types.js';
export { straightThroughQ8, dequantizedReference } from './rules/quantized.js';
export { NoGradientRuleError, TrainingGraphError, DatasetError } from './errors.js';
export * from './train/index.js';
