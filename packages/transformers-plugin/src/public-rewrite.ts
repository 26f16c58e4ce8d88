/**
 * The rewrite as the package exports it, typed without onnx-proto: rewrite.ts works on onnx-proto's
 * classes, whose declarations name protobufjs' global `Long`; the public declarations reach only
 * this file and rewrite-types.ts, so an app compiling with `skipLibCheck: false` never loads them.
 * A decoded model is an opaque `OnnxModel` here; bytes are accepted everywhere.
 */
import * as impl from './rewrite.js';
import { rewriteSpliced } from './proto-splice.js';
import type { FoundLinear, RewriteOptions, RewriteResult } from './rewrite-types.js';

export type { BranchInfo, FoundLinear, MergedInfo, ParamInfo, RewriteOptions, RewriteResult } from './rewrite-types.js';

/** A decoded ONNX model (onnx-proto's `ModelProto`, opaque in the public types). */
export interface OnnxModel {
  readonly graph?: unknown;
}

/** Prefix of every graph input the rewrite adds. */
export const INPUT_PREFIX = impl.INPUT_PREFIX;
/** Prefix of the overridable head parameter inputs. */
export const PARAM_PREFIX = impl.PARAM_PREFIX;
/** Prefix of the merge-mode weight inputs. */
export const MERGE_PREFIX = impl.MERGE_PREFIX;
/** Name stem of the branch inputs' rank dims. */
export const RANK_DIM = impl.RANK_DIM;
/** Name of the head overrides' leading dim. */
export const OVERRIDE_DIM = impl.OVERRIDE_DIM;

function proto(model: Uint8Array | OnnxModel): Parameters<typeof impl.findLinears>[0] {
  return model instanceof Uint8Array ? impl.decodeModel(model) : (model as Parameters<typeof impl.findLinears>[0]);
}

/** The linears of a model (bytes or decoded) the rewrite can branch, with their weights and shapes. */
export function findLinears(model: Uint8Array | OnnxModel): FoundLinear[] {
  return impl.findLinears(proto(model));
}

/** The load-time rewrite of one `.onnx` (bytes or decoded): side branches, head overrides, merge inputs. */
export function rewriteModel(model: Uint8Array | OnnxModel, opts: RewriteOptions): RewriteResult {
  // Bytes: branch mode splices the weights through without decoding them (proto-splice.ts).
  return model instanceof Uint8Array ? rewriteSpliced(model, opts) : impl.rewriteModel(proto(model), opts);
}

/** Module path of a node named like torch exports (`/bert/encoder/layer.0/attention/self/query/MatMul` → `bert.encoder.layer.0.attention.self.query`). */
export function graphPathOfNode(name: string): string {
  return impl.graphPathOfNode(name);
}

/** Whether PEFT module path `peft` names graph path `graph` (a task model's path vs a bare model's). */
export function pathsMatch(peft: string, graph: string): boolean {
  return impl.pathsMatch(peft, graph);
}

/** The PEFT path among `targets` naming graph path `graphPath` (exact match first, else the unique suffix match). */
export function matchTarget(graphPath: string, targets: readonly string[]): string | undefined {
  return impl.matchTarget(graphPath, targets);
}

/** W0 (and its layout) of a merge-mode weight input. */
export function baseWeightOf(input: string): { data: Float32Array; layout: 'in_out' | 'out_in' } | undefined {
  return impl.baseWeightOf(input);
}
