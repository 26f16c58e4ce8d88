/**
 * @tensorpeft/core — adapter methods, adapter files, model shapes and the JS reference backend.
 */
export * from './errors.js';
export * from './tensor.js';
export { Prng, streamFor, detLn } from './util/prng.js';

export * from './model/shape.js';
export { ARCHITECTURES, buildShape, type ArchDims } from './model/architectures.js';
export { PRESETS, presetNames, presetShape } from './model/presets.js';
export { shapeFromHfConfig } from './model/hf-config.js';

export type * from './backend/types.js';
export { JsBackend, deltaW, evaluateExpr, ttChain, tucker } from './backend/js.js';
export { getBackend, registerBackend, registeredBackends } from './backend/registry.js';

export type * from './methods/types.js';
export { getMethod, listMethods, registerMethod } from './methods/registry.js';
export { checkParams, countParams, initParams, materialize, parseMethodConfig, type InitOptions } from './methods/generic.js';
export { moduleKey, sharedKey } from './methods/common.js';
export { addInto, registerDifferentiable, type DifferentiableMethod, type DifferentiableModel, type Getter, type GradGetter, type UniversalUpdate } from './methods/differentiable.js';
export { differentiableModel } from './methods/grads.js';
import './methods/all.js';

// io
export * from './io/index.js';

// convert
export * from './convert/index.js';
