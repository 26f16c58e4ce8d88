/**
 * The AdapterMethod seam. A method is data (a config schema) plus three pure functions:
 * `plan` (which tensors exist for a model shape), and `jobs` (how to materialize (A′, B′, s) per
 * module from the tensors, as backend-neutral expressions). Initialization and parameter counting
 * are generic over the plan, so they cannot drift between methods.
 */
import type { z } from 'zod';
import type { MaterializeJob } from '../backend/types.js';
import type { ModelShape } from '../model/shape.js';
import type { TensorMap } from '../tensor.js';
import type { OfficialImporter } from '../io/official/types.js';

export type ParamKind = 'trainable' | 'frozen';

/** How a tensor is initialized (drawn from `streamFor(seed, key)`, element by element in row-major order). */
export type InitSpec =
  | { dist: 'zeros' }
  | { dist: 'ones' }
  | { dist: 'const'; value: number }
  | { dist: 'normal'; std: number }
  | { dist: 'uniform'; bound: number }
  /**
   * A 2-D tensor `[rows, cols]` whose columns are orthonormal (rows ≥ cols): Gaussian draws,
   * then modified Gram–Schmidt over columns in float64.
   */
  | { dist: 'orthonormal' };

export interface ParamSpec {
  /** safetensors key, e.g. `base_model.model.<path>.lora_A.weight` or `base_model.vera_A`. */
  key: string;
  shape: number[];
  kind: ParamKind;
  /** Module path for per-module tensors. */
  module?: string;
  /** Sharing key for shared tensors: a matrix type (`attention.self.query`) or `"adapter"`. */
  shared?: string;
  init: InitSpec;
  /**
   * Set on tensors whose faithful init is zero so that ΔW = 0 at start. `init --nonzero` fills
   * exactly these with N(0, nonzeroStd²) (default 0.02) so demos and tests see ΔW ≠ 0.
   */
  zeroInit?: boolean;
  nonzeroStd?: number;
}

/** A module the adapter targets, with its dimensions. */
export interface PlannedModule {
  path: string;
  type: string;
  layer: number;
  n: number;
  m: number;
  fanInFanOut: boolean;
}

export interface ParamPlan {
  peftType: string;
  /** ρ: the rank of the universal form. */
  rank: number;
  modules: PlannedModule[];
  params: ParamSpec[];
  /** Model facts some methods need again at materialize time (heads, layers). */
  numHeads: number;
  numLayers: number;
}

export interface ParamCounts {
  trainable: number;
  frozen: number;
  /** trainable + frozen: what the file holds (shared tensors once). */
  stored: number;
}

/** Fields every adapter_config.json has. */
export interface BaseAdapterConfig {
  peft_type: string;
  target_modules: string | string[];
  base_model_name_or_path?: string | null;
  modules_to_save?: string[] | null;
  [extra: string]: unknown;
}

export interface AdapterMethod<C extends BaseAdapterConfig = BaseAdapterConfig> {
  /** `peft_type` in adapter_config.json, e.g. `TRAC`. */
  readonly peftType: string;
  /** CLI name, e.g. `trac`. */
  readonly cliName: string;
  /** One-line description for help texts. */
  readonly description: string;
  /**
   * Schema of adapter_config.json for this method. Parsing fills documented defaults; unknown
   * fields are rejected (new methods) or preserved (LORA/VERA, whose PEFT configs have many).
   */
  readonly schema: z.ZodType<C, z.ZodTypeDef, unknown>;
  /**
   * The tensors of this adapter for a model shape. Throws ConfigError / ShapeMismatchError naming
   * the module or field when the config does not fit the model.
   */
  plan(config: C, shape: ModelShape): ParamPlan;
  /** Materialization jobs, one per planned module, reading `params` (validated against the plan). */
  jobs(config: C, plan: ParamPlan, params: TensorMap): MaterializeJob[];
  /**
   * Optional: rebuild the module shapes from the tensors alone (LoRA files are self-describing).
   * Used when a file carries no `tensorpeft.modules` manifest and no model shape is given.
   */
  inferShape?(config: C, shapes: ReadonlyMap<string, readonly number[]>): ModelShape | undefined;
  /**
   * Optional: reads what the method's official (paper) code saves — see io/official/types.ts and
   * the method's import.ts.
   */
  readonly importOfficial?: OfficialImporter;
  /**
   * Optional: the targets this method adapts by default on a model shape, when they differ from the
   * model's PEFT default (TensLoRA aggregates q, k and v). Undefined: the model's default.
   */
  defaultTargets?(shape: ModelShape): string[] | undefined;
  /**
   * Optional: config entries for the dimensions of the targeted modules that the parsed config
   * lacks (tables keyed by dimension: TRAC, LoRETTA), so defaults fit any model. Only fields the
   * user did not give are applied (by `configForShape`).
   */
  dimDefaults?(config: C, dims: readonly { n: number; m: number }[]): Record<string, unknown>;
}
