/**
 * The Backend seam: the few kernels every method needs. Methods describe *what* to compute as
 * backend-neutral expressions (`MatExpr`); a backend evaluates them, one module or a whole adapter
 * per call. The pure-JS backend is the oracle every other backend (wasm, webgpu) is tested against.
 *
 * Layout conventions (all row-major float32):
 * - `A′` is `[n, ρ]`, `B′` is `[m, ρ]`, and ΔW = s · B′ A′ᵀ (`[m, n]`, torch `[out, in]` layout).
 * - A TT core is `[rLeft, modeSize, rRight]`.
 */

/** One tensor-train core `[rLeft, size, rRight]`. */
export interface TTCore {
  data: Float32Array;
  rLeft: number;
  size: number;
  rRight: number;
}

/**
 * Controller gating of the last TT core (TRAC): `G̃[a, i, j] = rank[a] · mode[i] · G[a, i, j]`,
 * where `rank` has the last core's left-rank length and `mode` its mode size. The activation σ is
 * applied by the method before building the expression, so kernels only multiply.
 */
export interface TTGate {
  rank: Float32Array;
  mode: Float32Array;
}

/**
 * Backend-neutral description of a matrix to materialize.
 *
 * - `tt`: contract a TT chain to a `[∏ size_k, rRight_last]` matrix (mode 0 slowest), optionally
 *   gated, then view it as `[rows, cols]` (same element order) and optionally transpose.
 * - `dense`: take the top-left `[takeRows, takeCols]` block of a `[rows, cols]` source, optionally
 *   transposed, then scale output rows/columns.
 * - `cp`: Khatri–Rao expansion `out[q·p + j, k] = outer[q, k] · inner[j, k] · scale[k]` for
 *   `inner: [p, r]`, `outer: [Q, r]` — output `[Q·p, r]`.
 * - `tucker`: multiply a Tucker core by a vector (mode contracted away), a matrix
 *   (`U: [rows, R]`, mode replaced by `rows`) or nothing (`keep`) per mode, then permute the
 *   remaining modes with `order` and view the result as `[rows, cols]`.
 */
export type MatExpr =
  | {
      kind: 'tt';
      cores: TTCore[];
      gate?: TTGate;
      rows: number;
      cols: number;
      transpose?: boolean;
    }
  | {
      kind: 'dense';
      src: Float32Array;
      rows: number;
      cols: number;
      takeRows: number;
      takeCols: number;
      transpose?: boolean;
      /** Length = output rows. */
      rowScale?: Float32Array;
      /** Length = output cols. */
      colScale?: Float32Array;
    }
  | {
      kind: 'cp';
      inner: Float32Array;
      p: number;
      outer: Float32Array;
      q: number;
      r: number;
      scale?: Float32Array;
    }
  | {
      kind: 'tucker';
      core: Float32Array;
      coreDims: number[];
      modes: TuckerMode[];
      /** Permutation of the surviving modes (indices into the surviving-mode list). */
      order: number[];
      rows: number;
      cols: number;
    };

export type TuckerMode =
  | { op: 'vector'; v: Float32Array }
  | { op: 'matrix'; U: Float32Array; rows: number }
  | { op: 'keep' };

/** What a method asks the backend to produce for one target module. */
export interface MaterializeJob {
  path: string;
  n: number;
  m: number;
  rho: number;
  s: number;
  /** Must evaluate to `[n, ρ]`. */
  a: MatExpr;
  /** Must evaluate to `[m, ρ]`. */
  b: MatExpr;
}

/** The universal form of one module's update: ΔW = s · B′ A′ᵀ. */
export interface ModuleUpdate {
  path: string;
  n: number;
  m: number;
  rho: number;
  s: number;
  /** `[n, ρ]` row-major. */
  A: Float32Array;
  /** `[m, ρ]` row-major. */
  B: Float32Array;
}

/** Weight layouts for merge: torch Linear `[out, in]` or GPT-2 Conv1D `[in, out]`. */
export type WeightLayout = 'out_in' | 'in_out';

export interface Backend {
  readonly name: string;
  /** Evaluate one expression to a fresh `[rows, cols]` array. */
  evaluate(expr: MatExpr): Promise<Float32Array>;
  /** Materialize every module of an adapter in one call. */
  materialize(jobs: readonly MaterializeJob[]): Promise<ModuleUpdate[]>;
  /**
   * In place `W += s · B′ A′ᵀ` where W is `[m, n]` (`out_in`) or `[n, m]` (`in_out`).
   */
  merge(W: Float32Array, layout: WeightLayout, u: ModuleUpdate): Promise<void>;
  /** In place `Y[rows, m] += s · (X[rows, n] · A′) · B′ᵀ` (branch apply). */
  apply(X: Float32Array, Y: Float32Array, rows: number, u: ModuleUpdate): Promise<void>;
}
