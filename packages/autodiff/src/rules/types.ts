/**
 * A gradient rule (one per op type, grouped in files by op family, as tfjs-core's
 * `src/gradients/<Op>_grad.ts`): which inputs a gradient can flow into, and a pure function that
 * emits the ONNX nodes computing ∂L/∂input from ∂L/∂output.
 */
import type { Emitter, NodeProto, TensorProto } from '../onnx.js';

export interface GradContext {
  /** Where the rule appends its nodes. */
  readonly e: Emitter;
  /** The forward node. */
  readonly node: NodeProto;
  /** Its input and output names ('' for an omitted optional input). */
  readonly x: readonly string[];
  readonly y: readonly string[];
  /** ∂L/∂output i, or undefined when no path to the loss reads that output. */
  dy(i: number): string | undefined;
  /** ∂L/∂output i, a zero tensor of the output's shape when no path reads it. */
  dyOrZeros(i: number): string;
  /** Does input i need a gradient (it lies on a path from a trainable input to the loss)? */
  needs(i: number): boolean;
  /** Dims of a value as seen by the shape probe (ranks are fixed; sizes of symbolic dims are the probe's). */
  dims(name: string): number[];
  rank(name: string): number;
  /** Integer values of a constant input (initializer or Constant node); a TrainingGraphError otherwise. */
  constInts(name: string): number[];
  /** A float initializer of the forward graph, if `name` is one. */
  initializer(name: string): TensorProto | undefined;
  /**
   * Sum `g` (dims `gDims`, a broadcast of `x`'s shape) down to `x`'s shape: over leading axes and
   * over the axes where `x` has size 1 and `g` does not; then reshaped to Shape(x).
   */
  unbroadcast(g: string, x: string, gDims: readonly number[]): string;
  /** An error naming this node (for attributes or inputs a rule does not support). */
  unsupported(why: string): Error;
}

export interface GradRule {
  op: string;
  /** Op domain ('' = ai.onnx). */
  domain?: string;
  /** Input indices a gradient can flow into; a trainable path through another input is an error. */
  inputs: readonly number[] | 'all';
  /** Gradients per input (undefined where `needs(i)` is false or the input gets none). */
  grad(c: GradContext): Array<string | undefined>;
}
