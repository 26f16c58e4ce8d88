/**
 * The rewrite's public types, in a module of their own: rewrite.ts works on onnx-proto's classes,
 * whose declarations need protobufjs' global `Long` type; the public .d.ts reach only this file, so
 * apps compiling with `skipLibCheck: false` never load onnx-proto's declarations.
 */

/** A linear found in a graph. */
export interface FoundLinear {
  /** Module path in this graph (`distilbert.transformer.layer.0.attention.q_lin`; bare models lack the root). */
  graphPath: string;
  /** Node computing x·W (`MatMul`, `Gemm`, `MatMulInteger`, or the 4-bit `MatMulNBits` / `MatMulBnb4`). */
  node: string;
  op: 'MatMul' | 'Gemm' | 'MatMulInteger' | 'MatMulNBits' | 'MatMulBnb4';
  /** Float input x of the linear. */
  input: string;
  /** Element type of x and of the product (fp16 graphs: `model_fp16`, `model_q4f16`): the side branch runs in it. */
  dtype: 'float32' | 'float16';
  /** Tensor holding x·W (+ Gemm bias): where the side branch is added. */
  output: string;
  /** Index of the node writing `output` (the q8 pattern's final Mul). */
  outputNodeIndex: number;
  /** The weight initializer (followed back through Identity aliases and a Transpose). */
  weight: string;
  /**
   * Layout of that initializer: `in_out` ([n, m]: MatMul, MatMulInteger, Gemm transB=0) or `out_in`
   * ([m, n]: Gemm transB=1, MatMul on `Transpose(W)`).
   */
  weightLayout: 'in_out' | 'out_in';
  /** The node (index) that reads the weight initializer itself (the linear, or the Identity/Transpose in between), and its input index. */
  weightReader: number;
  weightReaderInput: number;
  /** The tensor name the linear reads when it is an alias (Identity output) of `weight`. */
  weightAlias?: string;
  /** Gemm's bias initializer (input C, followed through Identity aliases), if any. */
  bias?: string;
  /** The name Gemm reads for its bias when it is an alias of `bias` (torch keeps the state-dict name there). */
  biasAlias?: string;
  n: number;
  m: number;
}

/** One rewritten target module. */
export interface BranchInfo {
  /** PEFT module path (as given in `targets`). */
  path: string;
  graphPath: string;
  node: string;
  inputA: string;
  inputB: string;
  n: number;
  m: number;
}

/** One overridable parameter (head weight or bias). */
export interface ParamInfo {
  /** Initializer name (`classifier.weight`). */
  name: string;
  input: string;
  dims: number[];
}

export interface RewriteOptions {
  /** PEFT module paths the adapters may target (core's `ModelShape.modules[].path`). */
  targets: readonly string[];
  /**
   * Module paths of linears that get no branch and are not overridable heads either (the plugin's
   * `target_modules` leaves them out; target-modules.ts). Default none.
   */
  untargeted?: readonly string[];
  /** Make named weights/biases of the other linears (heads) overridable (default true). */
  overridableHeads?: boolean;
  /**
   * `branch` (default): side branches `y += (x·A)·B`. `merge`: the weight of every targeted fp32
   * MatMul/Gemm becomes a graph input (the plugin feeds W0, or W0 + s·B′A′ᵀ merged by the backend);
   * quantized targets (MatMulInteger, MatMulNBits, MatMulBnb4) still get branches; fp16 weights are
   * fed as fp16 (decoded to float32 for the registry, converted back by dtype.ts).
   */
  mode?: 'branch' | 'merge';
  /**
   * Files of the model's ONNX external data, by the `location` its initializers name. Merge mode
   * reads W0 of external weights from here; branch mode never reads weight bytes (ORT does).
   */
  external?: ReadonlyMap<string, Uint8Array>;
  /** Name of the model file, for errors about malformed bytes (ModelFormatError); default `model`. */
  modelFile?: string;
  /**
   * Branch mode: stacked adapter inputs gathered per batch row, so one run can give each row its own
   * adapter (`adapter_names`; mixed-rewrite.ts). Default false.
   */
  mixedBatches?: boolean;
  /**
   * Branch mode, fp16 graphs (`model_fp16`, `model_q4f16`): the precision of the side branches.
   * `activation` (default): A′/B′ declared float16 and (x·A′)·B′ computed in fp16, for execution
   * providers with fp16 kernels (WebGPU). `float32`: A′/B′ declared float32, x cast to fp32 once per
   * distinct x, both products in fp32 and the delta cast to fp16 where it joins the product — for
   * CPU execution providers (onnxruntime-node `cpu`, ORT-web `wasm`), which have no fp16 MatMul and
   * would otherwise cast A′ and B′ to fp32 on every run (branch-dtype.ts). No effect on fp32 graphs.
   */
  branchDtype?: BranchDtype;
  /**
   * Branch mode: targeted linears reading the same tensor (q/k/v, gate/up, a packed product's
   * slices) share one x·[A′₁ | A′₂ | …] and one product with blockdiag(s·B′ᵢᵀ), fed through the inputs
   * `tensorpeft.siblings:<path>=<m>,….A|B` instead of per-module ones (rewrite-siblings.ts): fewer
   * nodes per decode step. Default false (as in the plugin's load path, `EnableOptions.fuseSiblings`:
   * no resolvable gain on the CPU EP as measured). Ignored with `mixedBatches`.
   */
  fuseSiblings?: boolean;
}

/** Precision of the side branches on fp16 graphs (`RewriteOptions.branchDtype`). */
export type BranchDtype = 'activation' | 'float32';

/** A targeted linear whose weight is fed as an input (merge mode). */
export interface MergedInfo {
  path: string;
  graphPath: string;
  node: string;
  /** Graph input (`tensorpeft.merge.<token>.<path>`). */
  input: string;
  /** Weight layout and dims as in the original initializer. */
  layout: 'in_out' | 'out_in';
  dims: [number, number];
  n: number;
  m: number;
}

export interface RewriteResult {
  bytes: Uint8Array;
  branches: BranchInfo[];
  params: ParamInfo[];
  /** Merge mode: the targets whose weights became inputs. */
  merged: MergedInfo[];
}
